"""Pages of demands and complaints: the public form and tracking page, the JSON intake API, the officials'
list and handling page, hotline import, and the hand-off from the 12366 console."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict

from chunfeng.appeals import analysis, intake, policy, services
from chunfeng.appeals.errors import AppealInvalid, AppealNotFound
from chunfeng.appeals.models import ACTION_NAMES, CHANNELS, KINDS, MOVES, STATES
from chunfeng.bounds import OutOfBounds, bounded_day
from chunfeng.consult.routes import queue_page
from chunfeng.errors import ChunfengError
from chunfeng.files import TYPES
from chunfeng.jobs import TaskResult
from chunfeng.org.access import allowed, authorize
from chunfeng.org.models import Unit
from chunfeng.org.regions import regions
from chunfeng.paging import clamp_page
from chunfeng.web import forms
from chunfeng.web import jobs as jobs_pages
from chunfeng.web.contract import API_ERRORS, ApiError, FormId, Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, ImportLimitsDep, SessionDep, optional_user, render, require
from chunfeng.web.downloads import checked_purpose, document, personal_xlsx, stored_file, temporary_file
from chunfeng.xlsx import download_path

router = APIRouter(tags=["appeals"])
REGIONS = regions()


def _files(request: Request) -> Path:
    return Path(request.app.state.settings.data_dir)


def _rules(request: Request) -> services.AppealRules:
    return services.AppealRules.from_settings(request.app.state.settings)


RulesDep = Annotated[services.AppealRules, Depends(_rules)]


# The fields of the two intake forms: a problem of any other (the channel, the taxpayer code a login brings) is the
# form's own, shown at the top.
OFFICIAL_FIELDS = ("kind", "title", "text", "region", "topic", "submitter", "phone", "email")
PUBLIC_FIELDS = OFFICIAL_FIELDS + ("files",)


@router.get("/appeals/new")
def new_form(request: Request, db: DatabaseDep, kind: str = "complaint"):
    user = optional_user(request, db, request.app.state.settings)
    return render(request, "appeals/new.html", {"kinds": {k: v for k, v in KINDS.items() if k != "opinion"},
                                                "kind": kind, "regions": REGIONS, "values": {}}, user=user)


@router.post("/appeals/new")
async def submit_form(request: Request, db: DatabaseDep, rules: RulesDep, kind: str = Form("complaint"), title: str = Form(""),
                      text: str = Form(""), region: str = Form(""), topic: str = Form(""), submitter: str = Form(""),
                      phone: str = Form(""), email: str = Form(""), files: list[UploadFile] = File(default=[])):
    limit = request.app.state.settings.appeal_file_max_mb * 1048576
    attachments = [(f.filename or "附件", await f.read(limit + 1)) for f in files if f.filename]
    fields = dict(kind=kind, text=text, title=title, region=region, topic=topic, submitter=submitter, phone=phone,
                  email=email)
    # Everything past the upload (the login lookup, the classification, the write, the page) on the thread pool: the
    # classification is milliseconds of CPU and the write waits for the disk, and on the event loop either would hold
    # every other request of this process, /healthz included, until it ended (issue 16).
    return await run_in_threadpool(_receive_form, request, db, rules, fields, attachments)


def _receive_form(request: Request, db, rules: services.AppealRules, fields: dict, attachments: list):
    user = optional_user(request, db, request.app.state.settings)
    submission = intake.Submission(**fields, taxpayer_code=(user.taxpayer_code or "") if user is not None else "")
    try:
        intake.refuse_invalid(submission, official=False, attachments=attachments, rules=rules)
        with db.read() as session:  # classified before the write transaction, as the API does
            classified = intake.classify(session, f"{submission.title} {submission.text}",
                                         stale_seconds=request.app.state.settings.index_stale_seconds)

        def receive(session) -> str:
            return intake.submit(session=session, submission=submission, attachments=attachments,
                                 files=_files(request), classified=classified, rules=rules)[1]

        token = db.write_grouped(receive)
    except AppealInvalid as exc:  # the form again, each problem beside its field, everything typed kept
        return render(request, "appeals/new.html", {"kinds": {k: v for k, v in KINDS.items() if k != "opinion"},
                                                    "kind": fields["kind"], "regions": REGIONS,
                                                    "errors": forms.form_errors(db, request, user, exc, fields=PUBLIC_FIELDS),
                                                    "values": submission.__dict__}, user=user, status_code=400)
    return RedirectResponse(f"/appeals/track/{token}?new=1", status_code=303)


class AppealIn(BaseModel):
    kind: str
    text: str
    title: str = ""
    region: str = ""
    topic: str = ""
    submitter: str = ""
    phone: str = ""
    email: str = ""


class ApiDue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept: date
    reply: date
    close: date


class ApiReceipt(BaseModel):
    """The JSON answer of /api/appeals: the item's number, tracking token, unit and time limits."""
    model_config = ConfigDict(extra="forbid")
    id: int
    number: str
    token: str
    state: str
    unit: str
    measures: list[int]
    due: ApiDue


