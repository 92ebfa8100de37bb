"""Pages of samples and invitations: the stratified sample's preview and draw, a sample's strata and invitations,
reminders with their preview; the taxpayer's way from the message centre to its own invitation, and the public
opt-out page every invitation links to."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from chunfeng import files
from chunfeng.errors import ChunfengError
from chunfeng.jobs import TaskResult
from chunfeng.org.access import authorize
from chunfeng.push import campaigns, store
from chunfeng.push.schema import CHANNEL_NAMES, CONTACT_ROLES
from chunfeng.survey import invitations, list_sampling, policy, sampling, services
from chunfeng.survey.errors import SurveyInvalid
from chunfeng.survey.routes import parse_upload, upload_bytes
from chunfeng.survey.sample_models import ALLOCATIONS, DIMENSIONS, PERSONAL_DATA, SAMPLE_STATES
from chunfeng.web import forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import Id
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, render, require
from chunfeng.web.downloads import temporary_file
from chunfeng.xlsx import download_path, write_table

router = APIRouter(tags=["survey"])


def _store(request: Request) -> Path:
    return Path(request.app.state.settings.push_store)


def _int(value: str | None, what: str, default: int = 0) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise SurveyInvalid(f"{what}应为整数") from None


def _choice(params) -> dict:
    """The sample's design from a form or a query string: dimensions, allocation, size, seed, given quotas."""
    keys, quotas = params.getlist("key"), params.getlist("quota")
    return {"dimensions": params.getlist("dimensions"), "allocation": params.get("allocation") or "proportional",
            "size": _int(params.get("size"), "样本量"), "seed": _int(params.get("seed"), "随机种子") or None,
            "quotas": {k: _int(q, "配额") for k, q in zip(keys, quotas, strict=False)}}


@router.get("/survey/{survey_id}/sample", dependencies=[require("survey.manage")])
def sample_form(request: Request, survey_id: Id, session: SessionDep, user: CurrentUser):
    """The design form; with `preview=1`, the counts per stratum a draw would take (nothing is drawn)."""
    survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
    plan, choice = None, {"dimensions": ["province", "size"], "allocation": "proportional", "size": 400, "seed": None}
    if request.query_params.get("preview"):
        choice = _choice(request.query_params)
        with store.connect_store(_store(request)) as conn:
            plan = sampling.preview(session=session, conn=conn, actor=user, survey_id=survey_id, **choice)
    return _sample_page(request, session, user, survey, plan=plan, choice=choice)


def _sample_page(request: Request, session, user, survey, *, plan=None, choice=None, list_plan=None, listing=None,
                 refused: forms.Refused | None = None):
    return render(request, "survey/sample_new.html", {
        "survey": survey, "plan": plan, "choice": choice, "dimensions": DIMENSIONS, "allocations": ALLOCATIONS,
        "list_plan": list_plan, "listing": listing, "list_columns": list_sampling.COLUMNS,
        "list_errors": refused.of("list") if refused else {},
        "samples": invitations.samples_of(session, survey.id), "states": SAMPLE_STATES}, user=user,
        status_code=refused.status if refused else 200)


def _list_choice(form) -> dict:
    """The design of a list sample: as a registry sample's, the stratum columns typed (preview) or carried over."""
    choice = _choice(form)
    if not choice["dimensions"]:
        choice["dimensions"] = [c.strip() for c in str(form.get("columns") or "").replace(",", ",").split(",")]
    return choice


@router.post("/survey/{survey_id}/sample/list", dependencies=[require("survey.manage")])
async def sample_list_preview(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser,
                              limits: ImportLimitsDep):
    """The strata and quotas of a sample drawn from an uploaded list (nothing is drawn); the list is kept, by its
    digest, until the draw confirms it (or a day, when it never does). A refused list is shown on the page, each
    problem named, with the status of the refusal (a row outside the subtree: 403, audited)."""
    form = await request.form()

    def page(**context):
        with db.read() as session:
            survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
            return _sample_page(request, session, user, survey, **context)

    with db.read() as session:
        sampling.sampleable(session, user, survey_id)  # the survey itself refused: the error page
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise SurveyInvalid("请选择名单文件(xlsx 或 CSV)")
        data = await upload_bytes(upload, limits, "名单")
        # A long list takes seconds to read (an xlsx of 50,000 rows: 17 s at load 11, bench/survey_list_sample.py):
        # off the event loop, which serves the other requests meanwhile.
        listing = await run_in_threadpool(parse_upload, upload.filename, data,
                                          lambda path: list_sampling.parse_list(path, limits=limits, name=upload.filename))
        choice = _list_choice(form)
        with db.read() as session:
            plan = list_sampling.preview(session=session, actor=user, survey_id=survey_id, listing=listing, **choice)
    except ChunfengError as exc:
        return page(refused=forms.refused(db, request, user, exc, form="list", fields=(), values={}))
    staged = files.staged_upload(request.app.state.settings.data_dir, listing.digest)
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(data)
    return page(list_plan=plan, listing=listing)


