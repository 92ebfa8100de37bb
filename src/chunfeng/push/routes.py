"""Pages of policy push: the catalogue with its rule editor, the match explorer, campaigns, the taxpayer's
message centre and dividend bill."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse

from chunfeng.charts import bar_chart
from chunfeng.jobs import TaskResult
from chunfeng.org.access import allowed, authorize
from chunfeng.org.models import Unit
from chunfeng.paging import Page, clamp_page
from chunfeng.push import bills, campaigns, matching, rules, schedule, services, stages, store
from chunfeng.push import policy as permissions
from chunfeng.push.errors import PushInvalid
from chunfeng.push.models import CAMPAIGN_STATES, Policy
from chunfeng.push.schema import CHANNEL_NAMES, RULE_REGISTRY
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, render, require
from chunfeng.web.downloads import checked_purpose, document, temporary_file, write_personal_xlsx
from chunfeng.xlsx import download_path, write_table

router = APIRouter(tags=["push"])
STAGE_PATTERN = "^(first|reminder|last)$"  # the stages a policy campaign has (a bill campaign has none to approve)
StagePath = Annotated[str, PathParam(pattern=STAGE_PATTERN)]
StageName = Annotated[str | None, Query(pattern=STAGE_PATTERN)]


def _store(request: Request) -> Path:
    return Path(request.app.state.settings.push_store)


@router.get("/push/policies", dependencies=[require("push.policy.view")])
def policy_list(request: Request, session: SessionDep, user: CurrentUser, q: str = "", tax_type: str = "",
                standing: str = "current", page: PageNo = 1):
    page, _ = clamp_page(page, 30)
    result = services.list_policies(session=session, actor=user, q=q.strip(), tax_type=tax_type, standing=standing,
                                    page=page)
    return render(request, "push/policies.html", {"result": result, "q": q.strip(), "tax_type": tax_type,
                                                  "standing": standing, "standings": services.STANDINGS,
                                                  "today": date.today(), "tax_types": services.tax_types(session)},
                  user=user)


@router.get("/push/policies/export.xlsx", dependencies=[require("push.policy.view")])
def policy_export(session: SessionDep, user: CurrentUser):
    result = services.list_policies(session=session, actor=user, per_page=10_000)
    path = write_table(download_path(), sheet="政策目录", headers=[
        "编号", "名称", "税费种", "主题", "依据", "文件标题", "生效日期", "失效日期", "所属期", "申报表", "适用条件(规则)",
        "推送对象", "政策要点", "待审核"], rows=([p.id, p.name, p.tax_type, p.topic, p.basis, p.basis_title,
                                            str(p.effective_from), str(p.effective_until or "长期"),
                                            services.PERIOD_KINDS[p.period_kind], p.filing, p.rule, "、".join(p.roles),
                                            p.summary, p.review] for p in result.items),
        widths=[16, 36, 12, 12, 30, 36, 12, 12, 8, 14, 50, 24, 60, 40])
    return temporary_file(path, "优惠政策目录.xlsx")


@router.get("/push/policies/{policy_id}", dependencies=[require("push.policy.view")])
def policy_page(request: Request, policy_id: str, session: SessionDep, user: CurrentUser):
    policy = services.get_policy(session=session, actor=user, policy_id=policy_id)
    return _policy_page(request, policy, user, rule=policy.rule)


def _policy_page(request, policy: Policy, user, *, rule: str, error: rules.RuleError | None = None, status: int = 200):
    return render(request, "push/policy.html", {
        "p": policy, "rule": rule, "error": error, "fields": RULE_REGISTRY.fields, "channels": CHANNEL_NAMES,
        "period_kinds": services.PERIOD_KINDS, "may_edit": allowed(user, "push.policy.edit"),
        "may_match": allowed(user, "push.match")}, user=user, status_code=status)


@router.post("/push/rules/check", dependencies=[require("push.policy.view")])
def rule_check(request: Request, user: CurrentUser, rule: str = Form("")):
    """The rule editor's live check (htmx): the fault and where it is, or how many taxpayers match now."""
    authorize(user, "push.policy.view")
    return render(request, "push/_check.html", {"check": services.check_rule(rule, _store(request))}, user=user)


