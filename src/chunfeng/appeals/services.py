"""Demands and complaints: intake, classification against the plan, routing, the state machine with time
limits in working days, reminders and escalation, the submitter's rating and reopening, masked contacts."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.appeals import policy
from chunfeng.appeals.errors import AppealInvalid, AppealNotFound
from chunfeng.appeals.models import MOVES, STATES, Appeal, AppealAttachment, AppealEvent, AppealMeasure
from chunfeng.bounds import TEXT, check_lengths
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.db import utcnow
from chunfeng.files import stored_path
from chunfeng.inbox import services as inbox
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, allowed, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure
from chunfeng.plan.services import latest_notice_id
from chunfeng.settings import DEFAULTS, Settings
from chunfeng.workdays import configured_calendar

LIMITS = ("accept", "reply", "close")
LIMIT_NAMES = {"accept": "受理", "reply": "答复", "close": "办结"}
# Which limit runs in which state: past it, the item is escalated; a working day before, its unit is reminded.
RUNNING = {"received": "accept", "accepted": "reply", "in_progress": "reply", "reopened": "reply", "replied": "close"}




@dataclass(frozen=True)
class AppealRules:
    """What a bureau sets for its appeals (settings appeal_limits, appeal_topic_routes, appeal_max_files,
    appeal_file_max_mb), passed down from the page or command that read the settings."""

    limits: dict[str, list[int]]  # per type, working days to accept, to reply and to close
    topic_routes: dict[str, str]  # topic → the unit code that handles it everywhere
    max_files: int
    file_max_mb: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AppealRules:
        return cls(limits=settings.appeal_limits, topic_routes=settings.appeal_topic_routes,
                   max_files=settings.appeal_max_files, file_max_mb=settings.appeal_file_max_mb)

    def limits_of(self, kind: str) -> dict[str, int]:
        return dict(zip(LIMITS, self.limits[kind], strict=True))


DEFAULT_RULES = AppealRules.from_settings(DEFAULTS)


def normal_phone(phone: str) -> str:
    return re.sub(r"\D", "", phone or "")[-11:]


def find_by_phone(*, session: Session, actor: Actor, phone: str) -> list[Appeal]:
    """Items filed with this phone number within the actor's subtree, found by digest (nothing is decrypted to
    search); the search is audited, as it reaches personal data."""
    authorize(actor, "appeals.contact")
    items = list(session.scalars(select(Appeal).join(Unit, Appeal.unit_id == Unit.id).where(
        Appeal.phone_digest == crypto.digest(normal_phone(phone)), subtree_filter(actor)).order_by(Appeal.id)))
    audit.record(session, actor=actor, action="appeals.contact.searched", object_type="appeal",
                 object_id=",".join(str(a.id) for a in items[:50]), after={"found": len(items)})
    return items


def mask_phone(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) >= 7 else ("****" if phone else "")


def mask_email(email: str) -> str:
    if "@" not in email:
        return ""
    name, domain = email.split("@", 1)
    return f"{name[:1]}***@{domain}"


def link_measures(session: Session, appeal: Appeal, *, new: bool = False) -> None:
    """The item's measure links as its `measures` say (`new`: it has none yet, nothing to remove)."""
    if not new:
        session.execute(AppealMeasure.__table__.delete().where(AppealMeasure.appeal_id == appeal.id))
    if appeal.measures:  # one statement, no unit of work: nothing reads the link rows back as objects
        session.execute(AppealMeasure.__table__.insert(),
                        [{"appeal_id": appeal.id, "measure_no": no} for no in appeal.measures])


def linked_to_measure(*, session: Session, actor: Actor, measure_no: int, limit: int = 20) -> tuple[int, list[Appeal]]:
    """The items linked to a measure within the actor's subtree, newest first: (how many, the first `limit`)."""
    if not allowed(actor, "appeals.view"):
        return 0, []
    where = [AppealMeasure.measure_no == measure_no, Appeal.unit_id == Unit.id, subtree_filter(actor)]
    base = select(Appeal).join(AppealMeasure, AppealMeasure.appeal_id == Appeal.id).join(Unit, Appeal.unit_id == Unit.id)
    total = session.scalar(select(func.count()).select_from(base.where(*where).subquery())) or 0
    items = list(session.scalars(base.where(*where).order_by(Appeal.received_at.desc(), Appeal.id.desc()).limit(limit)))
    return total, items