class ApiRefusal(BaseModel):
    """A refused item: the message, and each problem by the field it is about (absent where no field is named)."""
    model_config = ConfigDict(extra="forbid")
    detail: str
    fields: dict[str, str] = {}


@router.post("/api/appeals", status_code=201, responses={
    201: {"model": ApiReceipt}, **API_ERRORS, 400: {"model": ApiRefusal, "description": "参数或内容无效,fields 按字段列出问题"},
    403: {"model": ApiError, "description": "缺少防伪令牌(请求带有会话 Cookie,或不是 JSON)"}})
def submit_api(request: Request, db: DatabaseDep, rules: RulesDep, item: AppealIn):
    """Receive an item; the answer carries its number, tracking token, unit and time limits."""
    submission = intake.Submission(channel="api", **item.model_dump())
    try:
        intake.refuse_invalid(submission, official=False, rules=rules)  # a megabyte of text is refused before it is classified
    except AppealInvalid as exc:
        return JSONResponse({"detail": str(exc), "fields": forms.form_errors(db, request, None, exc)}, status_code=400)
    with db.read() as session:
        classified = intake.classify(session, f"{submission.title} {submission.text}",
                                     stale_seconds=request.app.state.settings.index_stale_seconds)

    def receive(session) -> dict:
        appeal, token = intake.submit(session=session, submission=submission, classified=classified, rules=rules)
        return {"id": appeal.id, "number": appeal.number, "token": token, "state": appeal.state, "unit": appeal.unit.code,
                "measures": appeal.measures, "due": {"accept": str(appeal.due_accept), "reply": str(appeal.due_reply),
                                                     "close": str(appeal.due_close)}}

    # The audit chain's lock is not held across the disk flush, which is shared with the other filings of the
    # moment; answered only once on disk.
    return JSONResponse(db.write_grouped(receive), status_code=201)


@router.get("/appeals/track/{token}")
def track(request: Request, token: str, session: SessionDep):
    return _track_page(request, session, token)


def _track_page(request: Request, session, token: str, *, refused: forms.Refused | None = None):
    appeal = services.by_token(session, token)
    return render(request, "appeals/track.html", {
        "a": appeal, "token": token, "states": STATES, "kinds": KINDS, "unit": session.get(Unit, appeal.unit_id),
        "events": services.history(session, appeal), "actions": ACTION_NAMES, "refused": refused}, user=None,
        status_code=refused.status if refused else 200)


@router.get("/appeals/find")
def find_form(request: Request):
    return render(request, "appeals/find.html", {"values": {}}, user=None)


@router.post("/appeals/find")
def find(request: Request, session: SessionDep, number: str = Form(""), phone: str = Form("")):
    """The tracking page found by number and phone (POST: the phone stays out of addresses and logs). Rating and
    reopening stay with the link, which only the submitter was given."""
    try:
        appeal = services.by_number_and_phone(session, number, phone)
    except AppealNotFound as exc:
        return render(request, "appeals/find.html", {"error": str(exc), "values": {"number": number}}, user=None,
                      status_code=404)
    return render(request, "appeals/track.html", {
        "a": appeal, "token": None, "states": STATES, "kinds": KINDS, "unit": session.get(Unit, appeal.unit_id),
        "events": services.history(session, appeal), "actions": ACTION_NAMES}, user=None)


