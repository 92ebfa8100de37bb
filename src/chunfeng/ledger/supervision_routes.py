"""Pages of supervision (督办): issuing a notice on an assignment, reminders, the notices list, a notice's page,
its answer and closing. Each step nudges the outbox so the unit's channels hear of it now."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.background import BackgroundTask

from chunfeng.errors import Invalid
from chunfeng.inbox.services import deliver_pending
from chunfeng.ledger import policy, supervision
from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import NOTICE_STATES
from chunfeng.ledger.routes import assignment_page_with, day_of, xlsx_response
from chunfeng.web import forms
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import CurrentUser, DatabaseDep, SessionDep, SettingsDep, render, require

router = APIRouter(prefix="/ledger", tags=["ledger"])

NUDGE = 20  # deliveries a request's nudge sends at most: a notice reaches a handful of channels


def _after_delivery(response, db, settings):
    """Nudge the outbox once the response has gone, so a notice reaches the unit's channels now rather than at
    the next scheduled run; a slow webhook never holds up the page. Through the outbox's claim, like the
    schedule: a message both pick up is still sent once."""
    response.background = BackgroundTask(deliver_pending, db, settings=settings, limit=NUDGE)
    return response


@router.post("/assignments/{assignment_id}/notices", dependencies=[require("ledger.supervise")])
def issue_notice(request: Request, assignment_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep,
                 subject: str = Form(""), text: str = Form(""), respond_by: str = Form("")):
    try:
        day = day_of(respond_by, "答复期限", "respond_by")
        if day is None:
            raise LedgerInvalid("请填写答复期限", field="respond_by")
        with db.write() as session:
            notice = supervision.issue_notice(session=session, actor=user, assignment_id=assignment_id,
                                              subject=subject, text=text, respond_by=day)
    except Invalid as exc:
        refused = forms.refused(db, request, user, exc, form="notice", fields=("subject", "text", "respond_by"),
                                values={"subject": subject, "text": text, "respond_by": respond_by})
        with db.read() as session:
            return assignment_page_with(request, session, user, assignment_id, refused=refused)
    return _after_delivery(RedirectResponse(f"/ledger/notices/{notice.id}", status_code=303), db, settings)


@router.post("/assignments/{assignment_id}/remind", dependencies=[require("ledger.supervise")])
def remind(assignment_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep, text: str = Form("")):
    with db.write() as session:
        supervision.remind(session=session, actor=user, assignment_id=assignment_id, text=text)
    return _after_delivery(RedirectResponse(f"/ledger/assignments/{assignment_id}?reminded=1", status_code=303), db, settings)


@router.get("/notices", dependencies=[require("ledger.view")])
def notices(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1, export: bool = False):
    if export:
        everything = supervision.notices_for(session=session, actor=user, per_page=100000)
        return xlsx_response("督办单.xlsx", "督办单", ["编号", "标题", "序号", "被督办单位", "督办单位", "答复期限", "状态", "升级次数", "发出时间"],
                              ([n.id, n.subject, n.assignment.measure_no, n.to_unit.name, n.supervising_unit.name,
                                n.respond_by.isoformat(), NOTICE_STATES[n.state], n.escalations,
                                n.created_at.strftime("%Y-%m-%d %H:%M")] for n in everything.items))
    result = supervision.notices_for(session=session, actor=user, page=max(1, page))
    return render(request, "ledger/notices.html", {"result": result}, user=user)


@router.get("/notices/{notice_id}", dependencies=[require("ledger.answer", "ledger.supervise")])
def notice_page(request: Request, notice_id: Id, session: SessionDep, user: CurrentUser):
    return _notice_page(request, session, user, notice_id)


def _notice_page(request: Request, session, user, notice_id: int, *, refused: forms.Refused | None = None):
    notice = supervision.get_notice(session=session, actor=user, notice_id=notice_id)
    return render(request, "ledger/notice.html", {
        "notice": notice, "refused": refused,
        "may_answer": policy.may_answer(user, notice), "may_close": policy.may_close(user, notice),
    }, user=user, status_code=refused.status if refused else 200)


@router.post("/notices/{notice_id}/answer", dependencies=[require("ledger.answer")])
def answer_notice(request: Request, notice_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep,
                  text: str = Form("")):
    try:
        with db.write() as session:
            supervision.answer_notice(session=session, actor=user, notice_id=notice_id, text=text)
    except Invalid as exc:
        if exc.field is None:  # the notice's state, not the text: the error page as for any refused move
            raise
        with db.read() as session:
            return _notice_page(request, session, user, notice_id, refused=forms.refused(
                db, request, user, exc, form="answer", fields=("text",), values={"text": text}))
    return _after_delivery(RedirectResponse(f"/ledger/notices/{notice_id}", status_code=303), db, settings)


@router.post("/notices/{notice_id}/close", dependencies=[require("ledger.supervise")])
def close_notice(notice_id: Id, db: DatabaseDep, user: CurrentUser, settings: SettingsDep, text: str = Form("")):
    with db.write() as session:
        supervision.close_notice(session=session, actor=user, notice_id=notice_id, text=text)
    return _after_delivery(RedirectResponse(f"/ledger/notices/{notice_id}", status_code=303), db, settings)