def record_event(session: Session, appeal: Appeal, actor: Actor | None, action: str, note: str = "") -> None:
    session.add(AppealEvent(**event_columns(appeal, actor, action, note)))


def event_columns(appeal: Appeal, actor: Actor | None, action: str, note: str = "") -> dict:
    return {"appeal_id": appeal.id, "actor": actor.username if actor else "提交人", "action": action, "note": note}


# --- reading ---------------------------------------------------------------------------------------------

def get_appeal(*, session: Session, actor: Actor, appeal_id: int) -> Appeal:
    appeal = session.get(Appeal, appeal_id)
    if appeal is None:
        raise AppealNotFound(f"没有编号为 {appeal_id} 的事项")
    authorize(actor, "appeals.view", session.get(Unit, appeal.unit_id))
    return appeal


def by_token(session: Session, token: str) -> Appeal:
    appeal = session.scalar(select(Appeal).where(Appeal.token_digest == hashlib.sha256(token.encode()).hexdigest()))
    if appeal is None:
        raise AppealNotFound("查询码无效")
    return appeal


def by_number_and_phone(session: Session, number: str, phone: str) -> Appeal:
    """The item a submitter finds again without the link: its number and the phone given when filing, compared by
    digest. One refusal for a wrong number and a wrong phone, so the form tells nobody whether a number exists."""
    number, digits = re.sub(r"\s", "", number or ""), normal_phone(phone)
    appeal = None
    if re.fullmatch(r"\d{14,17}", number) and len(digits) >= 7:
        appeal = session.get(Appeal, int(number[8:]))
    if appeal is None or appeal.number != number or not appeal.phone_digest or \
            not hmac.compare_digest(appeal.phone_digest, crypto.digest(digits)):
        raise AppealNotFound("编号或电话不正确:请核对提交后得到的编号,以及提交时填写的手机或电话")
    return appeal


def list_appeals(*, session: Session, actor: Actor, state: str = "", kind: str = "", q: str = "", page: int = 1,
                 per_page: int = 30) -> Page[Appeal]:
    authorize(actor, "appeals.view")
    where = [Appeal.unit_id == Unit.id, subtree_filter(actor)]
    if state:
        where.append(Appeal.state == state)
    if kind:
        where.append(Appeal.kind == kind)
    if q.strip():
        like = f"%{q.strip()}%"
        where.append(or_(Appeal.title.like(like), Appeal.text.like(like), Appeal.topic.like(like)))
    return paginate(session, select(Appeal).join(Unit, Appeal.unit_id == Unit.id).where(*where)
                    .order_by(Appeal.received_at.desc(), Appeal.id.desc()), page, per_page)


def contact(*, session: Session, actor: Actor, appeal_id: int, masked: bool = True) -> dict[str, str]:
    """The submitter's contact details: masked, or in full for a role that needs them, each such view audited."""
    appeal = get_appeal(session=session, actor=actor, appeal_id=appeal_id)
    if masked:
        return {"submitter": appeal.submitter[:1] + "**" if appeal.submitter else "", "phone": mask_phone(appeal.phone),
                "email": mask_email(appeal.email), "masked": "1"}
    if refused := policy.contact_refusal(actor, appeal):
        raise refused
    audit.record(session, actor=actor, action="appeals.contact.viewed", object_type="appeal", object_id=appeal.id)
    return {"submitter": appeal.submitter, "phone": appeal.phone, "email": appeal.email, "masked": ""}


def attachments(session: Session, appeal: Appeal) -> list[AppealAttachment]:
    return list(session.scalars(select(AppealAttachment).where(AppealAttachment.appeal_id == appeal.id)
                                .order_by(AppealAttachment.id)))


def open_attachment(*, session: Session, actor: Actor, attachment_id: int, files: Path) -> tuple[Path, AppealAttachment]:
    """An attachment's stored file, for an official who may see its item."""
    attachment = session.get(AppealAttachment, attachment_id)
    if attachment is None:
        raise AppealNotFound(f"没有编号为 {attachment_id} 的附件")
    get_appeal(session=session, actor=actor, appeal_id=attachment.appeal_id)
    path = stored_path(files, attachment.sha256)
    if not path.exists():
        raise AppealNotFound(f"附件 {attachment.filename} 的文件不在存储中")
    return path, attachment


def history(session: Session, appeal: Appeal) -> list[AppealEvent]:
    return list(session.scalars(select(AppealEvent).where(AppealEvent.appeal_id == appeal.id)
                                .order_by(AppealEvent.at, AppealEvent.id)))


