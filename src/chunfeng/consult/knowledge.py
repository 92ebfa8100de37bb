"""The knowledge base as officials keep it: entries written, published, revised and reviewed (each change audited,
its history kept, the index's generation bumped), and an agent's answer to a hand-off promoted into one.

Split from `services` (asking and handing off) so each module holds one idea; the index sees a change through
`services.bump_generation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from chunfeng.bounds import LONG_TEXT, SHORT_TEXT, TEXT, TITLE, length_problem
from chunfeng.consult import policy
from chunfeng.consult.errors import ConsultInvalid, ConsultNotFound
from chunfeng.consult.index import NATIONAL
from chunfeng.consult.models import KbEntry, KbRevision
from chunfeng.consult.services import bump_generation
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate


def _unit(session: Session, actor: Actor) -> Unit:
    return session.scalar(select(Unit).where(Unit.code == actor.unit_code))


def next_key(session: Session) -> str:
    keys = session.scalars(select(KbEntry.key).where(KbEntry.key.like("kb-%")))
    numbers = [int(k[3:]) for k in keys if k[3:].isdigit()]
    return f"kb-{max(numbers, default=0) + 1:04d}"


def promote_handoff(*, session: Session, actor: Actor, handoff_id: int, basis: str = "", tags: str = "") -> KbEntry:
    """An agent's answer becomes a published knowledge entry in one step."""
    item = policy.access_handoff_by_id(session, actor, handoff_id, "consult.kb.edit")
    if item.state != "answered":
        raise ConsultInvalid("请先答复,再将答复加入知识库")
    if item.promoted_key:
        raise ConsultInvalid(f"该答复已加入知识库({item.promoted_key})")
    # The entry is the answering bureau's (older hand-offs may hold a district code, which names no unit).
    region = NATIONAL if item.unit.level == "national" else item.unit.code
    entry = save_entry(session=session, actor=actor, values={
        "question": item.text, "answer": item.answer, "basis": basis, "tags": tags, "region": region,
        "status": "published"})
    item.promoted_key = entry.key
    session.flush()
    return entry


# --- the knowledge base ---------------------------------------------------------------------------

EDITABLE = ("question", "phrasings", "answer", "basis", "article", "tags", "region", "effective_from",
            "effective_until", "status", "repeals")


def snapshot(entry: KbEntry) -> dict:
    return {"key": entry.key, **{f: getattr(entry, f) for f in EDITABLE}, "version": entry.version}


ENTRY_LIMITS = {"question": ("问题", SHORT_TEXT), "phrasings": ("其他问法", TEXT), "answer": ("答案", LONG_TEXT),
                "basis": ("政策依据", SHORT_TEXT), "article": ("条款", TITLE), "tags": ("标签", SHORT_TEXT),
                "key": ("编号", 40), "region": ("地区", 40), "repeals": ("废止文件", TEXT)}


def entry_length_problems(values: dict) -> list[str]:
    """Each field of an entry longer than it may be, named."""
    problems = []
    for field, (label, limit) in ENTRY_LIMITS.items():
        value = values.get(field)
        text = "\n".join(map(str, value)) if isinstance(value, list) else None if value is None else str(value)
        if problem := length_problem(text, label, limit):
            problems.append(problem)
    return problems


def _check_entry(values: dict) -> list[tuple[str, str]]:
    """What is wrong with an entry, each with the field it is about ("form" where the message names it)."""
    problems = [("form", p) for p in entry_length_problems(values)]
    if not str(values.get("question") or "").strip():
        problems.append(("question", "问题为空"))
    if not str(values.get("answer") or "").strip():
        problems.append(("answer", "答案为空"))
    if values.get("status", "published") not in ("draft", "published"):
        problems.append(("status", f"状态“{values.get('status')}”无效,应为 draft(草稿)或 published(已发布)"))
    start, end = values.get("effective_from"), values.get("effective_until")
    if start and end and end < start:
        problems.append(("effective_until", f"失效日期 {end} 早于生效日期 {start}"))
    return problems