@router.post("/push/policies/{policy_id}/rule", dependencies=[require("push.policy.edit")])
def rule_save(request: Request, policy_id: str, db: DatabaseDep, user: CurrentUser, rule: str = Form("")):
    try:
        with db.write() as session:
            services.update_rule(session=session, actor=user, policy_id=policy_id, rule=rule.strip())
    except rules.RuleError as exc:
        with db.read() as session:
            policy = services.get_policy(session=session, actor=user, policy_id=policy_id)
            return _policy_page(request, policy, user, rule=rule, error=exc, status=400)
    return RedirectResponse(f"/push/policies/{policy_id}?saved=1", status_code=303)


@router.get("/push/policies/{policy_id}/match", dependencies=[require("push.match")])
def match_page(request: Request, policy_id: str, session: SessionDep, user: CurrentUser, period: str = ""):
    policy = services.get_policy(session=session, actor=user, policy_id=policy_id)
    if not _store(request).exists():
        return render(request, "push/no_store.html", {"p": policy}, user=user)
    result = services.match_policy(session=session, actor=user, policy_id=policy_id, period=period.strip() or None,
                                   store_file=_store(request))
    top = sorted(result.by_region.items(), key=lambda kv: -kv[1]["not_claimed"])[:15]
    chart = bar_chart([v["name"] for _, v in top], [v["not_claimed"] for _, v in top],
                      maximum=max([v["not_claimed"] for _, v in top] or [1]), suffix="户") if top else ""
    return render(request, "push/match.html", {"p": policy, "m": result, "chart": chart}, user=user)


@router.get("/push/policies/{policy_id}/taxpayers", dependencies=[require("push.match")])
def taxpayer_list(request: Request, policy_id: str, session: SessionDep, user: CurrentUser,
                  period: str = "", province: str = "", section: str = "", not_claimed: bool = False, page: PageNo = 1):
    policy = services.get_policy(session=session, actor=user, policy_id=policy_id)
    page, per_page = clamp_page(page, 50)
    audience = matching.Audience(region=services.actor_region(user))
    with store.connect_store(_store(request)) as conn:
        engine = matching.DuckDBEngine(conn)
        chosen = period.strip() or matching.latest_claim_period(engine, policy.id)
        total, rows = matching.taxpayers(engine, policy_id=policy.id, rule_text=policy.rule, period=chosen,
                                         audience=audience, province=province, section=section,
                                         not_claimed_only=not_claimed, offset=(page - 1) * per_page, limit=per_page)
    query = f"period={chosen or ''}&province={province}&section={section}&not_claimed={'true' if not_claimed else 'false'}"
    return render(request, "push/taxpayers.html", {
        "p": policy, "result": Page(rows, total, page, per_page), "period": chosen, "province": province,
        "section": section, "not_claimed": not_claimed, "query": query,
        "province_name": matching.PROVINCE_NAMES.get(province[:2], ""),
        "section_name": matching.INDUSTRY_SECTIONS.get(section, "")}, user=user)


@router.post("/push/policies/{policy_id}/taxpayers/export", dependencies=[require("push.match")])
def taxpayer_export(request: Request, policy_id: str, db: DatabaseDep, user: CurrentUser, period: str = Form(""),
                    province: str = Form(""), section: str = Form(""), not_claimed: bool = Form(False),
                    purpose: str = Form("")):
    # A POST behind the form's CSRF token: the list is matched and written by a task, which a link must not start.
    purpose = checked_purpose(purpose)
    with db.read() as session:
        policy = services.get_policy(session=session, actor=user, policy_id=policy_id)
    return _export_taxpayers(request, db, user, policy, period=period.strip(), province=province, section=section,
                             not_claimed=not_claimed, purpose=purpose)


