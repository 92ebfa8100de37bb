"""How items come in: the public form and API, officials' entry, hotline files, 12366 hand-offs; each one
validated, classified against the plan by the consultation's retrieval, and routed to a unit."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from chunfeng import crypto
from chunfeng.appeals.errors import AppealInvalid
from chunfeng.appeals.models import CHANNELS, KINDS, Appeal, AppealAttachment, AppealEvent, AppealMeasure
from chunfeng.appeals.services import DEFAULT_RULES, AppealRules, event_columns, link_measures, normal_phone
from chunfeng.bounds import TEXT, TITLE, bounded_day, check_lengths, length_problem
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.consult import policy as consult_policy
from chunfeng.consult.batch import search_many
from chunfeng.consult.index import Index
from chunfeng.consult.services import documents
from chunfeng.consult.tokenize import shared_tokenizer
from chunfeng.db import copy_rows, next_ids, utcnow
from chunfeng.files import TYPES, safe_name, sniff, store_after_commit
from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import Unit, User
from chunfeng.org.services import unit_for_region
from chunfeng.parallel import forked_map
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure
from chunfeng.plan.services import latest_notice_id
from chunfeng.preload import Preloaded
from chunfeng.tabular import TableError, TableLimits, listed_problems, read_table
from chunfeng.workdays import configured_calendar

PHONE = re.compile(r"(?:\+?86)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
MAX_TEXT = 5000


# --- classification and routing -----------------------------------------------------------------------

def _build_measures(session: Session, key: str) -> tuple[Index, dict[int, tuple[int, int]]] | None:
    """The retrieval index over the notice's measures and each measure's (category, item) numbers."""
    notice = session.scalar(select(latest_notice_id()))
    docs = [d for d in documents(session) if d.source == "measure"]
    if notice is None or not docs:
        return None
    rows = session.execute(select(PlanMeasure.no, PlanCategory.no, PlanItem.no).select_from(PlanMeasure)
                           .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                           .join(PlanCategory, PlanItem.category_id == PlanCategory.id)
                           .where(PlanMeasure.notice_id == notice))
    return Index(docs, shared_tokenizer()), {no: (c, i) for no, c, i in rows}


# Per database, built once per process (at a web process's start: web/readiness.py) and again when another notice
# becomes the latest: a notice's measures never change once imported.
MEASURES: Preloaded[tuple[Index, dict[int, tuple[int, int]]]] = Preloaded(
    "appeals", lambda session: session.scalar(select(latest_notice_id())), _build_measures)


def measure_index(session: Session, *, stale_seconds: float = 0.0) -> tuple[Index, dict[int, tuple[int, int]]] | None:
    return MEASURES.get(session, str(session.get_bind().url), stale_seconds=stale_seconds)


def _classified(hits, places: dict[int, tuple[int, int]]) -> tuple[int | None, int | None, list[int]]:
    hits = [h for h in hits if h.confidence >= 0.1]
    if not hits:
        return None, None, []
    nos = [h.doc.measure_no for h in hits]
    category, item = places.get(nos[0], (None, None))
    return category, item, nos


def classify(session: Session, text: str, *, stale_seconds: float = 0.0) -> tuple[int | None, int | None, list[int]]:
    """The plan category, item and up to three closest measures, by the consultation's retrieval (a public page
    passes `stale_seconds`: see `preload.Preloaded.get`)."""
    found = measure_index(session, stale_seconds=stale_seconds)
    if found is None:
        return None, None, []
    index, places = found
    return _classified(index.search(text, k=3), places)


def classify_many(session: Session, texts: list[str], *, workers: int = 1,
                  progress: Callable[[int, int], None] | None = None) -> list[tuple[int | None, int | None, list[int]]]:
    """`classify` of each text, for a file of thousands: retrieval a block of texts at a time, each distinct text
    once, on `workers` processes (more than one only where this process runs no threads: `parallel.forked_map`).
    `progress(done, total)` counts distinct texts."""
    found = measure_index(session)
    if found is None:
        return [(None, None, [])] * len(texts)
    index, places = found
    distinct = list(dict.fromkeys(texts))

    def classified(block: Sequence[str]) -> list[tuple[int | None, int | None, list[int]]]:
        return [_classified(hits, places) for hits in search_many(index, list(block), k=3)]

    answers = dict(zip(distinct, forked_map(classified, distinct, workers=workers, progress=progress), strict=True))
    return [answers[text] for text in texts]


def route(session: Session, region: str, topic: str = "", topic_routes: dict[str, str] | None = None) -> Unit:
    """A topic one unit handles everywhere (`topic_routes`, setting `appeal_topic_routes`) goes there; anything else
    to the bureau of the submitter's region: the deepest unit whose code the region code falls under."""
    by_topic = (topic_routes or {}).get(topic.strip()) if topic else None
    if by_topic:
        unit = session.scalar(select(Unit).where(Unit.code == by_topic))
        if unit is not None:
            return unit
    return unit_for_region(session=session, region=region)


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


