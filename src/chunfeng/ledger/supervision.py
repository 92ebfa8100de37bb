"""Follow-up supervision (跟踪督办): supervision notices with their threads, escalation, reminders (催办).

Every step also lands in the inbox of the unit that must act next.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from chunfeng.bounds import TEXT, TITLE, check_lengths
from chunfeng.db import utcnow
from chunfeng.inbox import services as inbox
from chunfeng.ledger import policy
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound
from chunfeng.ledger.models import Assignment, NoticeMessage, SupervisionNotice
from chunfeng.ledger.services import get_assignment
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate


def _actor_unit(session: Session, actor: Actor) -> Unit:
    return session.scalar(select(Unit).where(Unit.code == actor.unit_code))


def _check_supervise(session: Session, actor: Actor, assignment: Assignment) -> Unit:
    """The actor's unit, when it may supervise `assignment` (policy.supervise_refusal)."""
    if refused := policy.supervise_refusal(actor, assignment):
        raise refused
    return _actor_unit(session, actor)


def _thread(notice: SupervisionNotice, kind: str, text: str, actor: Actor, unit: Unit) -> None:
    notice.messages.append(NoticeMessage(kind=kind, text=text, author=actor.username, author_unit=unit.name))


def issue_notice(*, session: Session, actor: Actor, assignment_id: int, subject: str, text: str,
                 respond_by: date, today: date | None = None) -> SupervisionNotice:
    check_lengths({"督办单标题": (subject, TITLE), "督办内容": (text, TEXT)})
    assignment = get_assignment(session=session, actor=actor, assignment_id=assignment_id)
    issuer = _check_supervise(session, actor, assignment)
    if not subject.strip():
        raise LedgerInvalid("请填写督办单的标题", field="subject")
    if not text.strip():
        raise LedgerInvalid("请填写督办内容", field="text")
    if respond_by <= (today or date.today()):
        raise LedgerInvalid(f"答复期限 {respond_by} 应晚于今天", field="respond_by")
    notice = SupervisionNotice(assignment_id=assignment.id, issued_by_unit_id=issuer.id, supervising_unit_id=issuer.id,
                               to_unit_id=assignment.unit_id, subject=subject.strip(), respond_by=respond_by,
                               issued_by=actor.username)
    session.add(notice)
    _thread(notice, "request", text.strip(), actor, issuer)
    session.flush()
    inbox.post(session, unit=assignment.unit, kind="notice", title=f"督办单:{notice.subject}",
               body=f"{issuer.name}督办第 {assignment.measure_no} 条措施,请于 {respond_by} 前答复。\n{text.strip()}",
               link=f"/ledger/notices/{notice.id}", sender=actor.username)
    audit.record(session, actor=actor, action="ledger.notice.issued", object_type="notice", object_id=notice.id,
                 after={"assignment": assignment.id, "to": assignment.unit.code, "respond_by": respond_by,
                        "subject": notice.subject})
    return notice


def get_notice(*, session: Session, actor: Actor, notice_id: int) -> SupervisionNotice:
    notice = session.get(SupervisionNotice, notice_id)
    if notice is None:
        raise LedgerNotFound(f"没有编号为 {notice_id} 的督办单")
    # Readable by the unit that must answer (and those above it) and by the supervising unit.
    if not (isinstance(actor, SystemActor) or actor.unit.contains(notice.to_unit)
            or actor.unit.contains(notice.supervising_unit)):
        authorize(actor, "ledger.view", notice.to_unit)
    return notice


def answer_notice(*, session: Session, actor: Actor, notice_id: int, text: str) -> SupervisionNotice:
    check_lengths({"答复": (text, TEXT)})
    notice = get_notice(session=session, actor=actor, notice_id=notice_id)
    if refused := policy.answer_refusal(actor, notice):
        raise refused
    mine = _actor_unit(session, actor)
    if not text.strip():
        raise LedgerInvalid("答复内容不能为空", field="text")
    before = notice.state
    notice.state = "answered"
    _thread(notice, "answer", text.strip(), actor, mine)
    session.flush()
    inbox.post(session, unit=notice.supervising_unit, kind="notice", title=f"督办单已答复:{notice.subject}",
               body=f"{mine.name}:{text.strip()}", link=f"/ledger/notices/{notice.id}", sender=actor.username)
    audit.record(session, actor=actor, action="ledger.notice.answered", object_type="notice", object_id=notice.id,
                 before={"state": before}, after={"state": notice.state, "answer": text.strip()})
    return notice