def _export_taxpayers(request: Request, db, user, policy: Policy, *, period: str, province: str, section: str,
                      not_claimed: bool, purpose: str):
    """The whole list (a province's or the country's) is matched and written by a task; the audit entry keeps the
    purpose, the filters and the number of rows, as for any personal list."""
    policy_id, rule, store_file = policy.id, policy.rule, _store(request)
    audience = matching.Audience(region=services.actor_region(user))
    filename = f"{policy_id}-{'应享未享' if not_claimed else '符合条件'}纳税人.xlsx"

    def write(path: Path, progress) -> str:
        progress(0, 0, "正在匹配纳税人")
        with store.connect_store(store_file) as conn:
            engine = matching.DuckDBEngine(conn)
            chosen = period or matching.latest_claim_period(engine, policy_id)
            _, rows = matching.taxpayers(engine, policy_id=policy_id, rule_text=rule, period=chosen,
                                         audience=audience, province=province, section=section,
                                         not_claimed_only=not_claimed, offset=0, limit=None)
        progress(0, len(rows), "正在写出清单")
        count = write_personal_xlsx(
            db, user, path, action="push.taxpayers.exported", purpose=purpose,
            filters={"policy": policy_id, "period": chosen, "province": province, "section": section,
                     "not_claimed": not_claimed},
            filename=filename, sheet="纳税人清单",
            headers=["统一社会信用代码", "纳税人名称", "行政区划", "行业", "增值税类型", "规模", "信用级别",
                     f"{chosen or ''}是否已享受"],
            rows=([r["credit_code"], r["name"], r["region"], r["industry"], r["vat_type"], r["size"], r["credit"],
                   "已享受" if r["claimed"] else "未享受"] for r in rows), widths=[22, 36, 10, 10, 12, 8, 8, 14])
        return f"已导出 {count} 户纳税人"

    return jobs_pages.start_export(db, user, request.app.state.settings, name="push.taxpayers.export",
                                   title=f"导出纳税人清单 {policy_id}"[:200], filename=filename, write=write)


# --- campaigns ---------------------------------------------------------------------------------------


def _campaigns_page(request: Request, session, user, *, page: int = 1, form: dict | None = None,
                    error: campaigns.CampaignFormInvalid | None = None, status: int = 200):
    """The list and the new-campaign form; after a refusal, the form as typed with each fault beside its field."""
    result = campaigns.list_campaigns(session=session, actor=user, page=page)
    policies = services.list_policies(session=session, actor=user, on=None, per_page=1000).items
    today = date.today()
    form = form or {"month": f"{today.year}-{today.month:02d}", "channels": ["inapp"], "policies": [],
                    "reminder_day": 10, "last_days": 2}
    return render(request, "push/campaigns.html", {
        "result": result, "policies": policies, "channels": campaigns.configured_channels(request.app.state.settings),
        "channel_names": CHANNEL_NAMES, "stages": campaigns.STAGES, "campaign_states": CAMPAIGN_STATES,
        "default_month": f"{today.year}-{today.month:02d}", "form": form, "error": error}, user=user,
        status_code=status)


@router.get("/push/campaigns", dependencies=[require("push.campaign")])
def campaign_list(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1):
    page, _ = clamp_page(page, 30)
    return _campaigns_page(request, session, user, page=page)


@router.post("/push/campaigns", dependencies=[require("push.campaign")])
def campaign_create(request: Request, db: DatabaseDep, user: CurrentUser, name: str = Form(""), month: str = Form(""),
                    policies: list[str] = Form([]), channels: list[str] = Form([]), audience: str = Form(""),
                    reminder_day: int = Form(10, title="申报提醒日"),
                    last_days: int = Form(2, title="截止前几个工作日最后提醒")):
    form = {"name": name, "month": month, "policies": policies, "channels": channels, "audience": audience,
            "reminder_day": reminder_day, "last_days": last_days}
    year, _, mon = month.partition("-")
    try:
        if not (year.isdigit() and mon.isdigit()):
            raise campaigns.CampaignFormInvalid("无法创建推送活动", [("month", f"申报月份应写成 2022-07,而不是“{month}”")])
        with db.write() as session:
            campaign = campaigns.create_campaign(
                session=session, actor=user, name=name, unit_code=user.unit.code, policy_ids=policies,
                channels=channels, year=int(year), month=int(mon), audience=audience, reminder_day=reminder_day,
                last_days=last_days, configured=campaigns.configured_channels(request.app.state.settings))
            session.flush()
            campaign_id = campaign.id
    except campaigns.CampaignFormInvalid as exc:
        with db.read() as session:
            return _campaigns_page(request, session, user, form=form, error=exc, status=400)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?created=1", status_code=303)