@router.post("/survey/{survey_id}/samples/list", dependencies=[require("survey.manage")])
async def sample_list_draw(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser,
                           limits: ImportLimitsDep):
    """Draw from the list previewed (its digest and seed are in the form), off the request."""
    form = await request.form()
    choice = _list_choice(form)
    if choice["seed"] is None:
        raise SurveyInvalid("请先预览名单各层,再确认抽取(预览给出随机种子)")
    data_dir, name = request.app.state.settings.data_dir, str(form.get("list_name") or "名单")[:200]
    try:
        staged = files.staged_upload(data_dir, str(form.get("digest") or ""))
    except ValueError:
        raise SurveyInvalid("请先上传名单并预览") from None
    if not staged.is_file():
        raise SurveyInvalid("预览的名单已不在服务器上(保留一天,抽取后即删除),请重新上传并预览")
    with db.read() as session:
        survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
        if refused := policy.manage_refusal(user, survey):
            raise refused

    def work(progress) -> TaskResult:
        progress(0, 1, "正在读取名单并抽取样本")
        listing = list_sampling.parse_list(staged, limits=limits, name=name)
        with db.write() as session:
            sample = list_sampling.draw(session=session, actor=user, survey_id=survey_id, listing=listing, **choice)
            sample_id, drawn = sample.id, sample.drawn
        shutil.rmtree(staged.parent, ignore_errors=True)  # the list held everyone's contacts: only the drawn stay
        return TaskResult(f"已从名单抽取 {drawn} 户(随机种子 {choice['seed']})", f"/survey/samples/{sample_id}")

    return jobs_pages.start(db, user, name="survey.sample.draw", title="从名单抽取问卷样本", work=work)


@router.post("/survey/{survey_id}/samples", dependencies=[require("survey.manage")])
async def sample_draw(request: Request, survey_id: Id, db: DatabaseDep, user: CurrentUser):
    """Draw the sample previewed (its seed is in the form), off the request: a national frame is millions of rows."""
    choice = _choice(await request.form())
    if choice["seed"] is None:
        raise SurveyInvalid("请先预览样本,再确认抽取(预览给出随机种子)")
    with db.read() as session:
        survey = services.get_survey(session=session, actor=user, survey_id=survey_id)
        if refused := policy.manage_refusal(user, survey):
            raise refused
    store_file = _store(request)

    def work(progress) -> TaskResult:
        progress(0, 1, "正在抽取样本")
        with store.connect_store(store_file) as conn, db.write() as session:
            sample = sampling.draw(session=session, conn=conn, actor=user, survey_id=survey_id, **choice)
            sample_id, drawn = sample.id, sample.drawn
        return TaskResult(f"已抽取 {drawn} 户(随机种子 {choice['seed']})", f"/survey/samples/{sample_id}")

    return jobs_pages.start(db, user, name="survey.sample.draw", title="抽取问卷样本", work=work)


@router.get("/survey/samples/{sample_id}", dependencies=[require("survey.view")])
def sample_page(request: Request, sample_id: Id, session: SessionDep, user: CurrentUser):
    sample = invitations.get_sample(session=session, actor=user, sample_id=sample_id)
    survey = services.get_survey(session=session, actor=user, survey_id=sample.survey_id)
    settings = request.app.state.settings
    return render(request, "survey/sample.html", {
        "sample": sample, "survey": survey, "figures": invitations.stratum_figures(session, sample),
        "dimensions": DIMENSIONS, "allocations": ALLOCATIONS, "states": SAMPLE_STATES,
        "personal": PERSONAL_DATA, "roles": CONTACT_ROLES, "channel_names": CHANNEL_NAMES,
        "channels": campaigns.configured_channels(settings),
        "may_invite": sample.state == "drawn" and policy.may_invite(user, survey),
        "may_remind": sample.state == "invited" and survey.state == "published" and policy.may_manage(user, survey),
    }, user=user)


