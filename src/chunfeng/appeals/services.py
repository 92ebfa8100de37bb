"""Demands and complaints: intake, classification against the plan, routing, the state machine with time
limits in working days, reminders and escalation, the submitter's rating and reopening, masked contacts."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.appeals.errors import AppealInvalid, AppealNotFound
from chunfeng.appeals.models import CHANNELS, KINDS, STATES, Appeal, AppealAttachment, AppealEvent, AppealMeasure
from chunfeng.consult.index import Index
from chunfeng.consult.models import Handoff
from chunfeng.consult.services import documents
from chunfeng.consult.tokenize import shared_tokenizer
from chunfeng.db import utcnow
from chunfeng.inbox import services as inbox
from chunfeng.ledger.files import TYPES, safe_name, sniff
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, allowed, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure
from chunfeng.plan.services import latest_notice_id
from chunfeng.settings import get_settings
from chunfeng.tabular import TableError, read_table
from chunfeng.workdays import WorkCalendar, load_calendar

LIMITS = ("accept", "reply", "close")
LIMIT_NAMES = {"accept": "受理", "reply": "答复", "close": "办结"}
# Which limit runs in which state: past it, the item is escalated; a working day before, its unit is reminded.
RUNNING = {"received": "accept", "accepted": "reply", "in_progress": "reply", "reopened": "reply", "replied": "close"}
PHONE = re.compile(r"(?:\+?86)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
MAX_TEXT = 5000


def calendar() -> WorkCalendar:
    return load_calendar(get_settings().holidays_file or None)


def limits(kind: str) -> dict[str, int]:
    days = get_settings().appeal_limits[kind]
    return dict(zip(LIMITS, days, strict=True))


def _normal_phone(phone: str) -> str:
    return re.sub(r"\D", "", phone or "")[-11:]


def find_by_phone(*, session: Session, actor: Actor, phone: str) -> list[Appeal]:
    """Items filed with this phone number within the actor's subtree, found by digest (nothing is decrypted to
    search); the search is audited, as it reaches personal data."""
    authorize(actor, "appeals.contact")
    items = list(session.scalars(select(Appeal).join(Unit, Appeal.unit_id == Unit.id).where(
        Appeal.phone_digest == crypto.digest(_normal_phone(phone)), subtree_filter(actor)).order_by(Appeal.id)))
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


# --- classification and routing -----------------------------------------------------------------------

_measure_index: dict[tuple[str, int], Index] = {}


def classify(session: Session, text: str) -> tuple[int | None, int | None, list[int]]:
    """The plan category, item and up to three closest measures, by the consultation's retrieval."""
    notice = session.scalar(select(latest_notice_id()))
    if notice is None:
        return None, None, []
    key = (str(session.get_bind().url), notice)  # one index per database and notice, built once
    index = _measure_index.get(key)
    if index is None:
        docs = [d for d in documents(session) if d.source == "measure"]
        if not docs:
            return None, None, []
        index = _measure_index[key] = Index(docs, shared_tokenizer())
    hits = [h for h in index.search(text, k=3) if h.confidence >= 0.1]
    if not hits:
        return None, None, []
    nos = [h.doc.measure_no for h in hits]
    row = session.execute(select(PlanItem.no, PlanCategory.no).select_from(PlanMeasure)
                          .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                          .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                          .where(PlanMeasure.notice_id == notice, PlanMeasure.no == nos[0])).first()
    return (row[1], row[0], nos) if row else (None, None, nos)


def route(session: Session, region: str, topic: str = "") -> Unit:
    """A topic one unit handles everywhere (setting `appeal_topic_routes`) goes there; anything else to the
    bureau of the submitter's region: the deepest unit whose code the region code falls under."""
    by_topic = get_settings().appeal_topic_routes.get(topic.strip()) if topic else None
    if by_topic:
        unit = session.scalar(select(Unit).where(Unit.code == by_topic))
        if unit is not None:
            return unit
    region = (region or "").strip()
    candidates = []
    if re.fullmatch(r"\d{6}", region):
        candidates = [region, region[:4] + "00", region[:2] + "0000"]
    for code in candidates:
        unit = session.scalar(select(Unit).where(Unit.code == code))
        if unit is not None:
            return unit
    return session.scalar(select(Unit).where(Unit.level == "national"))


# --- intake ---------------------------------------------------------------------------------------------

@dataclass
class Submission:
    kind: str
    text: str
    title: str = ""
    channel: str = "web"
    region: str = ""
    topic: str = ""
    submitter: str = ""
    phone: str = ""
    email: str = ""
    taxpayer_code: str = ""