def problems_of(s: Submission, *, official: bool) -> list[tuple[str, str]]:
    """Every problem of an item as (field, message): a form shows each beside its field, the API names them."""
    problems = []
    if s.kind not in KINDS:
        problems.append(("kind", f"类型“{s.kind}”无效,应为 {'、'.join(f'{k}({v})' for k, v in KINDS.items())} 之一"))
    if s.channel not in CHANNELS:
        problems.append(("channel", f"渠道“{s.channel}”无效"))
    if not s.text.strip():
        problems.append(("text", "请填写内容"))
    elif len(s.text) > MAX_TEXT:
        problems.append(("text", f"内容超过 {MAX_TEXT} 字"))
    if len(s.title) > 200:
        problems.append(("title", "标题超过 200 字"))
    problems += [(name, p) for name, value, label, limit in (
        ("submitter", s.submitter, "姓名", 100), ("topic", s.topic, "主题", 40), ("phone", s.phone, "电话", 40),
        ("email", s.email, "电子邮箱", 200), ("region", s.region, "地区代码", 20),
        ("taxpayer_code", s.taxpayer_code, "纳税人识别号", 18)) if (p := length_problem(value, label, limit))]
    if s.phone and not PHONE.fullmatch(re.sub(r"[\s-]", "", s.phone)):
        problems.append(("phone", f"电话“{s.phone}”格式不对"))
    if s.email and not EMAIL.fullmatch(s.email.strip()):
        problems.append(("email", f"电子邮箱“{s.email}”格式不对"))
    if not (s.phone or s.email) and not (official and s.kind == "opinion"):
        problems.append(("phone", "请留下电话或电子邮箱,以便答复"))
    if s.region and not re.fullmatch(r"\d{6}", s.region.strip()):
        problems.append(("region", f"地区代码“{s.region}”应为 6 位行政区划代码"))
    return problems


def refuse_invalid(submission: Submission, *, official: bool, attachments: list[tuple[str, bytes]] = (),
                   rules: AppealRules = DEFAULT_RULES) -> None:
    """AppealInvalid listing every problem of an item, each with its field (`by_field`); the first thing done with
    it, before classification."""
    problems = problems_of(submission, official=official) + _attachment_problems(attachments, rules)
    if problems:
        raise AppealInvalid("无法提交:" + ";".join(message for _, message in problems), field=problems[0][0],
                            by_field=problems)