@router.post("/appeals/track/{token}/rate")
def rate(request: Request, token: str, db: DatabaseDep, rating: str = Form(""), comment: str = Form("")):
    try:
        with db.write() as session:
            services.rate(session=session, token=token, comment=comment,
                          rating=int(rating) if rating.strip().isdigit() and len(rating.strip()) == 1 else 0)
    except AppealInvalid as exc:  # the tracking page again, the comment kept beside the refusal
        if exc.field is None:
            raise
        with db.read() as session:
            return _track_page(request, session, token, refused=forms.refused(
                db, request, None, exc, form="rate", fields=("rating", "comment"),
                values={"rating": rating, "comment": comment}))
    return RedirectResponse(f"/appeals/track/{token}?rated=1", status_code=303)


@router.post("/appeals/track/{token}/reopen")
def reopen(request: Request, token: str, db: DatabaseDep, rules: RulesDep, reason: str = Form("")):
    try:
        with db.write() as session:
            services.reopen(session=session, token=token, reason=reason, rules=rules)
    except AppealInvalid as exc:
        if exc.field is None:  # the item's state: the error page, as for any refused move
            raise
        with db.read() as session:
            return _track_page(request, session, token, refused=forms.refused(
                db, request, None, exc, form="reopen", fields=("reason",), values={"reason": reason}))
    return RedirectResponse(f"/appeals/track/{token}?reopened=1", status_code=303)


# --- officials ---------------------------------------------------------------------------------------------


@router.get("/appeals", dependencies=[require("appeals.view")])
def appeal_list(request: Request, session: SessionDep, db: DatabaseDep, user: CurrentUser, state: str = "", kind: str = "",
                q: str = "", page: PageNo = 1, export: bool = False, purpose: str = ""):
    page, _ = clamp_page(page, 30)
    purpose = checked_purpose(purpose) if export else ""
    result = services.list_appeals(session=session, actor=user, state=state, kind=kind, q=q,
                                   page=1 if export else page, per_page=100_000 if export else 30)
    if export:
        units = {u.id: u.name for u in session.query(Unit).filter(Unit.id.in_({a.unit_id for a in result.items}))}
        rows = ([a.number, KINDS[a.kind], CHANNELS[a.channel], a.title, a.text, a.topic, units.get(a.unit_id, ""),
                 STATES[a.state], a.received_at.strftime("%Y-%m-%d %H:%M"), str(a.due_accept), str(a.due_reply),
                 str(a.due_close), a.rating or "", "、".join(map(str, a.measures))] for a in result.items)
        return personal_xlsx(db, user, action="appeals.exported", purpose=purpose,
                             filters={"state": state, "kind": kind, "q": q}, filename="诉求投诉清单.xlsx", sheet="诉求投诉",
                             headers=["编号", "类型", "渠道", "标题", "内容", "主题", "承办单位", "状态", "接收时间", "受理时限",
                                      "答复时限", "办结时限", "评价", "关联措施"], rows=rows,
                             widths=[16, 8, 10, 30, 60, 12, 24, 8, 16, 12, 12, 12, 6, 14])
    return render(request, "appeals/list.html", {"result": result, "state": state, "kind": kind, "q": q,
                                                 "states": STATES, "kinds": KINDS, "channels": CHANNELS}, user=user)


@router.get("/appeals/enter", dependencies=[require("appeals.enter")])
def enter_form(request: Request, user: CurrentUser):
    """Officials enter public-opinion items and items received in person or by letter."""
    authorize(user, "appeals.enter")
    return render(request, "appeals/enter.html", {"kinds": KINDS, "regions": REGIONS, "values": {}}, user=user)


@router.post("/appeals/enter", dependencies=[require("appeals.enter")])
def enter(request: Request, db: DatabaseDep, user: CurrentUser, rules: RulesDep, kind: str = Form("opinion"),
          title: str = Form(""),
          text: str = Form(""), region: str = Form(""), topic: str = Form(""), submitter: str = Form(""),
          phone: str = Form(""), email: str = Form("")):
    submission = intake.Submission(kind=kind, text=text, title=title, channel="official", region=region, topic=topic,
                                     submitter=submitter, phone=phone, email=email)
    try:
        with db.write() as session:
            appeal, _ = intake.submit(session=session, submission=submission, actor=user, rules=rules)
            appeal_id = appeal.id
    except AppealInvalid as exc:
        return render(request, "appeals/enter.html", {"kinds": KINDS, "regions": REGIONS,
                                                      "errors": forms.form_errors(db, request, user, exc, fields=OFFICIAL_FIELDS),
                                                      "values": submission.__dict__}, user=user, status_code=400)
    target = f"/appeals/{appeal_id}?created=1" if allowed(user, "appeals.view") else "/appeals/enter?created=1"
    return RedirectResponse(target, status_code=303)