def problems_of(s: Submission, *, official: bool) -> list[str]:
    problems = []
    if s.kind not in KINDS:
        problems.append(f"类型“{s.kind}”无效,应为 {'、'.join(f'{k}({v})' for k, v in KINDS.items())} 之一")
    if s.channel not in CHANNELS:
        problems.append(f"渠道“{s.channel}”无效")
    if not s.text.strip():
        problems.append("请填写内容")
    elif len(s.text) > MAX_TEXT:
        problems.append(f"内容超过 {MAX_TEXT} 字")
    if len(s.title) > 200:
        problems.append("标题超过 200 字")
    if s.phone and not PHONE.fullmatch(re.sub(r"[\s-]", "", s.phone)):
        problems.append(f"电话“{s.phone}”格式不对")
    if s.email and not EMAIL.fullmatch(s.email.strip()):
        problems.append(f"电子邮箱“{s.email}”格式不对")
    if not (s.phone or s.email) and not (official and s.kind == "opinion"):
        problems.append("请留下电话或电子邮箱,以便答复")
    if s.region and not re.fullmatch(r"\d{6}", s.region.strip()):
        problems.append(f"地区代码“{s.region}”应为 6 位行政区划代码")
    return problems


def submit(*, session: Session, submission: Submission, actor: Actor | None = None, today: date | None = None,
           handoff_id: int | None = None, attachments: list[tuple[str, bytes]] = (),
           files: Path | None = None, classified: tuple | None = None) -> tuple[Appeal, str]:
    """Receive an item; returns it and the submitter's tracking token (shown once, stored hashed).

    `classified` is `classify`'s answer when the caller worked it out before opening the write
    transaction (the intake API does, so the write lock is held for the insert alone)."""
    official = actor is not None
    if submission.channel in ("hotline", "official", "consult") and not official:
        raise AppealInvalid("只有工作人员可以录入热线、舆情和转办事项")
    if official and submission.channel in ("hotline", "official", "consult"):
        authorize(actor, "appeals.enter")
    problems = problems_of(submission, official=official)
    problems += _attachment_problems(attachments)
    if problems:
        raise AppealInvalid("无法提交:" + ";".join(problems))
    today = today or date.today()
    cal, days = calendar(), limits(submission.kind)
    category, item, measures = classified or classify(session, f"{submission.title} {submission.text}")
    unit = route(session, submission.region, submission.topic)
    token = secrets.token_urlsafe(16)
    text = submission.text.strip()
    appeal = Appeal(kind=submission.kind, channel=submission.channel, title=(submission.title.strip() or text[:40])[:200],
                    text=text, region=submission.region.strip(), topic=submission.topic.strip()[:40],
                    submitter=submission.submitter.strip()[:100], phone=submission.phone.strip(),
                    phone_digest=crypto.digest(_normal_phone(submission.phone)), email=submission.email.strip(), taxpayer_code=submission.taxpayer_code.strip()[:18],
                    token_digest=hashlib.sha256(token.encode()).hexdigest(),
                    category_no=category, item_no=item, measures=measures, auto_category_no=category,
                    auto_item_no=item, auto_measures=measures, unit_id=unit.id, auto_unit_id=unit.id,
                    received_at=datetime.combine(today, utcnow().time()),
                    due_accept=cal.add_working_days(today, days["accept"]),
                    due_reply=cal.add_working_days(today, days["reply"]),
                    due_close=cal.add_working_days(today, days["close"]), handoff_id=handoff_id,
                    created_by=actor.username if official else "")
    session.add(appeal)
    session.flush()
    _link_measures(session, appeal)
    for filename, data in attachments:
        _store_attachment(session, appeal, filename, data, files)
    _event(session, appeal, actor, "received", f"分派至{unit.name}")
    audit.record(session, actor=actor or SystemActor(username="public"), action="appeals.received",
                 object_type="appeal", object_id=appeal.id,
                 after={"kind": appeal.kind, "channel": appeal.channel, "unit": unit.code, "measures": measures})
    return appeal, token


def _attachment_problems(attachments) -> list[str]:
    settings = get_settings()
    problems = []
    if len(attachments) > settings.appeal_max_files:
        problems.append(f"附件最多 {settings.appeal_max_files} 个")
    for filename, data in attachments:
        if len(data) > settings.appeal_file_max_mb * 1048576:
            problems.append(f"附件 {filename} 超过 {settings.appeal_file_max_mb} MB")
        elif sniff(data) is None:
            problems.append(f"附件 {filename} 不是允许的类型(按内容识别,可上传 {'、'.join(TYPES).upper()})")
    return problems