@router.get("/push/campaigns/{campaign_id}", dependencies=[require("push.campaign")])
def campaign_page(request: Request, campaign_id: Id, session: SessionDep, user: CurrentUser):
    return _campaign_page(request, session, user, campaign_id)


def _campaign_page(request: Request, session, user, campaign_id: int, *, edit: dict | None = None,
                   error: campaigns.CampaignFormInvalid | None = None, status: int = 200):
    """The campaign; after a refused edit, its edit form as typed with each fault beside its field."""
    campaign = campaigns.get_campaign(session=session, actor=user, campaign_id=campaign_id)
    planned = campaigns.stages_of(session, campaign)
    settings = request.app.state.settings
    deadline = None
    if campaign.kind == "policy":
        deadline, _ = campaigns.stage_dates(year=campaign.year, month=campaign.month,
                                            reminder_day=campaign.reminder_day, last_days=campaign.last_days,
                                            session=session)
    failures = campaigns.failure_groups(session, campaign.id, max_attempts=settings.push_max_attempts)
    return render(request, "push/campaign.html", {
        "c": campaign, "stages": planned, "deadline": deadline, "figures": campaigns.delivery_figures(session, campaign.id),
        "unit": session.get(Unit, campaign.unit_id), "stage_names": campaigns.STAGES, "states": campaigns.MESSAGE_STATES,
        "channel_names": CHANNEL_NAMES, "policies": {p.id: p for p in session.query(Policy)},
        "campaign_states": CAMPAIGN_STATES, "channels": campaigns.configured_channels(settings),
        "next_stage": stages.next_stage(session, campaign), "failures": failures, "today": date.today(),
        "stage_states": {s.stage: schedule.stage_state(s, date.today()) for s in planned},
        "may_approve": {s.stage for s in planned if permissions.may_approve(user, campaign, s, date.today())},
        "may_withdraw": {s.stage for s in planned if permissions.may_withdraw(user, campaign, s, date.today())},
        "margin": settings.push_approval_margin,
        "edit": edit or {"name": campaign.name, "policies": campaign.policies, "channels": campaign.channels,
                         "audience": campaign.audience}, "error": error,
        "may": {"run": permissions.may_run(user, campaign, planned), "edit": permissions.may_edit(user, campaign, planned),
                "pause": permissions.may_pause(user, campaign), "resume": permissions.may_resume(user, campaign),
                "cancel": permissions.may_cancel(user, campaign),
                "retry": permissions.may_retry(user, campaign, sum(f.count for f in failures)),
                "requeue": permissions.may_requeue(user, campaign, campaigns.uncertain_count(session, campaign.id))},
    }, user=user, status_code=status)


@router.get("/push/campaigns/{campaign_id}/preview", dependencies=[require("push.campaign")])
def campaign_preview(request: Request, campaign_id: Id, session: SessionDep, user: CurrentUser, stage: StageName = None):
    """Who a stage (the next, or the one named) would reach and what it would say, as of now; the confirmation form
    sends it now, the approval form lets the schedule send it on its day."""
    settings = request.app.state.settings
    with store.connect_store(_store(request)) as conn:
        preview = stages.preview_stage(session=session, conn=conn, actor=user, campaign_id=campaign_id, stage=stage,
                                       configured=campaigns.configured_channels(settings),
                                       cap=settings.push_cap_per_week)
    campaign, today = preview.campaign, date.today()
    next_stage = stages.next_stage(session, campaign)
    return render(request, "push/preview.html", {
        "v": preview, "c": campaign, "stage_names": campaigns.STAGES, "channel_names": CHANNEL_NAMES,
        "state": schedule.stage_state(preview.stage, today), "margin": settings.push_approval_margin,
        "may_confirm": next_stage is not None and next_stage.id == preview.stage.id
        and permissions.may_run(user, campaign, campaigns.stages_of(session, campaign)),
        "may_approve": permissions.may_approve(user, campaign, preview.stage, today)}, user=user)