@router.get("/appeals/attachments/{attachment_id}", dependencies=[require("appeals.view")])
def attachment(request: Request, attachment_id: Id, session: SessionDep, user: CurrentUser):
    path, att = services.open_attachment(session=session, actor=user, attachment_id=attachment_id, files=_files(request))
    return stored_file(path, att.filename, TYPES[att.kind])


@router.get("/appeals/analysis", dependencies=[require("appeals.analysis")])
def analysis_page(request: Request, session: SessionDep, user: CurrentUser, start: str = "", end: str = "",
                  unit: str = "", format: str = "html"):
    """The periodic analysis of measure 98 for a period and subtree, as a page, xlsx or PDF."""
    today = date.today()
    first = bounded_day(start, "开始日期") if start else today - timedelta(days=29)
    last = bounded_day(end, "结束日期") if end else today
    if last < first:
        raise AppealInvalid("结束日期早于开始日期")
    filters = analysis.Filters(first, last, unit or user.unit.code)
    r = analysis.report(session=session, actor=user, filters=filters)
    name = f"诉求投诉分析-{r.unit_name}-{first}-{last}"
    if format == "xlsx":
        path = analysis.export_xlsx(r, download_path())
        return temporary_file(path, f"{name}.xlsx")
    if format == "pdf":
        return document(analysis.render_pdf(r), f"{name}.pdf")
    return render(request, "appeals/analysis.html", {"r": r, "charts": analysis.charts(r), "KINDS": KINDS,
                                                     "CHANNELS": CHANNELS, "topic_name": analysis.topic_name,
                                                     "start": first, "end": last, "unit": filters.unit_code}, user=user)


@router.get("/appeals/{appeal_id}", dependencies=[require("appeals.view")])
def appeal_page(request: Request, appeal_id: Id, session: SessionDep, user: CurrentUser):
    return _appeal_page(request, session, user, appeal_id, masked=True)


@router.post("/appeals/{appeal_id}/contact", dependencies=[require("appeals.contact")])
def appeal_contact(request: Request, appeal_id: Id, db: DatabaseDep, user: CurrentUser):
    """Show the submitter's contact in full (a role that needs it; the view is audited)."""
    with db.write() as session:
        return _appeal_page(request, session, user, appeal_id, masked=False)


def _appeal_page(request, session, user, appeal_id: int, *, masked: bool, refused: forms.Refused | None = None):
    appeal = services.get_appeal(session=session, actor=user, appeal_id=appeal_id)
    unit = session.get(Unit, appeal.unit_id)
    return render(request, "appeals/appeal.html", {
        "a": appeal, "unit": unit, "auto_unit": session.get(Unit, appeal.auto_unit_id),
        "contact": services.contact(session=session, actor=user, appeal_id=appeal_id, masked=masked),
        "may_unmask": policy.may_view_contact(user, appeal), "may_handle": policy.may_handle(user, appeal),
        "moves": [action for action in MOVES if policy.may_move(user, appeal, action)],
        "events": services.history(session, appeal), "attachments": services.attachments(session, appeal),
        "states": STATES, "kinds": KINDS, "channels": CHANNELS, "refused": refused,
        "actions": ACTION_NAMES}, user=user, status_code=refused.status if refused else 200)