# --- the state machine -------------------------------------------------------------------------------------

def act(*, session: Session, actor: Actor, appeal_id: int, action: str, note: str = "",
        now: datetime | None = None) -> Appeal:
    """An official moves an item on: accept, start, reply (with the reply text) or close."""
    check_lengths({"办理意见": (note, TEXT)})
    if action not in MOVES:
        raise AppealInvalid(f"未知操作“{action}”")
    appeal = get_appeal(session=session, actor=actor, appeal_id=appeal_id)
    if refused := policy.move_refusal(actor, appeal, action):
        raise refused
    _, target = MOVES[action]
    if action == "reply" and not note.strip():
        raise AppealInvalid("请填写答复内容", field="note")
    now = now or utcnow()
    before = appeal.state
    appeal.state = target
    if action == "accept":
        appeal.accepted_at = now
    elif action == "reply":
        appeal.reply, appeal.replied_at = note.strip(), now
    elif action == "close":
        appeal.closed_at = now
    record_event(session, appeal, actor, action, note.strip())
    audit.record(session, actor=actor, action=f"appeals.{action}", object_type="appeal", object_id=appeal.id,
                 before={"state": before}, after={"state": target})
    return appeal


def rate(*, session: Session, token: str, rating: int, comment: str = "", now: datetime | None = None) -> Appeal:
    """The submitter rates the reply (1–5); that closes the item."""
    check_lengths({"评价意见": (comment, TEXT)})
    appeal = by_token(session, token)
    if appeal.state != "replied":
        raise AppealInvalid(f"事项当前为“{STATES[appeal.state]}”,答复后才能评价")
    if rating not in range(1, 6):
        raise AppealInvalid("评价应为 1 到 5 分", field="rating")
    appeal.rating, appeal.state, appeal.closed_at = rating, "closed", now or utcnow()
    record_event(session, appeal, None, "rate", f"{rating} 分 {comment.strip()}".strip())
    audit.record(session, actor=SystemActor(username="submitter"), action="appeals.rated", object_type="appeal",
                 object_id=appeal.id, after={"rating": rating})
    return appeal


def reopen(*, session: Session, token: str, reason: str, today: date | None = None,
           rules: AppealRules = DEFAULT_RULES) -> Appeal:
    """The submitter, not satisfied, asks once for the item to be handled again; its limits start anew."""
    check_lengths({"不满意的原因": (reason, TEXT)})
    appeal = by_token(session, token)
    if appeal.state not in ("replied", "closed"):
        raise AppealInvalid(f"事项当前为“{STATES[appeal.state]}”,答复后才能申请重新办理")
    if appeal.reopened:
        raise AppealInvalid("每件事项只能申请重新办理一次")
    if not reason.strip():
        raise AppealInvalid("请说明不满意的原因", field="reason")
    today = today or date.today()
    cal, days = configured_calendar(session), rules.limits_of(appeal.kind)
    try:
        due_reply, due_close = cal.add_working_days(today, days["reply"]), cal.add_working_days(today, days["close"])
    except CalendarNotCovered as exc:
        raise AppealInvalid(f"暂时无法重新办理,办理时限无法计算:{exc}") from exc
    appeal.state, appeal.reopened, appeal.rating = "reopened", 1, None
    appeal.due_reply, appeal.due_close = due_reply, due_close
    appeal.reminded = [x for x in appeal.reminded if x == "accept"]
    appeal.escalated = [x for x in appeal.escalated if x == "accept"]
    record_event(session, appeal, None, "reopen", reason.strip())
    audit.record(session, actor=SystemActor(username="submitter"), action="appeals.reopened", object_type="appeal",
                 object_id=appeal.id)
    return appeal


