"""Campaigns: staged reminders along a filing period, frequency caps, opt-outs, and delivery through an outbox.

A stage is planned once, in one transaction that writes every message, enqueues the deliveries of those not
in-app in the outbox and marks the stage planned, so a repeated run adds nothing. The outbox sends them at most
once (`chunfeng.outbox`): a taxpayer never gets the same message twice, also when a sender is killed mid-send.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from chunfeng import crypto, outbox
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.db import Database, utcnow
from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.push import matching, periods, rules
from chunfeng.push import policy as permissions
from chunfeng.push.errors import PushError, PushInvalid, PushNotFound
from chunfeng.push.models import Campaign, CampaignStage, Policy, PushMessage
from chunfeng.push.schema import CHANNELS
from chunfeng.settings import DEFAULTS, Settings
from chunfeng.workdays import WorkCalendar, configured_calendar, filing_period

STAGES = {"first": "政策提醒", "reminder": "申报提醒", "last": "截止前提醒", "bill": "红利账单"}
MESSAGE_STATES = outbox.STATES
ORIGIN = "push.message"
log = logging.getLogger(__name__)




def stage_dates(*, year: int, month: int, reminder_day: int, last_days: int, session: Session | None = None,
                cal: WorkCalendar | None = None) -> tuple[date, dict[str, date]]:
    """The filing deadline and the day each stage is due: the first working day of the period, the
    reminder day (or the next working day), and `last_days` working days before the deadline.

    The calendar is the one in force (`session`) or `cal`; a month of a year it does not cover raises
    CalendarNotCovered rather than planning on weekends alone (a January campaign would greet New Year's Day)."""
    if cal is None:
        if session is None:
            raise TypeError("stage_dates needs the session (the calendar in force) or a calendar")
        cal = configured_calendar(session)
    start, deadline = filing_period(year, month, cal)
    due = {"first": cal.next_working_day(start)}
    reminder = cal.next_working_day(date(year, month, min(reminder_day, 28)))
    last = deadline
    for _ in range(last_days):
        last = last - timedelta(days=1)
        while not cal.is_working_day(last):
            last -= timedelta(days=1)
    if due["first"] < reminder < last:
        due["reminder"] = reminder
    if due["first"] < last:
        due["last"] = last
    return deadline, due


def create_campaign(*, session: Session, actor: Actor, name: str, unit_code: str, policy_ids: list[str],
                    channels: list[str], year: int, month: int, audience: str = "", reminder_day: int = 10,
                    last_days: int = 2) -> Campaign:
    unit = find_unit(session=session, code=unit_code)
    authorize(actor, "push.campaign", unit)
    problems = []
    problems = _content_problems(session, name=name, policy_ids=policy_ids, channels=channels, audience=audience)
    if not 1 <= month <= 12 or not 2000 <= year <= 2100:
        problems.append(f"申报月份 {year}-{month} 无效")
    if not 1 <= reminder_day <= 28 or not 0 <= last_days <= 10:
        problems.append("提醒日应在 1–28 日之间,截止前提醒应在 0–10 个工作日之间")
    if not problems:
        problems = _validity_problems(session, policy_ids, year=year, month=month)
    if problems:
        raise PushInvalid("无法创建推送活动:" + ";".join(problems))
    try:
        _, due = stage_dates(year=year, month=month, reminder_day=reminder_day, last_days=last_days, session=session)
        cal = configured_calendar(session)
        for policy in session.scalars(select(Policy).where(Policy.id.in_(policy_ids))):
            # the deadline the messages will name (January's, for a quarter filed next year) must be known now
            periods.return_due(period_kind=policy.period_kind, filing=policy.filing, year=year, month=month, cal=cal)
    except CalendarNotCovered as exc:
        raise PushInvalid(f"无法创建推送活动:{exc}") from exc
    campaign = Campaign(name=name.strip(), unit_id=unit.id, policies=list(dict.fromkeys(policy_ids)),
                        channels=list(dict.fromkeys(channels)), audience=audience.strip(), year=year, month=month,
                        reminder_day=reminder_day, last_days=last_days, created_by=actor.username)
    session.add(campaign)
    session.flush()
    for stage, day in due.items():
        session.add(CampaignStage(campaign_id=campaign.id, stage=stage, due=day))
    audit.record(session, actor=actor, action="push.campaign.created", object_type="campaign", object_id=campaign.id,
                 after={"name": campaign.name, "unit": unit.code, "policies": campaign.policies,
                        "channels": campaign.channels, "period": f"{year}-{month:02d}", "audience": campaign.audience})
    return campaign


def _content_problems(session: Session, *, name: str, policy_ids: list[str], channels: list[str],
                      audience: str) -> list[str]:
    """What is wrong with what a campaign says (creating or editing one). The audience rule is checked on the
    engine too, so a saved campaign never fails its scheduled run on its own rule."""
    problems = []
    if not name.strip():
        problems.append("请填写活动名称")
    known = set(session.scalars(select(Policy.id).where(Policy.id.in_(policy_ids)))) if policy_ids else set()
    if not policy_ids:
        problems.append("请至少选择一项政策")
    elif missing := [p for p in policy_ids if p not in known]:
        problems.append(f"没有这些政策:{'、'.join(missing)}")
    if not channels:
        problems.append("请至少选择一个渠道")
    elif bad := [c for c in channels if c not in CHANNELS]:
        problems.append(f"未知渠道:{'、'.join(bad)}(可用:{'、'.join(CHANNELS)})")
    if audience.strip():
        try:
            rules.check(audience)
        except rules.RuleError as exc:
            problems.append(f"补充条件:{exc}")
    return problems


def _validity_problems(session: Session, policy_ids: list[str], *, year: int, month: int) -> list[str]:
    """Each policy whose validity does not cover the period the campaign's messages are about (its return's)."""
    problems = []
    for policy in session.scalars(select(Policy).where(Policy.id.in_(policy_ids)).order_by(Policy.id)):
        period = periods.return_period(period_kind=policy.period_kind, filing=policy.filing, year=year, month=month)
        if problem := periods.validity_problem(policy, period):
            problems.append(problem)
    return problems


def get_campaign(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise PushNotFound(f"没有编号为 {campaign_id} 的推送活动")
    authorize(actor, "push.campaign", session.get(Unit, campaign.unit_id))
    return campaign


def list_campaigns(*, session: Session, actor: Actor, page: int = 1, per_page: int = 30) -> Page[Campaign]:
    authorize(actor, "push.campaign")
    where = [Campaign.unit_id == Unit.id, subtree_filter(actor)]
    return paginate(session, select(Campaign).join(Unit, Campaign.unit_id == Unit.id).where(*where)
                    .order_by(Campaign.id.desc()), page, per_page)


def render(policy: Policy, role: str, channel: str, values: dict) -> str:
    by_channel = policy.templates.get(role) or {}
    template = by_channel.get(channel) or by_channel.get("default") or policy.summary
    return template.format_map(defaultdict(str, values))


def _recipients_sql(campaign: Campaign, policy: Policy, stage: CampaignStage, region: str,
                    period: str) -> tuple[str, dict]:
    """Eligible taxpayers × their contacts for this policy's roles on the campaign's channels (opted-out included,
    flagged, so they can be counted). Reminders go only to those who have not both filed and claimed.
    The SQL and its bound parameters."""
    audience = matching.Audience(region=region, extra=campaign.audience)
    eligible = matching._eligible_sql(rules.parse(policy.rule), audience, "r.credit_code, r.name")
    roles_sql, params = matching.in_list("role", policy.roles)
    channels_sql, channel_params = matching.in_list("channel", campaign.channels)
    params.update(channel_params, **audience.params())
    pending = ""
    if stage.stage in ("reminder", "last"):
        params.update(filing=policy.filing, period=period, due=stage.due, policy=policy.id)
        pending = """WHERE NOT (
            EXISTS (SELECT 1 FROM filings f WHERE f.credit_code = e.credit_code AND f.return_type = $filing
                    AND f.period = $period AND f.filed_on <= $due)
            AND EXISTS (SELECT 1 FROM claims c WHERE c.credit_code = e.credit_code AND c.policy = $policy
                    AND c.period = $period))"""
    return f"""
        WITH e AS ({eligible})
        SELECT e.credit_code, e.name, k.role, k.person, k.channel, k.address, k.opted_out
        FROM (SELECT * FROM e {pending}) AS e
        JOIN contacts k ON k.credit_code = e.credit_code AND k.role IN ({roles_sql}) AND k.channel IN ({channels_sql})
        ORDER BY e.credit_code, k.role, k.channel""", params


def _recent_pushes(session: Session, codes: list[str], since: datetime) -> dict[str, int]:
    """Distinct pushes (campaign, stage, policy) each taxpayer received since `since`: what the cap counts."""
    counts: dict[str, int] = {}
    for i in range(0, len(codes), 1000):
        chunk = codes[i:i + 1000]
        inner = (select(PushMessage.credit_code, PushMessage.campaign_id, PushMessage.stage, PushMessage.policy_id)
                 .where(PushMessage.credit_code.in_(chunk), PushMessage.created_at >= since).distinct().subquery())
        for code, n in session.execute(select(inner.c.credit_code, func.count()).group_by(inner.c.credit_code)):
            counts[code] = n
    return counts


def plan_stage(*, session: Session, conn, campaign: Campaign, stage: CampaignStage, now: datetime | None = None,
               cap: int = DEFAULTS.push_cap_per_week) -> CampaignStage:
    """Write the stage's messages to the outbox (in-app ones are delivered by being written)."""
    if stage.planned_at is not None:
        return stage
    now = now or utcnow()
    unit = session.get(Unit, campaign.unit_id)
    region = matching.region_prefix(unit.code)
    policies = [session.get(Policy, pid) for pid in campaign.policies]
    if problems := _validity_problems(session, campaign.policies, year=campaign.year, month=campaign.month):
        raise PushInvalid("不能执行推送阶段:" + ";".join(problems))
    cal = configured_calendar(session)
    found: list[tuple[Policy, periods.ReturnDue, list[tuple]]] = []
    for policy in policies:
        due = periods.return_due(period_kind=policy.period_kind, filing=policy.filing, year=campaign.year,
                                 month=campaign.month, cal=cal)
        rows = matching.DuckDBEngine(conn).rows(*_recipients_sql(campaign, policy, stage, region, due.period))
        found.append((policy, due, rows))
    codes = sorted({row[0] for _, _, rows in found for row in rows})
    used = _recent_pushes(session, codes, now - timedelta(days=7))
    pushes: dict[str, set[str]] = defaultdict(set)
    audience, capped, opted_out, messages = set(), set(), 0, []
    for policy, period, rows in found:
        for code, name, role, person, channel, address, out in rows:
            audience.add(code)
            if out:
                opted_out += 1
                continue
            if policy.id not in pushes[code] and used.get(code, 0) + len(pushes[code]) >= cap:
                capped.add((code, policy.id))
                continue
            pushes[code].add(policy.id)
            values = {"name": name, "person": crypto.decrypt(person), "policy": policy.name, "basis": policy.basis,
                      "period": period.label, "deadline": period.deadline_text(campaign.year)}
            messages.append(dict(
                campaign_id=campaign.id, stage=stage.stage, policy_id=policy.id, credit_code=code, taxpayer_name=name,
                role=role, person=person, channel=channel, address=address,
                title=f"{STAGES[stage.stage]}:{policy.name}"[:200], body=render(policy, role, channel, values),
                link=f"/push/policies/{policy.id}", created_at=now))
    for i in range(0, len(messages), 5000):
        session.execute(PushMessage.__table__.insert(), messages[i:i + 5000])
    # One statement, the stored ciphertexts copied as they are: a national stage enqueues millions.
    outbox.enqueue_from(session, select(
        literal(ORIGIN), PushMessage.id, literal(unit.path), PushMessage.channel, PushMessage.address,
        PushMessage.title, PushMessage.body).where(PushMessage.campaign_id == campaign.id,
                                                   PushMessage.stage == stage.stage, PushMessage.channel != "inapp"))
    stage.planned_at, stage.audience, stage.messages = now, len(audience), len(messages)
    stage.capped, stage.opted_out = len(capped), opted_out
    audit.record(session, actor=SystemActor(), action="push.stage.planned", object_type="campaign", object_id=campaign.id,
                 after={"stage": stage.stage, "audience": stage.audience, "messages": stage.messages,
                        "capped": stage.capped, "opted_out": opted_out})
    return stage


def due_stages(session: Session, today: date) -> list[tuple[Campaign, CampaignStage]]:
    return list(session.execute(
        select(Campaign, CampaignStage).join(CampaignStage, CampaignStage.campaign_id == Campaign.id)
        .where(Campaign.state == "active", Campaign.kind == "policy", CampaignStage.planned_at.is_(None),
               CampaignStage.due <= today).order_by(CampaignStage.due, Campaign.id)).all())


def run_due(db: Database, conn, *, today: date, now: datetime | None = None,
            campaign_id: int | None = None, cap: int = DEFAULTS.push_cap_per_week,
            progress: Progress = no_progress) -> list[CampaignStage]:
    """Plan every stage that is due (of one campaign, or of all), each in its own transaction.

    A campaign whose stage fails (a rule the engine refuses, today's data overflowing it) is marked `failed`
    with the reason, shown on its page, and skipped until someone resumes it; the other campaigns are still
    planned, and the outbox is still delivered: one bad campaign must not stall the nation's."""
    done = []
    with db.read() as session:
        work = [(c.id, s.id) for c, s in due_stages(session, today) if campaign_id in (None, c.id)]
    failed: set[int] = set()
    for n, (cid, stage_id) in enumerate(work):
        progress(n, len(work), "正在执行推送阶段")
        if cid in failed:
            continue
        try:
            with db.write() as session:
                stage = session.get(CampaignStage, stage_id)
                done.append(plan_stage(session=session, conn=conn, campaign=session.get(Campaign, cid),
                                       stage=stage, now=now, cap=cap))
        except Exception as exc:  # noqa: BLE001 (isolation is the point: record it, go on with the others)
            failed.add(cid)
            _record_failure(db, cid, stage_id, exc)
    return done


def _record_failure(db: Database, campaign_id: int, stage_id: int, exc: Exception) -> None:
    if isinstance(exc, (PushError, rules.RuleError)):
        reason = str(exc)
        log.warning("campaign %s: stage %s failed: %s", campaign_id, stage_id, exc)
    else:
        reason = f"执行出错({type(exc).__name__}),详见服务器日志"
        log.exception("campaign %s: stage %s failed", campaign_id, stage_id)
    with db.write() as session:
        campaign = session.get(Campaign, campaign_id)
        stage = session.get(CampaignStage, stage_id)
        campaign.state, campaign.last_error = "failed", f"{STAGES[stage.stage]}({stage.due}):{reason}"[:1000]
        audit.record(session, actor=SystemActor(), action="push.campaign.failed", object_type="campaign",
                     object_id=campaign_id, after={"stage": stage.stage, "error": campaign.last_error}, outcome="failure")


def _deliveries_of(campaign_id: int):
    """SQL condition: the outbox deliveries of the campaign's messages."""
    return (outbox.Delivery.origin == ORIGIN) & outbox.Delivery.origin_id.in_(
        select(PushMessage.id).where(PushMessage.campaign_id == campaign_id))


def deliver(db: Database, *, settings: Settings, now: datetime | None = None, limit: int = 10_000) -> outbox.DeliveryRun:
    """Send the push messages due in the outbox (claim → send → record: never twice)."""
    return outbox.deliver_due(db, settings=settings, now=now, limit=limit, origin=ORIGIN)


def delivery_figures(session: Session, campaign_id: int) -> dict:
    """Messages by stage, channel and state: the campaign page's delivery table."""
    figures: dict = defaultdict(lambda: defaultdict(int))
    delivered = func.coalesce(outbox.Delivery.state, "sent")  # in-app: delivered by being written
    for stage, channel, state, n in session.execute(
            select(PushMessage.stage, PushMessage.channel, delivered, func.count())
            .outerjoin(outbox.Delivery, (outbox.Delivery.origin == ORIGIN) & (outbox.Delivery.origin_id == PushMessage.id))
            .where(PushMessage.campaign_id == campaign_id)
            .group_by(PushMessage.stage, PushMessage.channel, delivered)):
        figures[(stage, channel)][state] += n
    read = dict(session.execute(select(PushMessage.stage, func.count()).where(
        PushMessage.campaign_id == campaign_id, PushMessage.read_at.is_not(None)).group_by(PushMessage.stage)).all())
    return {"by_stage_channel": {k: dict(v) for k, v in figures.items()}, "read": read}


def uncertain_count(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(outbox.Delivery).where(
        _deliveries_of(campaign_id), outbox.Delivery.state == "uncertain")) or 0


def requeue_uncertain(*, session: Session, actor: Actor, campaign_id: int) -> int:
    """An official who has checked with the gateway that nothing went out sends the uncertain ones again."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.requeue_refusal(actor, campaign, uncertain_count(session, campaign.id)):
        raise refused
    n = outbox.requeue(session, _deliveries_of(campaign.id))
    audit.record(session, actor=actor, action="push.campaign.requeued", object_type="campaign", object_id=campaign.id,
                 after={"messages": n})
    return n


# --- pausing, resuming, editing and cancelling -----------------------------------------------------

def stages_of(session: Session, campaign: Campaign) -> list[CampaignStage]:
    return list(session.scalars(select(CampaignStage).where(CampaignStage.campaign_id == campaign.id)
                                .order_by(CampaignStage.due)))


def runnable(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """The campaign, if `actor` may run its due stages now (its page's button; the schedule runs them anyway)."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.run_refusal(actor, campaign):
        raise refused
    return campaign


def pause_campaign(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """No stage is planned while paused; what the outbox already holds is still delivered."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.pause_refusal(actor, campaign):
        raise refused
    before, campaign.state = campaign.state, "paused"
    audit.record(session, actor=actor, action="push.campaign.paused", object_type="campaign", object_id=campaign.id,
                 before={"state": before}, after={"state": "paused"})
    return campaign


def resume_campaign(*, session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """Back to the schedule, after its rules (the audience and each policy's) check again on the engine."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.resume_refusal(actor, campaign):
        raise refused
    problems = []
    for label, text in [("补充条件", campaign.audience)] + [
            (f"政策 {p.id}", p.rule) for p in session.scalars(select(Policy).where(Policy.id.in_(campaign.policies)))]:
        if text.strip():
            try:
                rules.check(text)
            except rules.RuleError as exc:
                problems.append(f"{label}的规则:{exc}")
    if problems:
        raise PushInvalid("无法恢复推送活动,请先修改:" + ";".join(problems))
    before = {"state": campaign.state, "last_error": campaign.last_error}
    campaign.state, campaign.last_error = "active", ""
    audit.record(session, actor=actor, action="push.campaign.resumed", object_type="campaign", object_id=campaign.id,
                 before=before, after={"state": "active"})
    return campaign


def edit_campaign(*, session: Session, actor: Actor, campaign_id: int, name: str, policy_ids: list[str],
                  channels: list[str], audience: str) -> Campaign:
    """Change what the stages not yet run will send, and to whom; stages already run keep what they sent."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.edit_refusal(actor, campaign, stages_of(session, campaign)):
        raise refused
    problems = _content_problems(session, name=name, policy_ids=policy_ids, channels=channels, audience=audience)
    if not problems:
        problems = _validity_problems(session, policy_ids, year=campaign.year, month=campaign.month)
    if problems:
        raise PushInvalid("无法修改推送活动:" + ";".join(problems))
    fields = ("name", "policies", "channels", "audience")
    before = {f: getattr(campaign, f) for f in fields}
    campaign.name, campaign.audience = name.strip(), audience.strip()
    campaign.policies, campaign.channels = list(dict.fromkeys(policy_ids)), list(dict.fromkeys(channels))
    after = {f: getattr(campaign, f) for f in fields}
    if after != before:
        audit.record(session, actor=actor, action="push.campaign.edited", object_type="campaign",
                     object_id=campaign.id, before=before, after=after)
    return campaign


def cancel_campaign(*, session: Session, actor: Actor, campaign_id: int) -> int:
    """No more stages, and the messages still waiting in the outbox are withdrawn; returns how many."""
    campaign = get_campaign(session=session, actor=actor, campaign_id=campaign_id)
    if refused := permissions.cancel_refusal(actor, campaign):
        raise refused
    withdrawn = outbox.cancel(session, _deliveries_of(campaign.id))
    before, campaign.state = campaign.state, "cancelled"
    audit.record(session, actor=actor, action="push.campaign.cancelled", object_type="campaign", object_id=campaign.id,
                 before={"state": before}, after={"state": "cancelled", "messages_withdrawn": withdrawn})
    return withdrawn


# --- the taxpayer's message centre ----------------------------------------------------------------

def _taxpayer(actor: Actor):
    authorize(actor, "push.inbox")
    return actor.taxpayer_code, actor.taxpayer_role


def inbox(*, session: Session, actor: Actor, page: int = 1, per_page: int = 20) -> Page[PushMessage]:
    code, role = _taxpayer(actor)
    where = [PushMessage.credit_code == code, PushMessage.role == role, PushMessage.channel == "inapp"]
    return paginate(session, select(PushMessage).where(*where).order_by(PushMessage.created_at.desc(),
                                                                        PushMessage.id.desc()), page, per_page)


def inbox_unread(*, session: Session, actor: Actor) -> int:
    code, role = _taxpayer(actor)
    return session.scalar(select(func.count()).select_from(PushMessage).where(
        PushMessage.credit_code == code, PushMessage.role == role, PushMessage.channel == "inapp",
        PushMessage.read_at.is_(None))) or 0


def read_message(*, session: Session, actor: Actor, message_id: int) -> PushMessage:
    code, role = _taxpayer(actor)
    message = session.get(PushMessage, message_id)
    if message is None or message.credit_code != code or message.role != role or message.channel != "inapp":
        raise PushNotFound(f"没有编号为 {message_id} 的消息")
    if message.read_at is None:
        message.read_at = utcnow()
    return message