def save_entry(*, session: Session, actor: Actor, values: dict, key: str | None = None,
               expected_version: int | None = None) -> KbEntry:
    """Create an entry, or change one (keeping the old version in its history)."""
    authorize(actor, "consult.kb.edit")
    problems = _check_entry(values)
    if problems:
        fields = {name for name, _ in problems}
        raise ConsultInvalid(";".join(p for _, p in problems), field=fields.pop() if len(fields) == 1 else None)
    mine = _unit(session, actor)
    region = values.get("region") or NATIONAL
    if region != NATIONAL and not isinstance(actor, SystemActor):
        target = session.scalar(select(Unit).where(Unit.code == region))
        if target is None:
            raise ConsultInvalid(f"地区“{region}”不是已知单位代码", field="region")
        authorize(actor, "consult.kb.edit", target)
    elif region == NATIONAL and not isinstance(actor, SystemActor) and mine.level != "national":
        authorize(actor, "consult.kb.national")
    entry = session.scalar(select(KbEntry).where(KbEntry.key == key)) if key else None
    if key and entry is None:
        raise ConsultNotFound(f"没有编号为 {key} 的知识条目")
    before = None
    if entry is not None:
        if not policy.may_edit_entry(actor, entry):
            authorize(actor, "consult.kb.edit", entry.owner_unit)
        if expected_version is not None and expected_version != entry.version:
            raise ConsultInvalid(f"{entry.key} 已被 {entry.updated_by} 修改为第 {entry.version} 版,请刷新后再改")
        before = snapshot(entry)
        session.add(KbRevision(entry_id=entry.id, version=entry.version, changed_by=actor.username,
                               snapshot=json.dumps(before, ensure_ascii=False, default=str)))
        entry.version += 1
    else:
        entry = KbEntry(key=values.get("key") or next_key(session), owner_unit_id=mine.id)
        session.add(entry)
    for f in EDITABLE:
        if f in values:
            setattr(entry, f, values[f] if f not in ("tags", "phrasings", "repeals") else _join(values[f], f))
    entry.region = region
    entry.status = values.get("status") or entry.status or "published"
    # Saving or publishing is an official's review of the entry as it now stands (`review_queue`).
    entry.updated_by, entry.updated_at = actor.username, utcnow()
    entry.reviewed_at = entry.updated_at
    session.flush()
    bump_generation(session)
    audit.record(session, actor=actor, action="consult.entry.changed" if before else "consult.entry.created",
                 object_type="kb_entry", object_id=entry.key, before=before, after=snapshot(entry))
    return entry


def _join(value, field_name: str) -> str:
    if isinstance(value, list):
        items = value
    else:
        items = str(value or "").replace("、", ",").replace("，", ",").split(",") if field_name == "tags" \
            else str(value or "").replace("|", "\n").splitlines()
    items = [i.strip() for i in items if i and i.strip()]
    return (",".join(items)) if field_name == "tags" else "\n".join(items)


def history(*, session: Session, actor: Actor, key: str) -> tuple[KbEntry, list[KbRevision]]:
    entry = policy.access_entry_by_key(session, actor, key)
    revisions = list(session.scalars(select(KbRevision).where(KbRevision.entry_id == entry.id)
                                     .order_by(KbRevision.version.desc())))
    return entry, revisions


def list_entries(*, session: Session, actor: Actor, query: str = "", status: str = "", page: int = 1,
                 per_page: int = 30) -> Page[KbEntry]:
    authorize(actor, "consult.agent")
    where = [policy.entries_within(session, actor)]
    for word in query.split():
        where.append(KbEntry.question.contains(word, autoescape=True) | KbEntry.answer.contains(word, autoescape=True)
                     | KbEntry.key.startswith(word, autoescape=True) | KbEntry.tags.contains(word, autoescape=True))
    if status:
        where.append(KbEntry.status == status)
    return paginate(session, select(KbEntry).where(*where).order_by(KbEntry.key), page, per_page)