def submit(*, session: Session, submission: Submission, actor: Actor | None = None, today: date | None = None,
           handoff_id: int | None = None, attachments: list[tuple[str, bytes]] = (),
           files: Path | None = None, classified: tuple | None = None,
           rules: AppealRules = DEFAULT_RULES) -> tuple[Appeal, str]:
    """Receive an item; returns it and the submitter's tracking token (shown once, stored hashed).

    `classified` is `classify`'s answer when the caller worked it out before opening the write
    transaction (the intake API does, so the write lock is held for the insert alone)."""
    official = actor is not None
    if submission.channel in ("hotline", "official", "consult") and not official:
        raise AppealInvalid("只有工作人员可以录入热线、舆情和转办事项")
    if official and submission.channel in ("hotline", "official", "consult"):
        authorize(actor, "appeals.enter")
    refuse_invalid(submission, official=official, attachments=attachments, rules=rules)
    today = today or date.today()
    due = _due(configured_calendar(session), rules.limits_of(submission.kind), today)
    classified = classified or classify(session, f"{submission.title} {submission.text}")
    unit = _unit_for(session, submission, actor, rules.topic_routes)
    token = secrets.token_urlsafe(16)
    appeal = Appeal(**_columns(submission, token=token, classified=classified, unit=unit, today=today, due=due,
                               created_by=actor.username if official else ""), handoff_id=handoff_id)
    session.add(appeal)
    session.flush()
    set_committed_value(appeal, "unit", unit)  # the caller's receipt names it: no query for it later
    # The event and the links go in before the audit entry takes the chain's lock (issue 16), as plain statements:
    # nothing here reads them back as objects, and the unit of work for them cost more Python than the statements.
    session.execute(AppealEvent.__table__.insert(), event_columns(appeal, actor, "received", f"分派至{unit.name}"))
    link_measures(session, appeal, new=True)
    for filename, data in attachments:
        _store_attachment(session, appeal, filename, data, files)
    audit.record(session, actor=actor or SystemActor(username="public"), action="appeals.received",
                 object_type="appeal", object_id=appeal.id,
                 after={"kind": appeal.kind, "channel": appeal.channel, "unit": unit.code, "measures": appeal.measures})
    return appeal, token


def _due(cal, days: dict[str, int], today: date) -> dict[str, date]:
    try:
        return {limit: cal.add_working_days(today, days[limit]) for limit in ("accept", "reply", "close")}
    except CalendarNotCovered as exc:  # refused with the reason, the form kept: never a limit counted on weekends alone
        raise AppealInvalid(f"暂时无法受理,办理时限无法计算:{exc}") from exc


def _unit_for(session: Session, submission: Submission, actor: Actor | None, topic_routes: dict[str, str]) -> Unit:
    unit = route(session, submission.region, submission.topic, topic_routes)
    if isinstance(actor, User):
        if not submission.region.strip() and unit.level == "national":
            unit = actor.unit  # what an official enters without a region is their own unit's to handle
        # An official files items for their own subtree only, never into another province's queue.
        authorize(actor, "appeals.enter", unit)
    return unit


def _columns(s: Submission, *, token: str, classified: tuple, unit: Unit, today: date, due: dict[str, date],
             created_by: str) -> dict:
    """An item's columns as received: what the machine proposed (classification, unit) is also kept as auto_*."""
    category, item, measures = classified
    text = s.text.strip()
    return dict(kind=s.kind, channel=s.channel, title=(s.title.strip() or text[:40])[:200], text=text,
                region=s.region.strip(), topic=s.topic.strip()[:40], submitter=s.submitter.strip()[:100],
                phone=s.phone.strip(), phone_digest=crypto.digest(normal_phone(s.phone)), email=s.email.strip(),
                taxpayer_code=s.taxpayer_code.strip()[:18], token_digest=hashlib.sha256(token.encode()).hexdigest(),
                category_no=category, item_no=item, measures=measures, auto_category_no=category,
                auto_item_no=item, auto_measures=measures, unit_id=unit.id, auto_unit_id=unit.id,
                received_at=datetime.combine(today, utcnow().time()),
                due_accept=due["accept"], due_reply=due["reply"], due_close=due["close"], created_by=created_by)


def _attachment_problems(attachments, rules: AppealRules) -> list[tuple[str, str]]:
    problems = []
    if len(attachments) > rules.max_files:
        problems.append(("files", f"附件最多 {rules.max_files} 个"))
    for filename, data in attachments:
        if len(data) > rules.file_max_mb * 1048576:
            problems.append(("files", f"附件 {filename} 超过 {rules.file_max_mb} MB"))
        elif sniff(data) is None:
            problems.append(("files", f"附件 {filename} 不是允许的类型(按内容识别,可上传 {'、'.join(TYPES).upper()})"))
    return problems