@router.get("/survey/samples/{sample_id}/strata.xlsx", dependencies=[require("survey.view")])
def sample_export(sample_id: Id, session: SessionDep, user: CurrentUser):
    sample = invitations.get_sample(session=session, actor=user, sample_id=sample_id)
    rows = [[f.stratum.key, f.stratum.label, f.stratum.frame_size, f.stratum.quota, f.stratum.drawn, f.invited,
             f.answered, f.opted_out, "" if f.response_rate is None else round(f.response_rate, 1)]
            for f in invitations.stratum_figures(session, sample)]
    path = write_table(download_path(), sheet="分层", headers=[
        "层", "名称", "抽样框(户)", "配额", "抽中", "已邀请", "已作答", "已退订未邀", "回收率(%)"], rows=rows,
        widths=[24, 36, 12, 8, 8, 8, 8, 10, 10])
    return temporary_file(path, f"样本{sample.id}-分层(随机种子{sample.seed}).xlsx")


@router.post("/survey/samples/{sample_id}/invite", dependencies=[require("survey.manage")])
async def sample_invite(request: Request, sample_id: Id, db: DatabaseDep, user: CurrentUser):
    """Invite the sample through the push outbox, then deliver it (off the request)."""
    form = await request.form()
    settings, store_file, base_url = request.app.state.settings, _store(request), str(request.base_url)
    args = dict(channels=form.getlist("channels"), roles=form.getlist("roles"),
                personal_data=form.getlist("personal_data"),
                max_reminders=_int(form.get("max_reminders"), "最多提醒次数", 2),
                remind_after_days=_int(form.get("remind_after_days"), "提醒间隔", 3))
    with db.read() as session:
        sample = invitations.get_sample(session=session, actor=user, sample_id=sample_id)
        survey = services.get_survey(session=session, actor=user, survey_id=sample.survey_id)
        if refused := policy.invite_refusal(user, survey):
            raise refused

    def work(progress) -> TaskResult:
        progress(0, 2, "正在生成邀请")
        with store.connect_store(store_file) as conn, db.write() as session:
            done = invitations.invite(session=session, conn=conn, actor=user, sample_id=sample_id, base_url=base_url,
                                      configured=campaigns.configured_channels(settings), **args)
            campaign_id = done.campaign_id
        progress(1, 2, "正在发送消息")
        campaigns.deliver(db, settings=settings)
        return TaskResult(f"已发出邀请(推送活动 {campaign_id})", f"/survey/samples/{sample_id}")

    return jobs_pages.start(db, user, name="survey.sample.invite", title="发送问卷邀请", work=work)


@router.get("/survey/samples/{sample_id}/reminders", dependencies=[require("survey.manage")])
def reminders_preview(request: Request, sample_id: Id, session: SessionDep, user: CurrentUser):
    v = invitations.preview_reminders(session=session, actor=user, sample_id=sample_id)
    return render(request, "survey/reminders.html", {"v": v}, user=user)


@router.post("/survey/samples/{sample_id}/reminders", dependencies=[require("survey.manage")])
def reminders_send(sample_id: Id, db: DatabaseDep, user: CurrentUser, code: str = Form("")):
    with db.write() as session:
        sent = invitations.send_reminders(session=session, actor=user, sample_id=sample_id, code=code)
    return RedirectResponse(f"/survey/samples/{sample_id}?reminded={sent}", status_code=303)


@router.get("/survey/invited/{member_id}", dependencies=[require("push.inbox")])
def own_invitation(member_id: Id, session: SessionDep, user: CurrentUser):
    """From the message centre to the taxpayer's own invitation (the link there carries no token)."""
    authorize(user, "push.inbox")
    token = invitations.own_invitation(session=session, actor=user, member_id=member_id)
    return RedirectResponse(f"/s/{token}", status_code=303)


@router.get("/s/{token}/stop")
def stop_form(request: Request, token: str, session: SessionDep):
    member, survey = invitations.member_of_token(session, token)
    return render(request, "survey/stop.html", {"token": token, "survey": survey,
                                                "done": invitations.is_opted_out(session, member.credit_code)},
                  user=None)


@router.post("/s/{token}/stop")
def stop(request: Request, token: str, db: DatabaseDep):
    with db.write() as session:
        invitations.opt_out(session=session, token=token)
    return RedirectResponse(f"/s/{token}/stop", status_code=303)