# --- the review queue ------------------------------------------------------------------------------

ENDS_WITHIN_DAYS, REVIEW_EVERY_DAYS = 90, 365
REVIEW_REASONS = {"ended": "依据已到期", "ending": "依据将在 90 天内到期", "stale": "超过一年未审核",
                  "repealed": "引用了已被废止或替代的文件"}


@dataclass
class ReviewItem:
    entry: KbEntry
    reasons: list[tuple[str, str]]  # (reason code, what it is about, for people)


def review_queue(*, session: Session, actor: Actor, today: date | None = None, page: int = 1,
                 per_page: int = 30) -> Page[ReviewItem]:
    """The published entries an official should look at on `today`, most urgent first: the basis has ended
    (and no one reviewed the entry since), or ends within 90 days; not reviewed for a year (or never:
    imported sample content); or the basis cites a document that another entry in force lists in its
    `repeals` (the VAT law entry lists the 增值税暂行条例, so every answer still citing the regulations shows).
    Confirming an entry (`mark_reviewed`) or saving it clears the dates' reasons until the next arises; a
    repealed basis stays until the entry is closed or its basis restated."""
    authorize(actor, "consult.agent")
    today = today or date.today()
    entries = list(session.scalars(select(KbEntry).where(policy.entries_within(session, actor),
                                                         KbEntry.status == "published").order_by(KbEntry.key)))
    # Each repealed document and the earliest day an entry in force says it stopped standing.
    repealed: dict[str, tuple[date, str]] = {}
    for e in entries:
        since = e.effective_from or date.min
        if since <= today:
            for doc in e.repeal_list:
                if doc not in repealed or since < repealed[doc][0]:
                    repealed[doc] = (since, e.key)
    items = []
    for e in entries:
        reviewed = e.reviewed_at.date() if e.reviewed_at else None
        reasons = []
        until = e.effective_until
        if until and until < today and (reviewed is None or reviewed <= until):
            reasons.append(("ended", f"{until} 到期"))
        elif until and until <= today + timedelta(days=ENDS_WITHIN_DAYS) \
                and (reviewed is None or reviewed < until - timedelta(days=ENDS_WITHIN_DAYS)):
            reasons.append(("ending", f"将于 {until} 到期"))
        if reviewed is None or reviewed < today - timedelta(days=REVIEW_EVERY_DAYS):
            reasons.append(("stale", f"上次审核 {reviewed}" if reviewed else "从未审核(示例或导入内容)"))
        # Only a change clears this one, not a confirmation: close the entry (a closed entry may cite what it was
        # written under) or restate its basis.
        if until is None or until >= today:
            for doc, (since, key) in repealed.items():
                if key != e.key and doc in e.basis:
                    reasons.append(("repealed", f"{doc} 自 {since} 起已由 {key} 所依据的文件替代"))
        if reasons:
            items.append(ReviewItem(e, reasons))
    urgency = {code: i for i, code in enumerate(("ended", "repealed", "ending", "stale"))}
    items.sort(key=lambda i: (min(urgency[c] for c, _ in i.reasons), i.entry.key))
    start = (page - 1) * per_page
    return Page(items[start:start + per_page], len(items), page, per_page)


def mark_reviewed(*, session: Session, actor: Actor, key: str) -> KbEntry:
    """An official confirms an entry as it stands (still right today): it leaves the review queue."""
    entry = policy.access_entry_by_key(session, actor, key)
    if not policy.may_edit_entry(actor, entry):
        authorize(actor, "consult.kb.edit", entry.owner_unit)
    before = entry.reviewed_at.isoformat() if entry.reviewed_at else None
    entry.reviewed_at = utcnow()
    session.flush()
    audit.record(session, actor=actor, action="consult.entry.reviewed", object_type="kb_entry", object_id=entry.key,
                 before={"reviewed_at": before}, after={"reviewed_at": entry.reviewed_at.isoformat()})
    return entry
