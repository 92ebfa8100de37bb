"""Pages of credit repair (measures 117, 118): the application form (a signed-in taxpayer for itself, an official
for a taxpayer of its subtree), the applicant's list and status page, the officials' queue and the decision."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile as StarletteUpload

from chunfeng import jobs
from chunfeng.bounds import bounded_day, check_lengths
from chunfeng.credit import evaluation, policy, repair
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import EVIDENCE_KINDS, LEVELS, REPAIR_PATHS, REPAIR_STATES
from chunfeng.paging import clamp_page
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, SettingsDep, render, require
from chunfeng.web.downloads import stored_file

router = APIRouter(tags=["credit"])
PER_PAGE = 30


def _today() -> date:
    return jobs.local_day(datetime.now(UTC).replace(tzinfo=None))


def _store(settings) -> Path:
    return Path(settings.data_dir) / "evidence"


def _publish(db, settings, credit_code: str) -> None:
    with db.read() as session:  # push rules see the repair (credit_repair, credit_level) now, not at the job's next run
        evaluation.publish_taxpayer(session=session, store=Path(settings.push_store), credit_code=credit_code)


def _context(session, r, user, today: date) -> dict:
    due, why = (r.due_on, "") if r.due_on else repair.due_date(session, r.applied_on)
    return {"r": r, "due": due, "due_problem": why, "states": REPAIR_STATES, "paths": REPAIR_PATHS,
            "kinds": EVIDENCE_KINDS, "limit": repair.repair_rules()["decision_limit"], "today": today,
            "review": repair.REVIEW}


@router.get("/credit/repairs/new", dependencies=[require("credit.repair.apply")])
def new_form(request: Request, session: SessionDep, user: CurrentUser, code: str = ""):
    code = (user.taxpayer_code or "") if policy.is_taxpayer(user) else code.strip().upper()[:18]
    if policy.is_taxpayer(user) and not code:
        raise CreditNotFound("您的账户没有绑定纳税人,无法申请信用修复")
    ratings = repair.repairable(session=session, actor=user, credit_code=code) if code else []
    return render(request, "credit/repair_new.html", {"code": code, "ratings": ratings, "paths": REPAIR_PATHS,
                                                      "rules": repair.repair_rules(), "values": {}}, user=user)


@router.post("/credit/repairs", dependencies=[require("credit.repair.apply")])
async def apply(request: Request, db: DatabaseDep, user: CurrentUser, settings: SettingsDep):
    form = await request.form()
    text = {k: str(form.get(k, "")) for k in ("credit_code", "rating", "path", "failed_on", "corrected_on",
                                               "correction", "court", "ruling_number", "ruling_on")}
    check_lengths({"信用代码": (text["credit_code"], 18), "纠正情况": (text["correction"], 2000),
                   "人民法院": (text["court"], 200), "裁定书文号": (text["ruling_number"], 100),
                   "扣分项": (text["rating"], 200)})
    year, _, indicator = text["rating"].partition(":")
    if not year.isdigit() or not indicator:
        raise CreditInvalid("请选择要修复的扣分项(评价年度与指标)")
    limit = settings.evidence_max_mb * 1048576
    files = [(kind, f) for kind in EVIDENCE_KINDS for f in form.getlist(f"file_{kind}")
             if isinstance(f, StarletteUpload) and f.filename]
    if len(files) > repair.MAX_FILES:  # counted before any is read into memory
        raise CreditInvalid(f"佐证材料最多 {repair.MAX_FILES} 个文件,收到 {len(files)} 个")
    uploads = [(kind, f.filename, await f.read(limit + 1)) for kind, f in files]
    application = repair.Application(
        credit_code=(user.taxpayer_code or "") if policy.is_taxpayer(user) else text["credit_code"], year=int(year),
        indicator=indicator, path=text["path"], failed_on=bounded_day(text["failed_on"], "失信行为应办日期"),
        corrected_on=bounded_day(text["corrected_on"], "纠正日期"), correction=text["correction"],
        court=text["court"], ruling_number=text["ruling_number"],
        ruling_on=bounded_day(text["ruling_on"], "裁定日期") if text["ruling_on"].strip() else None, uploads=uploads)
    repair.check_uploads(uploads, limit)  # every file checked before the write transaction
    with db.write() as session:
        made = repair.apply(session=session, actor=user, application=application, store=_store(settings),
                            max_bytes=limit, today=_today())
        repair_id, credit_code = made.id, made.credit_code
    _publish(db, settings, credit_code)
    return RedirectResponse(f"/credit/repairs/{repair_id}?new=1", status_code=303)


@router.get("/credit/repairs/mine", dependencies=[require("credit.self")])
def mine(request: Request, session: SessionDep, user: CurrentUser):
    return render(request, "credit/repair_mine.html", {
        "repairs": repair.own_repairs(session=session, actor=user), "states": REPAIR_STATES, "paths": REPAIR_PATHS},
        user=user)


@router.get("/credit/repairs", dependencies=[require("credit.view")])
def queue(request: Request, session: SessionDep, user: CurrentUser, state: str = "pending", path: str = "",
          q: str = "", overdue: bool = False, page: PageNo = 1):
    page, per_page = clamp_page(page, PER_PAGE)
    today = _today()
    result = repair.list_repairs(session=session, actor=user, state=state, path=path, q=q[:200], overdue=overdue,
                                 today=today, page=page, per_page=per_page)
    return render(request, "credit/repair_queue.html", {
        "result": result, "state": state if state in REPAIR_STATES else "", "path": path if path in REPAIR_PATHS else "",
        "q": q[:200], "overdue": overdue, "states": REPAIR_STATES, "paths": REPAIR_PATHS, "today": today,
        "limit": repair.repair_rules()["decision_limit"]}, user=user)


@router.get("/credit/repairs/{repair_id}", dependencies=[require("credit.view", "credit.self")])
def status(request: Request, repair_id: Id, session: SessionDep, user: CurrentUser):
    r = repair.get_repair(session=session, actor=user, repair_id=repair_id)
    today = _today()
    may = not policy.is_taxpayer(user) and repair.may_decide(user, r)
    listed = repair.listed_violators(session, r.credit_code, today) if may else []
    return render(request, "credit/repair.html", {
        **_context(session, r, user, today), "may_decide": may, "levels": LEVELS, "listed": listed,
        "may_remove": [v for v in listed if policy.may_remove(user, v)],
        "removal_rule": repair.repair_rules()["violator_removal"]}, user=user)


@router.post("/credit/repairs/{repair_id}/decide", dependencies=[require("credit.repair.decide")])
def decide(repair_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep, decision: str = Form(""),
           reason: str = Form(""), score: str = Form(""), level: str = Form(""), take_off_list: str = Form("")):
    if decision not in ("approve", "refuse"):
        raise CreditInvalid("请选择“予以修复”或“不予修复”")
    check_lengths({"核定理由": (reason, 2000)})
    try:
        value = float(score) if score.strip() else None
    except ValueError:
        raise CreditInvalid(f"修复后得分“{score[:20]}”不是数值") from None
    with db.write() as session:
        decided = repair.decide(session=session, actor=user, repair_id=repair_id, approve=decision == "approve",
                                reason=reason, score=value, level=level.strip().upper()[:1],
                                take_off_list=bool(take_off_list), today=_today())
        credit_code = decided.credit_code
    _publish(db, settings, credit_code)
    return RedirectResponse(f"/credit/repairs/{repair_id}?decided={decision}", status_code=303)


@router.get("/credit/repairs/evidence/{evidence_id}", dependencies=[require("credit.view", "credit.self")])
def evidence(request: Request, evidence_id: Id, session: SessionDep, user: CurrentUser):
    path, item = repair.open_evidence(session=session, actor=user, evidence_id=evidence_id,
                                      store=_store(request.app.state.settings))
    return stored_file(path, item.filename, item.content_type)