@router.post("/appeals/{appeal_id}/act", dependencies=[require("appeals.handle")])
def appeal_act(request: Request, appeal_id: Id, db: DatabaseDep, user: CurrentUser, action: str = Form(...),
               note: str = Form("")):
    try:
        with db.write() as session:
            services.act(session=session, actor=user, appeal_id=appeal_id, action=action, note=note)
    except AppealInvalid as exc:
        if exc.field is None:  # the item's state, not what was typed: the error page as for any refused move
            raise
        with db.read() as session:
            return _appeal_page(request, session, user, appeal_id, masked=True, refused=forms.refused(
                db, request, user, exc, form=action, fields=("note",), values={"note": note}))
    return RedirectResponse(f"/appeals/{appeal_id}?done={action}", status_code=303)


@router.post("/appeals/{appeal_id}/override", dependencies=[require("appeals.handle")])
def appeal_override(request: Request, appeal_id: Id, db: DatabaseDep, user: CurrentUser, unit_code: str = Form(""),
                    measures: str = Form("")):
    try:
        try:
            nos = [int(x) for x in measures.replace(",", " ").replace(",", " ").replace("、", " ").split()] if measures.strip() else None
        except ValueError:
            raise AppealInvalid(f"措施编号“{measures}”应为数字,用逗号或空格分隔", field="measures") from None
        with db.write() as session:
            services.override(session=session, actor=user, appeal_id=appeal_id, unit_code=unit_code.strip() or None,
                              measures=nos)
    except ChunfengError as exc:
        # A mistyped unit or measure, or a unit outside the official's subtree (recorded as denied): the page again
        # with the message beside the field and the codes as typed. Anything about the item itself stays an error page.
        if exc.field is None:
            raise
        with db.read() as session:
            return _appeal_page(request, session, user, appeal_id, masked=True, refused=forms.refused(
                db, request, user, exc, form="override", fields=("unit_code", "measures"),
                values={"unit_code": unit_code, "measures": measures}))
    return RedirectResponse(f"/appeals/{appeal_id}?done=override", status_code=303)


@router.post("/appeals/import", dependencies=[require("appeals.enter")])
async def hotline_import(db: DatabaseDep, user: CurrentUser, limits: ImportLimitsDep, rules: RulesDep,
                         file: UploadFile = File(...)):
    data = await file.read(20 * 1048576 + 1)
    if len(data) > 20 * 1048576:
        raise AppealInvalid(f"{file.filename}:文件超过 20 MB")
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise AppealInvalid(f"{file.filename}:只能导入 xlsx 或 CSV")
    name = f"{Path(file.filename).stem}{suffix}"

    def work(progress) -> TaskResult:  # off the request: thousands of rows are minutes of classifying
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            with db.read() as session:  # parse, check and classify outside the write lock every page view needs
                plan = intake.check_hotline(session=session, actor=user, path=path, limits=limits, progress=progress)
            with db.write() as session:
                made = intake.import_hotline(session=session, actor=user, path=path, plan=plan, limits=limits,
                                             rules=rules, progress=progress)
        return TaskResult(f"已导入 {len(made)} 件热线记录", f"/appeals?imported={len(made)}")

    return jobs_pages.start(db, user, name="appeals.import", title=f"导入热线记录 {name}", work=work)


@router.post("/consult/handoffs/{handoff_id}/demand", dependencies=[require("appeals.enter")])
def handoff_to_demand(request: Request, handoff_id: Id, db: DatabaseDep, user: CurrentUser, rules: RulesDep,
                      phone: str = Form(""), email: str = Form(""), note: str = Form(""), page: FormId = 1):
    try:
        with db.write() as session:
            appeal, _ = intake.from_handoff(session=session, actor=user, handoff_id=handoff_id, phone=phone, email=email,
                                              note=note, rules=rules)
            appeal_id = appeal.id
    except ChunfengError as exc:
        # What the agent typed (a malformed phone, a note too long): the queue again, the message beside the field
        # and the note kept. A refusal about the question itself (already a demand, not theirs) stays an error page.
        if exc.field is None and not isinstance(exc, OutOfBounds):
            raise
        with db.read() as session:
            return queue_page(request, session, user, state="waiting", page=page, refused=forms.refused(
                db, request, user, exc, form=f"demand-{handoff_id}", fields=("phone", "note"),
                values={"phone": phone, "email": email, "note": note}))
    target = f"/appeals/{appeal_id}?created=1" if allowed(user, "appeals.view") else "/consult/queue?demand=1"
    return RedirectResponse(target, status_code=303)