def close_notice(*, session: Session, actor: Actor, notice_id: int, text: str = "") -> SupervisionNotice:
    check_lengths({"办结意见": (text, TEXT)})
    notice = get_notice(session=session, actor=actor, notice_id=notice_id)
    if refused := policy.close_refusal(actor, notice):
        raise refused
    mine = _actor_unit(session, actor)
    before = notice.state
    notice.state, notice.closed_at = "closed", utcnow()
    _thread(notice, "close", text.strip() or "办结。", actor, mine)
    session.flush()
    inbox.post(session, unit=notice.to_unit, kind="notice", title=f"督办单已办结:{notice.subject}", body=text.strip(),
               link=f"/ledger/notices/{notice.id}", sender=actor.username)
    audit.record(session, actor=actor, action="ledger.notice.closed", object_type="notice", object_id=notice.id,
                 before={"state": before}, after={"state": "closed"})
    return notice


def escalate_overdue(*, session: Session, today: date, extra_days: int = 5) -> int:
    """Every notice still unanswered after its date goes up one level, with a new date; returns how many."""
    system = SystemActor(username="system")
    overdue = list(session.scalars(select(SupervisionNotice).where(
        SupervisionNotice.state.in_(["open", "escalated"]), SupervisionNotice.respond_by < today)))
    for notice in overdue:
        upper = notice.supervising_unit.parent
        before = {"state": notice.state, "supervising": notice.supervising_unit.code, "respond_by": notice.respond_by}
        if upper is not None:
            notice.supervising_unit_id = upper.id
            notice.supervising_unit = upper
        notice.state, notice.escalations = "escalated", notice.escalations + 1
        notice.respond_by = today + timedelta(days=extra_days)
        text = (f"逾期未答复,升级由{notice.supervising_unit.name}督办,请于 {notice.respond_by} 前答复。")
        notice.messages.append(NoticeMessage(kind="escalation", text=text, author="system",
                                             author_unit=notice.supervising_unit.name))
        session.flush()
        for unit in {notice.to_unit.id: notice.to_unit, notice.supervising_unit.id: notice.supervising_unit}.values():
            inbox.post(session, unit=unit, kind="escalation", title=f"升级督办:{notice.subject}", body=text,
                       link=f"/ledger/notices/{notice.id}")
        audit.record(session, actor=system, action="ledger.notice.escalated", object_type="notice", object_id=notice.id,
                     before=before, after={"state": notice.state, "supervising": notice.supervising_unit.code,
                                           "respond_by": notice.respond_by})
    return len(overdue)


def remind(*, session: Session, actor: Actor, assignment_id: int, text: str = "") -> None:
    """催办: a nudge from an upper unit to the unit holding an assignment, through its inbox and channels."""
    check_lengths({"催办内容": (text, TEXT)})
    assignment = get_assignment(session=session, actor=actor, assignment_id=assignment_id)
    sender = _check_supervise(session, actor, assignment)
    body = text.strip() or f"请抓紧推进第 {assignment.measure_no} 条措施并按期报告进展。"
    inbox.post(session, unit=assignment.unit, kind="reminder", title=f"催办:第 {assignment.measure_no} 条措施",
               body=f"{sender.name}:{body}", link=f"/ledger/assignments/{assignment.id}", sender=actor.username)
    audit.record(session, actor=actor, action="ledger.assignment.reminded", object_type="assignment",
                 object_id=assignment.id, after={"to": assignment.unit.code, "text": body})


def notices_for(*, session: Session, actor: Actor, assignment_id: int | None = None, page: int = 1,
                per_page: int = 30) -> Page[SupervisionNotice]:
    """Notices the actor's unit must answer or supervises (or, with an assignment, that assignment's)."""
    mine = _actor_unit(session, actor)
    if assignment_id is not None:
        assignment = get_assignment(session=session, actor=actor, assignment_id=assignment_id)
        where = [SupervisionNotice.assignment_id == assignment.id]
    else:
        where = [or_(SupervisionNotice.to_unit_id == mine.id, SupervisionNotice.supervising_unit_id == mine.id,
                     SupervisionNotice.issued_by_unit_id == mine.id)]
    return paginate(session, select(SupervisionNotice).where(*where)
                    .order_by(SupervisionNotice.created_at.desc(), SupervisionNotice.id.desc()), page, per_page)