def _store_attachment(session: Session, appeal: Appeal, filename: str, data: bytes, files: Path | None) -> None:
    kind = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    store = files or Path(get_settings().data_dir)
    path = store / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    session.add(AppealAttachment(appeal_id=appeal.id, filename=safe_name(filename, kind), kind=kind, size=len(data),
                                 sha256=digest))


def _link_measures(session: Session, appeal: Appeal) -> None:
    session.execute(AppealMeasure.__table__.delete().where(AppealMeasure.appeal_id == appeal.id))
    for no in appeal.measures:
        session.add(AppealMeasure(appeal_id=appeal.id, measure_no=no))
    session.flush()


def linked_to_measure(*, session: Session, actor: Actor, measure_no: int, limit: int = 20) -> tuple[int, list[Appeal]]:
    """The items linked to a measure within the actor's subtree, newest first: (how many, the first `limit`)."""
    if not allowed(actor, "appeals.view"):
        return 0, []
    where = [AppealMeasure.measure_no == measure_no, Appeal.unit_id == Unit.id, subtree_filter(actor)]
    base = select(Appeal).join(AppealMeasure, AppealMeasure.appeal_id == Appeal.id).join(Unit, Appeal.unit_id == Unit.id)
    total = session.scalar(select(func.count()).select_from(base.where(*where).subquery())) or 0
    items = list(session.scalars(base.where(*where).order_by(Appeal.received_at.desc(), Appeal.id.desc()).limit(limit)))
    return total, items