@router.post("/push/campaigns/{campaign_id}/stages/{stage}/approve", dependencies=[require("push.stage.approve")])
def stage_approve(request: Request, campaign_id: Id, stage: StagePath, db: DatabaseDep, user: CurrentUser,
                  code: str = Form("")):
    """批准按期发送: the stage previewed, with the figures the preview showed, for the schedule to send on its day."""
    if not code:
        raise PushInvalid("请先预览本阶段的发送对象和消息,再批准按期发送")
    settings = request.app.state.settings
    with store.connect_store(_store(request)) as conn, db.write() as session:
        schedule.approve_stage(session=session, conn=conn, actor=user, campaign_id=campaign_id, stage=stage,
                               code=code, configured=campaigns.configured_channels(settings),
                               cap=settings.push_cap_per_week)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?approved={stage}", status_code=303)


@router.post("/push/campaigns/{campaign_id}/stages/{stage}/withdraw", dependencies=[require("push.stage.approve")])
def stage_withdraw(campaign_id: Id, stage: StagePath, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        schedule.withdraw_approval(session=session, actor=user, campaign_id=campaign_id, stage=stage)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?withdrawn={stage}", status_code=303)


@router.post("/push/campaigns/{campaign_id}/run", dependencies=[require("push.campaign")])
def campaign_run(request: Request, campaign_id: Id, db: DatabaseDep, user: CurrentUser, stage: str = Form(""),
                 code: str = Form("")):
    """Send the stage previewed (its name and the preview's code confirm it), then deliver the outbox."""
    with db.read() as session:
        campaign = campaigns.runnable(session=session, actor=user, campaign_id=campaign_id)
    if not stage or not code:
        raise PushInvalid("请先预览本阶段的发送对象和消息,再确认发送")
    store_file, settings = _store(request), request.app.state.settings

    def work(progress) -> TaskResult:  # off the request: a national stage is seconds to minutes of matching
        progress(0, 1, "正在核对并写入消息")
        with store.connect_store(store_file) as conn, db.write() as session:
            done = stages.confirm_stage(session=session, conn=conn, actor=user, campaign_id=campaign_id,
                                           stage=stage, code=code, cap=settings.push_cap_per_week,
                                           configured=campaigns.configured_channels(settings))
            summary = f"已确认发送{campaigns.STAGES[done.stage]}:{done.messages} 条消息"
        progress(1, 1, "正在发送消息")
        campaigns.deliver(db, settings=settings)
        return TaskResult(summary, f"/push/campaigns/{campaign_id}?ran=1")

    return jobs_pages.start(db, user, name="push.campaign.run", title=f"执行推送活动「{campaign.name}」", work=work)


@router.post("/push/campaigns/{campaign_id}/retry", dependencies=[require("push.campaign")])
def campaign_retry(request: Request, campaign_id: Id, db: DatabaseDep, user: CurrentUser, reason: str = Form(""),
                   channel: str = Form("")):
    """Failed messages of one reason go back to the outbox, and the outbox is delivered now."""
    with db.write() as session:
        n = campaigns.retry_failures(session=session, actor=user, campaign_id=campaign_id, reason=reason,
                                     channel=channel)
    settings = request.app.state.settings

    def work(progress) -> TaskResult:
        progress(0, 1, "正在重新发送")
        run = campaigns.deliver(db, settings=settings)
        return TaskResult(f"已重发 {n} 条:送达 {run.sent},仍失败 {run.failed}", f"/push/campaigns/{campaign_id}?retried={n}")

    return jobs_pages.start(db, user, name="push.campaign.retry", title="重发失败的推送消息", work=work)


@router.post("/push/campaigns/{campaign_id}/edit", dependencies=[require("push.campaign")])
def campaign_edit(request: Request, campaign_id: Id, db: DatabaseDep, user: CurrentUser, name: str = Form(""),
                  policies: list[str] = Form([]), channels: list[str] = Form([]), audience: str = Form("")):
    try:
        with db.write() as session:
            campaigns.edit_campaign(session=session, actor=user, campaign_id=campaign_id, name=name,
                                    policy_ids=policies, channels=channels, audience=audience,
                                    configured=campaigns.configured_channels(request.app.state.settings))
    except campaigns.CampaignFormInvalid as exc:
        with db.read() as session:
            return _campaign_page(request, session, user, campaign_id, status=400, error=exc, edit={
                "name": name, "policies": policies, "channels": channels, "audience": audience})
    return RedirectResponse(f"/push/campaigns/{campaign_id}?changed=edited", status_code=303)


@router.post("/push/campaigns/{campaign_id}/pause", dependencies=[require("push.campaign")])
def campaign_pause(campaign_id: Id, db: DatabaseDep, user: CurrentUser):
    """No stage is planned while paused; messages already in the outbox still go out."""
    with db.write() as session:
        campaigns.pause_campaign(session=session, actor=user, campaign_id=campaign_id)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?changed=pause", status_code=303)


@router.post("/push/campaigns/{campaign_id}/resume", dependencies=[require("push.campaign")])
def campaign_resume(campaign_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        campaigns.resume_campaign(session=session, actor=user, campaign_id=campaign_id)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?changed=resume", status_code=303)


@router.post("/push/campaigns/{campaign_id}/cancel", dependencies=[require("push.campaign")])
def campaign_cancel(campaign_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        campaigns.cancel_campaign(session=session, actor=user, campaign_id=campaign_id)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?changed=cancel", status_code=303)


@router.post("/push/campaigns/{campaign_id}/requeue", dependencies=[require("push.campaign")])
def campaign_requeue(campaign_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        n = campaigns.requeue_uncertain(session=session, actor=user, campaign_id=campaign_id)
    return RedirectResponse(f"/push/campaigns/{campaign_id}?requeued={n}", status_code=303)


# --- the taxpayer's side -------------------------------------------------------------------------------


@router.get("/push/inbox", dependencies=[require("push.inbox")])
def inbox_page(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1):
    page, _ = clamp_page(page, 20)
    result = campaigns.inbox(session=session, actor=user, page=page)
    return render(request, "push/inbox.html", {"result": result, "stage_names": campaigns.STAGES}, user=user)


@router.post("/push/inbox/{message_id}/read", dependencies=[require("push.inbox")])
def inbox_read(message_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        message = campaigns.read_message(session=session, actor=user, message_id=message_id)
        target = f"/push/inbox/{message.id}"
    return RedirectResponse(target, status_code=303)


@router.get("/push/inbox/{message_id}", dependencies=[require("push.inbox")])
def inbox_message(request: Request, message_id: Id, db: DatabaseDep, user: CurrentUser):
    with db.write() as session:
        message = campaigns.read_message(session=session, actor=user, message_id=message_id)
        policy = session.get(Policy, message.policy_id) if message.policy_id else None
        return render(request, "push/message.html", {"m": message, "p": policy, "stage_names": campaigns.STAGES},
                      user=user)


def _bill_response(request, b: bills.Bill, user, fmt: str):
    if fmt == "pdf":
        return document(bills.render_pdf(b), f"{b.credit_code}-{b.year}-bill.pdf")
    return render(request, "push/bill.html", {"b": b, "bill_html": bills.render_html(b)}, user=user)


@router.get("/push/bill", dependencies=[require("push.inbox")])
def my_bill(request: Request, session: SessionDep, user: CurrentUser, year: int | None = None, format: str = "html"):
    authorize(user, "push.inbox")
    with store.connect_store(_store(request)) as conn:
        b = bills.bill_for_actor(conn, session=session, actor=user, credit_code=user.taxpayer_code,
                                 year=year or date.today().year - 1)
    return _bill_response(request, b, user, format)


@router.get("/push/bills/{credit_code}", dependencies=[require("push.bill.view", "push.inbox")])
def officer_bill(request: Request, credit_code: str, session: SessionDep, user: CurrentUser,
                 year: int | None = None, format: str = "html"):
    with store.connect_store(_store(request)) as conn:
        b = bills.bill_for_actor(conn, session=session, actor=user, credit_code=credit_code,
                                 year=year or date.today().year - 1)
    return _bill_response(request, b, user, format)


@router.post("/push/bills/send", dependencies=[require("push.campaign")])
def bills_send(request: Request, db: DatabaseDep, user: CurrentUser, year: int = Form(..., title="年度")):
    with store.connect_store(_store(request)) as conn, db.write() as session:
        campaign = bills.push_bills(conn, session=session, actor=user, unit_code=user.unit.code, year=year)
        session.flush()
        campaign_id = campaign.id
    return RedirectResponse(f"/push/campaigns/{campaign_id}?created=1", status_code=303)