def _store_attachment(session: Session, appeal: Appeal, filename: str, data: bytes, files: Path | None) -> None:
    if files is None:  # the caller names the file store (setting data_dir); never a guess at the current directory
        raise ValueError("attachments need the file store: pass files=")
    kind = sniff(data)
    digest = store_after_commit(session, files, data)
    session.add(AppealAttachment(appeal_id=appeal.id, filename=safe_name(filename, kind), kind=kind, size=len(data),
                                 sha256=digest))


# --- other ways in ------------------------------------------------------------------------------------------

def from_handoff(*, session: Session, actor: Actor, handoff_id: int, kind: str = "demand", phone: str = "",
                 email: str = "", note: str = "", rules: AppealRules = DEFAULT_RULES) -> tuple[Appeal, str]:
    """A 12366 agent turns a question the machine could not answer into a demand for a unit to handle."""
    check_lengths({"备注": (note, TEXT), "电话": (phone, 40), "电子邮箱": (email, TITLE)})
    handoff = consult_policy.access_handoff_by_id(session, actor, handoff_id, "appeals.enter")
    if session.scalar(select(Appeal.id).where(Appeal.handoff_id == handoff_id)):
        raise AppealInvalid("这个问题已经转为诉求")
    region = handoff.region if re.fullmatch(r"\d{6}", handoff.region or "") else ""
    text = handoff.text + (f"\n坐席补充:{note.strip()}" if note.strip() else "")
    return submit(session=session, actor=actor, handoff_id=handoff_id, submission=Submission(
        kind=kind, text=text, title=handoff.text[:40], channel="consult", region=region, phone=phone, email=email),
        rules=rules)



INSERT_BLOCK = 2000  # rows between two progress reports


HOTLINE_COLUMNS = {
    "kind": ("类型", "kind"), "text": ("内容", "text"), "title": ("标题", "title"), "region": ("地区代码", "region"),
    "topic": ("主题", "topic"), "submitter": ("来电人", "姓名", "submitter"), "phone": ("电话", "phone"),
    "email": ("电子邮箱", "email"), "received": ("来电日期", "received"),
}
KIND_WORDS = {v: k for k, v in KINDS.items()} | {k: k for k in KINDS}


@dataclass
class HotlinePlan:
    """A checked hotline file: each record with its day and its classification, ready to insert."""

    file: str
    records: list[tuple[Submission, date | None, tuple]]


def check_hotline(*, session: Session, actor: Actor, path: Path, limits: TableLimits = TableLimits(),
                  progress: Progress = no_progress, workers: int = 1) -> HotlinePlan:
    """Read, check and classify a hotline file without writing: run it before the write transaction, so that
    neither a hostile file nor the classification of thousands of records holds the lock every page needs.
    `progress(done, total, message)` hears of each row checked; `workers` processes classify (`classify_many`)."""
    authorize(actor, "appeals.enter")
    progress(0, 0, "正在读取文件")
    try:
        rows = read_table(path, HOTLINE_COLUMNS, required={"kind", "text"}, limits=limits)
    except TableError as exc:
        raise AppealInvalid(str(exc)) from None
    problems, ready = [], []
    for n, row in enumerate(rows, 1):
        progress(n, len(rows), "正在检查和分类")
        v = row.values
        kind = KIND_WORDS.get(v.get("kind", "").strip(), v.get("kind", "").strip())
        received = v.get("received", "").strip()
        try:
            day = bounded_day(received, "来电日期") if received else None
        except ValidationFailed as exc:
            problems.append(f"第 {row.number} 行:{exc}")
            continue
        s = Submission(kind=kind, text=v.get("text", ""), title=v.get("title", ""), channel="hotline",
                       region=v.get("region", ""), topic=v.get("topic", ""), submitter=v.get("submitter", ""),
                       phone=v.get("phone", ""), email=v.get("email", ""))
        found = [f"第 {row.number} 行:{p}" for _, p in problems_of(s, official=True)]
        problems += found
        if not found and not problems:  # once a row is bad the file is refused: classify nothing
            ready.append((s, day))
    if problems:
        raise AppealInvalid(f"{Path(path).name} 未导入(共 {len(problems)} 处问题):" + ";".join(listed_problems(problems, limits)))
    progress(0, len(ready), "正在检查和分类")
    classified = classify_many(session, [f"{s.title} {s.text}" for s, _ in ready], workers=workers,
                               progress=lambda done, total: progress(done, total, "正在检查和分类"))
    progress(len(ready), len(ready), "正在检查和分类")
    return HotlinePlan(Path(path).name, [(s, day, c) for (s, day), c in zip(ready, classified, strict=True)])