def override(*, session: Session, actor: Actor, appeal_id: int, unit_code: str | None = None,
             measures: list[int] | None = None) -> Appeal:
    """An official sends the item to another unit, or links it to other measures; what routing and
    classification proposed stays in auto_*."""
    appeal = get_appeal(session=session, actor=actor, appeal_id=appeal_id)
    if refused := policy.handle_refusal(actor, appeal):
        raise refused
    unit = find_unit(session=session, code=unit_code, field="unit_code") if unit_code else None
    if refused := policy.reassign_refusal(actor, appeal, unit):
        refused.field = "unit_code"  # the item may be handled: what is refused is the unit typed
        raise refused
    before = {"unit": session.get(Unit, appeal.unit_id).code, "measures": appeal.measures}
    if unit is not None:
        appeal.unit_id = unit.id
        session.expire(appeal, ["unit"])
    if measures is not None:
        notice = latest_notice_id()
        known = set(session.scalars(select(PlanMeasure.no).where(PlanMeasure.notice_id == notice,
                                                                 PlanMeasure.no.in_(measures))))
        if bad := [m for m in measures if m not in known]:
            raise AppealInvalid(f"没有这些措施:{'、'.join(map(str, bad))}", field="measures")
        appeal.measures = list(dict.fromkeys(measures))
        row = session.execute(select(PlanItem.no, PlanCategory.no).select_from(PlanMeasure)
                              .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                              .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                              .where(PlanMeasure.notice_id == notice, PlanMeasure.no == measures[0])).first() if measures else None
        appeal.item_no, appeal.category_no = (row[0], row[1]) if row else (None, None)
        link_measures(session, appeal)
    appeal.overridden_by = actor.username
    after = {"unit": session.get(Unit, appeal.unit_id).code, "measures": appeal.measures}
    record_event(session, appeal, actor, "override", f"{before} → {after}")
    audit.record(session, actor=actor, action="appeals.overridden", object_type="appeal", object_id=appeal.id,
                 before=before, after=after)
    return appeal


@dataclass
class ScanResult:
    reminded: int = 0
    escalated: int = 0
    calendar_problem: str = ""  # why the next working day is unknown: only limits due today were reminded


def scan(*, session: Session, today: date | None = None) -> ScanResult:
    """Remind a unit a working day before a running limit; past it, escalate the item to the parent unit."""
    today = today or date.today()
    result = ScanResult()
    try:
        tomorrow = configured_calendar(session).add_working_days(today, 1)
    except CalendarNotCovered as exc:
        # Escalation needs no calendar and must go on; reminders then reach only the limits due today.
        tomorrow, result.calendar_problem = today, str(exc)
    open_items = session.scalars(select(Appeal).where(Appeal.state.in_(list(RUNNING))).order_by(Appeal.id))
    for appeal in open_items:
        limit = RUNNING[appeal.state]
        due = getattr(appeal, f"due_{limit}")
        unit = session.get(Unit, appeal.unit_id)
        if due < today and limit not in appeal.escalated:
            parent = unit.parent or unit
            appeal.escalated = [*appeal.escalated, limit]
            appeal.unit_id = parent.id
            note = f"{LIMIT_NAMES[limit]}时限 {due} 已过,由{unit.name}升级至{parent.name}"
            record_event(session, appeal, SystemActor(), "escalate", note)
            inbox.post(session, unit=parent, kind="appeal", title=f"超期升级:{appeal.title}"[:200], body=note,
                       link=f"/appeals/{appeal.id}")
            result.escalated += 1
        elif today <= due <= tomorrow and limit not in appeal.reminded:
            appeal.reminded = [*appeal.reminded, limit]
            note = f"{LIMIT_NAMES[limit]}时限为 {due}"
            record_event(session, appeal, SystemActor(), "remind", note)
            inbox.post(session, unit=unit, kind="appeal", title=f"临期提醒:{appeal.title}"[:200], body=note,
                       link=f"/appeals/{appeal.id}")
            result.reminded += 1
    return result


def erase_expired_contacts(*, session: Session, today: date | None = None,
                           days: int = DEFAULTS.appeal_retention_days) -> int:
    """Blank the submitter's name and contact details of items closed more than the retention period ago
    (PIPL: kept no longer than the purpose needs); the item itself stays for the statistics."""
    cutoff = datetime.combine((today or date.today()) - timedelta(days=days), datetime.min.time())
    items = list(session.scalars(select(Appeal).where(Appeal.state == "closed", Appeal.closed_at < cutoff,
                                                      or_(Appeal.submitter != "", Appeal.phone != "", Appeal.email != ""))))
    for appeal in items:
        appeal.submitter = appeal.phone = appeal.email = appeal.phone_digest = ""
        record_event(session, appeal, SystemActor(), "erase", f"办结满 {days} 天,已删除提交人的姓名和联系方式")
    if items:
        audit.record(session, actor=SystemActor(), action="appeals.contacts.erased", object_type="appeal",
                     object_id=",".join(str(a.id) for a in items[:50]), after={"count": len(items), "days": days})
    return len(items)