def _event(session: Session, appeal: Appeal, actor: Actor | None, action: str, note: str = "") -> None:
    session.add(AppealEvent(appeal_id=appeal.id, actor=actor.username if actor else "提交人", action=action, note=note))


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
    total = session.scalar(select(func.count()).select_from(Appeal).join(Unit, Appeal.unit_id == Unit.id)
                           .where(*where)) or 0
    items = list(session.scalars(select(Appeal).join(Unit, Appeal.unit_id == Unit.id).where(*where)
                                 .order_by(Appeal.received_at.desc(), Appeal.id.desc())
                                 .offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, per_page)


def contact(*, session: Session, actor: Actor, appeal_id: int, masked: bool = True) -> dict[str, str]:
    """The submitter's contact details: masked, or in full for a role that needs them, each such view audited."""
    appeal = get_appeal(session=session, actor=actor, appeal_id=appeal_id)
    if masked or not allowed(actor, "appeals.contact", session.get(Unit, appeal.unit_id)):
        return {"submitter": appeal.submitter[:1] + "**" if appeal.submitter else "", "phone": mask_phone(appeal.phone),
                "email": mask_email(appeal.email), "masked": "1"}
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
    path = files / attachment.sha256[:2] / attachment.sha256
    if not path.exists():
        raise AppealNotFound(f"附件 {attachment.filename} 的文件不在存储中")
    return path, attachment


def history(session: Session, appeal: Appeal) -> list[AppealEvent]:
    return list(session.scalars(select(AppealEvent).where(AppealEvent.appeal_id == appeal.id)
                                .order_by(AppealEvent.at, AppealEvent.id)))


# --- the state machine -------------------------------------------------------------------------------------

MOVES = {  # action: (states it may start from, state it leads to)
    "accept": ({"received"}, "accepted"),
    "start": ({"accepted", "reopened"}, "in_progress"),
    "reply": ({"in_progress"}, "replied"),
    "close": ({"replied"}, "closed"),
}
ACTION_NAMES = {"accept": "受理", "start": "开始办理", "reply": "答复", "close": "办结", "rate": "评价", "reopen": "申请重新办理",
                "override": "改派或改分类", "remind": "临期提醒", "escalate": "超期升级", "received": "接收",
                "erase": "删除个人信息"}


def act(*, session: Session, actor: Actor, appeal_id: int, action: str, note: str = "",
        now: datetime | None = None) -> Appeal:
    """An official moves an item on: accept, start, reply (with the reply text) or close."""
    if action not in MOVES:
        raise AppealInvalid(f"未知操作“{action}”")
    appeal = get_appeal(session=session, actor=actor, appeal_id=appeal_id)
    authorize(actor, "appeals.handle", session.get(Unit, appeal.unit_id))
    sources, target = MOVES[action]
    if appeal.state not in sources:
        raise AppealInvalid(f"事项当前为“{STATES[appeal.state]}”,不能{ACTION_NAMES[action]}")
    if action == "reply" and not note.strip():
        raise AppealInvalid("请填写答复内容")
    now = now or utcnow()
    before = appeal.state
    appeal.state = target
    if action == "accept":
        appeal.accepted_at = now
    elif action == "reply":
        appeal.reply, appeal.replied_at = note.strip(), now
    elif action == "close":
        appeal.closed_at = now
    _event(session, appeal, actor, action, note.strip())
    audit.record(session, actor=actor, action=f"appeals.{action}", object_type="appeal", object_id=appeal.id,
                 before={"state": before}, after={"state": target})
    return appeal


def rate(*, session: Session, token: str, rating: int, comment: str = "", now: datetime | None = None) -> Appeal:
    """The submitter rates the reply (1–5); that closes the item."""
    appeal = by_token(session, token)
    if appeal.state != "replied":
        raise AppealInvalid(f"事项当前为“{STATES[appeal.state]}”,答复后才能评价")
    if rating not in range(1, 6):
        raise AppealInvalid("评价应为 1 到 5 分")
    appeal.rating, appeal.state, appeal.closed_at = rating, "closed", now or utcnow()
    _event(session, appeal, None, "rate", f"{rating} 分 {comment.strip()}".strip())
    audit.record(session, actor=SystemActor(username="submitter"), action="appeals.rated", object_type="appeal",
                 object_id=appeal.id, after={"rating": rating})
    return appeal


def reopen(*, session: Session, token: str, reason: str, today: date | None = None) -> Appeal:
    """The submitter, not satisfied, asks once for the item to be handled again; its limits start anew."""
    appeal = by_token(session, token)
    if appeal.state not in ("replied", "closed"):
        raise AppealInvalid(f"事项当前为“{STATES[appeal.state]}”,答复后才能申请重新办理")
    if appeal.reopened:
        raise AppealInvalid("每件事项只能申请重新办理一次")
    if not reason.strip():
        raise AppealInvalid("请说明不满意的原因")
    today = today or date.today()
    cal, days = calendar(), limits(appeal.kind)
    appeal.state, appeal.reopened, appeal.rating = "reopened", 1, None
    appeal.due_reply = cal.add_working_days(today, days["reply"])
    appeal.due_close = cal.add_working_days(today, days["close"])
    appeal.reminded = [x for x in appeal.reminded if x == "accept"]
    appeal.escalated = [x for x in appeal.escalated if x == "accept"]
    _event(session, appeal, None, "reopen", reason.strip())
    audit.record(session, actor=SystemActor(username="submitter"), action="appeals.reopened", object_type="appeal",
                 object_id=appeal.id)
    return appeal


def override(*, session: Session, actor: Actor, appeal_id: int, unit_code: str | None = None,
             measures: list[int] | None = None) -> Appeal:
    """An official sends the item to another unit, or links it to other measures; what routing and
    classification proposed stays in auto_*."""
    appeal = get_appeal(session=session, actor=actor, appeal_id=appeal_id)
    authorize(actor, "appeals.handle", session.get(Unit, appeal.unit_id))
    before = {"unit": session.get(Unit, appeal.unit_id).code, "measures": appeal.measures}
    if unit_code:
        unit = find_unit(session=session, code=unit_code)
        authorize(actor, "appeals.handle", unit)
        appeal.unit_id = unit.id
    if measures is not None:
        notice = latest_notice_id()
        known = set(session.scalars(select(PlanMeasure.no).where(PlanMeasure.notice_id == notice,
                                                                 PlanMeasure.no.in_(measures))))
        if bad := [m for m in measures if m not in known]:
            raise AppealInvalid(f"没有这些措施:{'、'.join(map(str, bad))}")
        appeal.measures = list(dict.fromkeys(measures))
        row = session.execute(select(PlanItem.no, PlanCategory.no).select_from(PlanMeasure)
                              .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                              .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                              .where(PlanMeasure.notice_id == notice, PlanMeasure.no == measures[0])).first() if measures else None
        appeal.item_no, appeal.category_no = (row[0], row[1]) if row else (None, None)
        _link_measures(session, appeal)
    appeal.overridden_by = actor.username
    after = {"unit": session.get(Unit, appeal.unit_id).code, "measures": appeal.measures}
    _event(session, appeal, actor, "override", f"{before} → {after}")
    audit.record(session, actor=actor, action="appeals.overridden", object_type="appeal", object_id=appeal.id,
                 before=before, after=after)
    return appeal


@dataclass
class ScanResult:
    reminded: int = 0
    escalated: int = 0


def scan(*, session: Session, today: date | None = None) -> ScanResult:
    """Remind a unit a working day before a running limit; past it, escalate the item to the parent unit."""
    today = today or date.today()
    cal = calendar()
    tomorrow = cal.add_working_days(today, 1)
    result = ScanResult()
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
            _event(session, appeal, SystemActor(), "escalate", note)
            inbox.post(session, unit=parent, kind="appeal", title=f"超期升级:{appeal.title}"[:200], body=note,
                       link=f"/appeals/{appeal.id}")
            result.escalated += 1
        elif today <= due <= tomorrow and limit not in appeal.reminded:
            appeal.reminded = [*appeal.reminded, limit]
            note = f"{LIMIT_NAMES[limit]}时限为 {due}"
            _event(session, appeal, SystemActor(), "remind", note)
            inbox.post(session, unit=unit, kind="appeal", title=f"临期提醒:{appeal.title}"[:200], body=note,
                       link=f"/appeals/{appeal.id}")
            result.reminded += 1
    return result


def erase_expired_contacts(*, session: Session, today: date | None = None, days: int | None = None) -> int:
    """Blank the submitter's name and contact details of items closed more than the retention period ago
    (PIPL: kept no longer than the purpose needs); the item itself stays for the statistics."""
    days = days or get_settings().appeal_retention_days
    cutoff = datetime.combine((today or date.today()) - timedelta(days=days), datetime.min.time())
    items = list(session.scalars(select(Appeal).where(Appeal.state == "closed", Appeal.closed_at < cutoff,
                                                      or_(Appeal.submitter != "", Appeal.phone != "", Appeal.email != ""))))
    for appeal in items:
        appeal.submitter = appeal.phone = appeal.email = appeal.phone_digest = ""
        _event(session, appeal, SystemActor(), "erase", f"办结满 {days} 天,已删除提交人的姓名和联系方式")
    if items:
        audit.record(session, actor=SystemActor(), action="appeals.contacts.erased", object_type="appeal",
                     object_id=",".join(str(a.id) for a in items[:50]), after={"count": len(items), "days": days})
    return len(items)


# --- other ways in ------------------------------------------------------------------------------------------

def from_handoff(*, session: Session, actor: Actor, handoff_id: int, kind: str = "demand", phone: str = "",
                 email: str = "", note: str = "") -> tuple[Appeal, str]:
    """A 12366 agent turns a question the machine could not answer into a demand for a unit to handle."""
    authorize(actor, "appeals.enter")
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise AppealNotFound(f"没有编号为 {handoff_id} 的转人工问题")
    if session.scalar(select(Appeal.id).where(Appeal.handoff_id == handoff_id)):
        raise AppealInvalid("这个问题已经转为诉求")
    region = handoff.region if re.fullmatch(r"\d{6}", handoff.region or "") else ""
    text = handoff.text + (f"\n坐席补充:{note.strip()}" if note.strip() else "")
    return submit(session=session, actor=actor, handoff_id=handoff_id, submission=Submission(
        kind=kind, text=text, title=handoff.text[:40], channel="consult", region=region, phone=phone, email=email))



HOTLINE_COLUMNS = {
    "kind": ("类型", "kind"), "text": ("内容", "text"), "title": ("标题", "title"), "region": ("地区代码", "region"),
    "topic": ("主题", "topic"), "submitter": ("来电人", "姓名", "submitter"), "phone": ("电话", "phone"),
    "email": ("电子邮箱", "email"), "received": ("来电日期", "received"),
}
KIND_WORDS = {v: k for k, v in KINDS.items()} | {k: k for k in KINDS}


def import_hotline(*, session: Session, actor: Actor, path: Path) -> list[Appeal]:
    """12366 hotline records from xlsx or CSV, all or nothing; every problem with its row."""
    authorize(actor, "appeals.enter")
    try:
        rows = read_table(path, HOTLINE_COLUMNS, required={"kind", "text"})
    except TableError as exc:
        raise AppealInvalid(str(exc)) from None
    problems, ready = [], []
    for row in rows:
        v = row.values
        kind = KIND_WORDS.get(v.get("kind", "").strip(), v.get("kind", "").strip())
        received = v.get("received", "").strip()
        try:
            day = date.fromisoformat(received) if received else None
        except ValueError:
            problems.append(f"第 {row.number} 行:来电日期“{received}”无效")
            continue
        s = Submission(kind=kind, text=v.get("text", ""), title=v.get("title", ""), channel="hotline",
                       region=v.get("region", ""), topic=v.get("topic", ""), submitter=v.get("submitter", ""),
                       phone=v.get("phone", ""), email=v.get("email", ""))
        problems += [f"第 {row.number} 行:{p}" for p in problems_of(s, official=True)]
        ready.append((s, day))
    if problems:
        raise AppealInvalid(f"{Path(path).name} 未导入:" + ";".join(problems))
    return [submit(session=session, submission=s, actor=actor, today=day)[0] for s, day in ready]