@dataclass(frozen=True, slots=True)
class Imported:
    """An item as the import stored it, without reading it back; not an ORM object (thirty thousand of those took
    a tenth of the import)."""

    id: int
    channel: str
    received_at: datetime
    unit_id: int
    measures: list[int]


def import_hotline(*, session: Session, actor: Actor, path: Path, plan: HotlinePlan | None = None,
                   limits: TableLimits = TableLimits(), rules: AppealRules = DEFAULT_RULES,
                   progress: Progress = no_progress) -> list[Imported]:
    """12366 hotline records from xlsx or CSV, all or nothing; every problem with its row. `plan` is
    `check_hotline`'s answer when the caller checked the file before opening this transaction.

    The records go in as a few multi-row statements (COPY on PostgreSQL), not one flush each, and the import is
    one audit entry naming every item it created (each item's history still has its own "received" event)."""
    authorize(actor, "appeals.enter")
    plan = plan or check_hotline(session=session, actor=actor, path=path, limits=limits, progress=progress)
    cal, dues, units, rows = configured_calendar(session), {}, {}, []
    for s, day, classified in plan.records:
        today = day or date.today()
        if (today, s.kind) not in dues:
            dues[today, s.kind] = _due(cal, rules.limits_of(s.kind), today)
        if (s.region, s.topic) not in units:  # a file names a few hundred regions at most: routed once each
            units[s.region, s.topic] = _unit_for(session, s, actor, rules.topic_routes)
        rows.append(_columns(s, token=secrets.token_urlsafe(16), classified=classified, unit=units[s.region, s.topic],
                             today=today, due=dues[today, s.kind], created_by=actor.username))
    copy = session.get_bind().dialect.name == "postgresql"
    ids: dict[str, int] = {}
    if copy:  # ids drawn first, so that the rows go in by COPY (which returns nothing) and their links refer to them
        ids = dict(zip((row["token_digest"] for row in rows), next_ids(session, Appeal.__table__, len(rows)),
                       strict=True))
    for begin in range(0, len(rows), INSERT_BLOCK):
        progress(begin, len(rows), "正在写入")
        block = rows[begin:begin + INSERT_BLOCK]
        if copy:
            copy_rows(session, Appeal.__table__, [row | {"id": ids[row["token_digest"]]} for row in block])
        else:
            # Matched back by the unique token digest: asking for the rows' own order would make SQLAlchemy insert
            # them one statement each on SQLite.
            ids.update(session.execute(insert(Appeal.__table__).returning(Appeal.token_digest, Appeal.id), block).all())
    progress(len(rows), len(rows), "正在写入")
    made = [Imported(ids[row["token_digest"]], row["channel"], row["received_at"], row["unit_id"], row["measures"])
            for row in rows]
    if made:
        by_id = {unit.id: unit for unit in units.values()}
        links = [{"appeal_id": a.id, "measure_no": no} for a in made for no in a.measures]
        events = [{"appeal_id": a.id, "actor": actor.username, "action": "received",
                   "note": f"分派至{by_id[a.unit_id].name}"} for a in made]
        for table, values in ((AppealMeasure.__table__, links), (AppealEvent.__table__, events)):
            if copy:
                copy_rows(session, table, values)
            elif values:
                session.execute(insert(table), values)
        numbers = sorted(ids.values())
        audit.record(session, actor=actor, action="appeals.imported", object_type="appeal",
                     object_id=f"{numbers[0]}-{numbers[-1]}",
                     after={"file": plan.file, "channel": "hotline", "count": len(made), "ids": id_runs(numbers),
                            "units": dict(Counter(by_id[a.unit_id].code for a in made))})
    return made


def id_runs(ids: list[int]) -> list[str]:
    """Sorted ids as runs, "12-40" or "7": an import's few thousand ids in a few entries."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [f"{a}-{b}" if a != b else str(a) for a, b in runs]
