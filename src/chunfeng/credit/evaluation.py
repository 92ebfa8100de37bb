"""Voluntary credit evaluation of individual businesses (measure 115): apply, evaluate, and the register's levels
as push rules see them.

An individual business on the general VAT method (or an official on its behalf) applies for a year already over;
an official of the competent unit runs the evaluation on the indicators of credit/data/evaluation.json over the
taxpayer's registry and filings in the push store. The result is a new year in the register (score, level and the
deductions by indicator), so the taxpayer's page shows it, and the levels file the push store joins onto its
registry (`credit_level` in a rule) carries it: a refund policy's `credit_level in ("A", "B")` then reaches it.
Every step is audited. The indicators are samples awaiting review, and the result says so.
"""

from __future__ import annotations

import json
import os
from collections import deque
from datetime import date
from functools import cache
from importlib.resources import files
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from chunfeng import workdays
from chunfeng.credit import policy
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import EVALUATION_STATES, REPAIR_STATES, CreditEvaluation, CreditRating, CreditRepair
from chunfeng.credit.services import FIRST_YEAR, level_rules
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize, refusal, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate
from chunfeng.push import store as push_store
from chunfeng.push.matching import region_prefix
from chunfeng.push.schema import credit_code_problem


@cache
def rules() -> dict:
    """The measure, who may apply and the indicators, each with its source or marked for review."""
    return json.loads(files("chunfeng.credit").joinpath("data/evaluation.json").read_text(encoding="utf-8"))


def _registry_row(store: Path, credit_code: str) -> dict:
    with push_store.connect_store(store) as conn:
        row = conn.execute("SELECT name, region, individual_business, vat_type, registered, annual_revenue "
                           "FROM registry WHERE credit_code = $code", {"code": credit_code}).fetchone()
    if row is None:
        raise CreditNotFound(f"登记信息中没有信用代码为 {credit_code} 的纳税人")
    return dict(zip(("name", "region", "individual_business", "vat_type", "registered", "annual_revenue"), row,
                    strict=True))


def _eligibility_problem(row: dict, year: int) -> str | None:
    if not row["individual_business"]:
        return "自愿申请评价仅适用于个体工商户(春风行动第115条措施);企业按年度评价参加纳税缴费信用评价"
    if row["vat_type"] != "一般纳税人":
        return "仅适用增值税一般计税方法的个体工商户可申请(登记信息显示为小规模纳税人)"
    if row["registered"] > date(year, 1, 1):
        # 第十五条 (rules.json "evaluation", confirmed): less than a full evaluation year since registration.
        return (f"登记日期 {row['registered']} 距 {year} 年度开始不满一个评价年度,不参加该年度评价"
                "(《纳税缴费信用管理办法》第十五条)")
    return None


def competent_unit(session: Session, region: str) -> Unit | None:
    """The deepest unit whose administrative code covers `region`: the bureau the taxpayer is registered with."""
    best, depth = None, -1
    for unit in session.scalars(select(Unit).where(Unit.code.startswith(region[:2]))):
        prefix = region_prefix(unit.code)
        if prefix and region.startswith(prefix) and len(prefix) > depth:
            best, depth = unit, len(prefix)
    return best


def apply(*, session: Session, actor: Actor, store: Path, credit_code: str, year: int, today: date) -> CreditEvaluation:
    """Apply for `year`'s evaluation. A taxpayer applies for its own code; an official for a taxpayer of its
    subtree. Refused, with nothing written, when the taxpayer may not apply or the year already has a result."""
    credit_code = credit_code.strip().upper()
    if policy.is_taxpayer(actor):
        authorize(actor, "credit.self")
        if actor.taxpayer_code != credit_code:
            raise CreditNotFound(f"您的账户只能为本户({actor.taxpayer_code or '未绑定纳税人'})申请评价")
    else:
        authorize(actor, "credit.evaluate")
    if (problem := credit_code_problem(credit_code)) is not None:
        raise CreditInvalid(f"统一社会信用代码“{credit_code}”{problem}")
    if not FIRST_YEAR <= year < today.year:
        raise CreditInvalid(f"评价年度应在 {FIRST_YEAR}–{today.year - 1} 年之间(评价周期为一个公历年度,当年尚未结束不能评价)")
    row = _registry_row(store, credit_code)
    if problem := _eligibility_problem(row, year):
        raise CreditInvalid(problem)
    unit = competent_unit(session, row["region"])
    if unit is None:
        raise CreditInvalid(f"找不到行政区划 {row['region']} 的主管税务机关,请联系系统管理员")
    if not policy.is_taxpayer(actor) and (refused := refusal(actor, "credit.evaluate", unit)):
        raise refused
    if session.scalar(select(CreditRating.id).where(CreditRating.credit_code == credit_code, CreditRating.year == year)):
        raise CreditInvalid(f"{credit_code} 的 {year} 年度已有评价结果,无需重复申请")
    if session.scalar(select(CreditEvaluation.id).where(CreditEvaluation.credit_code == credit_code,
                                                        CreditEvaluation.year == year,
                                                        CreditEvaluation.state == "applied")):
        raise CreditInvalid(f"{credit_code} 的 {year} 年度评价申请已在办理中")
    evaluation = CreditEvaluation(credit_code=credit_code, name=row["name"], year=year, unit=unit, state="applied",
                                  applied_by=actor.username, reason="")
    session.add(evaluation)
    session.flush()
    audit.record(session, actor=actor, action="credit.evaluation.applied", object_type="credit_evaluation",
                 object_id=evaluation.id, after={"credit_code": credit_code, "year": year, "unit": unit.code})
    return evaluation


def filing_deadline_of(period: str, calendar: workdays.WorkCalendar) -> date | None:
    """The filing deadline of a monthly (2025-06) or quarterly (2025Q2) period; None for a yearly one."""
    if "-" in period:
        year, month = int(period[:4]), int(period[5:7])
    elif "Q" in period:
        year, month = int(period[:4]), int(period[5:]) * 3
    else:
        return None
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return workdays.filing_deadline(year, month, calendar)


def indicators(store: Path, credit_code: str, year: int, calendar: workdays.WorkCalendar) -> tuple[int, dict]:
    """(returns of the year, {indicator name: points deducted}) over the taxpayer's filings in the store."""
    with push_store.connect_store(store) as conn:
        filings = conn.execute("SELECT period, filed_on FROM filings WHERE credit_code = $code AND "
                               "substr(period, 1, 4) = $year", {"code": credit_code, "year": str(year)}).fetchall()
    late = sum(1 for period, filed_on in filings
               if (deadline := filing_deadline_of(period, calendar)) is not None and filed_on > deadline)
    deductions = {}
    for indicator in rules()["indicators"]:
        if indicator["key"] == "late_filing" and late:
            deductions[indicator["name"]] = float(indicator["points"] * late)
    return len(filings), deductions


def level_for(score: float, annual_revenue) -> str:
    """The level the score bands of rules.json give; M for a business with no revenue that scores 70 or more."""
    bands = level_rules()
    if annual_revenue == 0 and score >= bands["M"]["min_score"]:
        return "M"
    for level in ("A", "B", "C"):
        if score >= bands[level]["min_score"]:
            return level
    return "D"


def evaluate(*, session: Session, actor: Actor, store: Path, evaluation_id: int, today: date) -> CreditEvaluation:
    """Run an applied evaluation: a new year in the register with the score, level and deductions, or the
    application refused with the reason when the taxpayer no longer qualifies or filed nothing that year."""
    authorize(actor, "credit.evaluate")
    evaluation = session.get(CreditEvaluation, evaluation_id, with_for_update=True)
    if evaluation is None or refusal(actor, "credit.evaluate", evaluation.unit) is not None:
        raise CreditNotFound(f"没有编号为 {evaluation_id} 的评价申请")
    if evaluation.state != "applied":
        raise CreditInvalid(f"编号 {evaluation_id} 的申请已{EVALUATION_STATES[evaluation.state]},不能再次评价")
    if session.scalar(select(CreditRating.id).where(CreditRating.credit_code == evaluation.credit_code,
                                                    CreditRating.year == evaluation.year)):
        raise CreditInvalid(f"{evaluation.credit_code} 的 {evaluation.year} 年度已有评价结果")
    row = _registry_row(store, evaluation.credit_code)
    returns, deductions = indicators(store, evaluation.credit_code, evaluation.year,
                                     workdays.configured_calendar(session))
    problem = _eligibility_problem(row, evaluation.year) or (
        None if returns else f"{evaluation.year} 年度没有申报记录,无法按评价指标评价")
    evaluation.decided_by, evaluation.decided_at = actor.username, utcnow()
    if problem:
        evaluation.state, evaluation.reason = "refused", problem
        audit.record(session, actor=actor, action="credit.evaluation.refused", object_type="credit_evaluation",
                     object_id=evaluation.id, before={"state": "applied"}, after={"state": "refused", "reason": problem})
        return evaluation
    score = max(0.0, 100.0 - sum(deductions.values()))
    rating = CreditRating(credit_code=evaluation.credit_code, name=row["name"], year=evaluation.year, score=score,
                          level=level_for(score, row["annual_revenue"]), deductions=deductions,
                          unit_id=evaluation.unit_id)
    session.add(rating)
    session.flush()
    evaluation.state, evaluation.rating_id = "evaluated", rating.id
    audit.record(session, actor=actor, action="credit.evaluation.evaluated", object_type="credit_evaluation",
                 object_id=evaluation.id, before={"state": "applied"},
                 after={"state": "evaluated", "rating": rating.id, "year": rating.year, "score": score,
                        "level": rating.level, "deductions": deductions, "returns": returns})
    return evaluation


def list_evaluations(*, session: Session, actor: Actor, state: str = "", page: int = 1,
                     per_page: int = 50) -> Page[CreditEvaluation]:
    """The applications of the actor's subtree, newest first."""
    authorize(actor, "credit.evaluate")
    query = (select(CreditEvaluation).join(CreditEvaluation.unit)
             .options(joinedload(CreditEvaluation.unit), joinedload(CreditEvaluation.rating))
             .where(subtree_filter(actor)))
    if state:
        query = query.where(CreditEvaluation.state == state)
    return paginate(session, query.order_by(CreditEvaluation.applied_at.desc(), CreditEvaluation.id.desc()),
                    page, per_page)


def own_evaluations(*, session: Session, actor: Actor, credit_code: str) -> list[CreditEvaluation]:
    """A taxpayer's own applications (for its credit page); an official's page shows none here."""
    if not policy.is_taxpayer(actor) or actor.taxpayer_code != credit_code:
        return []
    return list(session.scalars(select(CreditEvaluation).options(joinedload(CreditEvaluation.rating))
                                .where(CreditEvaluation.credit_code == credit_code)
                                .order_by(CreditEvaluation.applied_at.desc())))


# Each taxpayer's latest year, read from the index (credit code, year, level) alone, as text lines "code,level,year"
# split by Arrow's CSV reader (codes and levels are checked on the way in and hold no comma). PostgreSQL: DISTINCT ON
# over the index read backwards. SQLite: a bare column beside max() comes from the row holding the max.
_LATEST_LEVELS_POSTGRESQL = ("SELECT DISTINCT ON (credit_code) credit_code || ',' || level || ',' || year "
                             "FROM credit_rating ORDER BY credit_code DESC, year DESC")
# SQLite: a range of credit codes at a time, each column joined into one text by SQLite itself (group_concat): no
# row crosses into Python (a tuple a row was 9 s of the 36 s at 10 million), no line is built a row (a third of
# SQLite's time), no GROUP BY (another third: a taxpayer's older years are dropped after, in numpy), and the ranges
# are read on several connections at once (the driver lets go of the GIL while SQLite steps; WAL lets readers run
# side by side). Codes, levels and years are fixed-width (18, 1, 4 characters): each text is cut at every
# (width + 1)th byte, checked to be a comma; a range holding anything else is read as lines instead.
_COLUMNS_IN_RANGE = ("SELECT count(*), group_concat(credit_code, ','), group_concat(level, ','), "
                     "group_concat(year, ',') FROM credit_rating WHERE credit_code >= ? {upper}")
_LINES_IN_RANGE = ("SELECT count(*), group_concat(line, char(10)) FROM (SELECT credit_code || ',' || level || ',' "
                   "|| max(year) AS line FROM credit_rating WHERE credit_code >= ? {upper}GROUP BY credit_code)")
BATCH_ROWS = 100_000  # PostgreSQL's rows a fetch; SQLite's register entries a range (about)
READERS = min(4, os.cpu_count() or 1)
_LEVEL_NAMES = ["credit_code", "level", "year"]


def _csv_batches(text: bytes) -> list[pa.RecordBatch]:
    import pyarrow.csv as csv

    read = csv.ReadOptions(column_names=_LEVEL_NAMES)
    convert = csv.ConvertOptions(column_types={"credit_code": pa.string(), "level": pa.string(), "year": pa.int32()})
    return csv.read_csv(pa.py_buffer(text), read_options=read, convert_options=convert).to_batches()


def _fixed_width(text: str | None, rows: int, width: int) -> np.ndarray | None:
    """`rows` fields of exactly `width` bytes joined by commas, as a rows × width array; None if any is not."""
    data = (text or "").encode()
    if len(data) != rows * (width + 1) - 1:
        return None
    grid = np.frombuffer(data + b",", dtype=np.uint8).reshape(rows, width + 1)
    return grid[:, :width] if (grid[:, width] == ord(",")).all() else None


def _strings(fields: np.ndarray) -> pa.Array:
    rows, width = fields.shape
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(fields)))


def _latest_of(rows: int, codes: str | None, levels: str | None, years: str | None) -> pa.RecordBatch | None:
    """Each code's row of its latest year among a range's columns; None when a field is not of its fixed width."""
    code, level, year = (_fixed_width(text, rows, width) for text, width in ((codes, 18), (levels, 1), (years, 4)))
    if code is None or level is None or year is None or not ((year >= ord("0")) & (year <= ord("9"))).all():
        return None
    keys = np.ascontiguousarray(code).view("S18").ravel()
    numbers = (year.astype(np.int32) - ord("0")) @ np.array([1000, 100, 10, 1], dtype=np.int32)
    if not (keys[1:] > keys[:-1]).all():  # a taxpayer rated in several years (or rows out of order): its latest
        order = np.lexsort((numbers, keys))
        keys, code, level, numbers = keys[order], code[order], level[order], numbers[order]
        last = np.append(keys[1:] != keys[:-1], True)
        code, level, numbers = code[last], level[last], numbers[last]
    return pa.record_batch([_strings(code), _strings(level), pa.array(numbers, pa.int32())], names=_LEVEL_NAMES)


def _code_ranges(connection) -> list[tuple[str, str | None]]:
    """Credit-code ranges [low, high) of about BATCH_ROWS register entries each (the last one open), bounded by
    codes sampled at evenly spaced ids: a few hundred primary-key lookups, where counting would read the register."""
    low, high = connection.exec_driver_sql("SELECT min(id), max(id) FROM credit_rating").one()
    parts = 0 if low is None else (high - low) // BATCH_ROWS
    if parts < 2:
        return [("", None)]
    ids = sorted({low + (high - low) * k // (parts * 16) for k in range(parts * 16 + 1)})
    sampled = sorted(code for (code,) in connection.exec_driver_sql(
        f"SELECT credit_code FROM credit_rating WHERE id IN ({', '.join(map(str, ids))})"))
    bounds = sorted({sampled[len(sampled) * k // parts] for k in range(1, parts)})
    return list(zip(["", *bounds], [*bounds, None], strict=True))


def _sqlite_level_batches(session: Session) -> Iterator[pa.RecordBatch]:
    """Each range's lines read by one of READERS threads on a connection of its own and handed on in the ranges'
    order, a few ranges ahead (never the whole register in memory). Each range is read in a transaction of its own:
    a change committed meanwhile is published after this by `publish_taxpayer`, which waits for the publishing
    lock. A database in memory, which no other connection sees, is read on the session's connection."""
    from concurrent.futures import ThreadPoolExecutor

    connection = session.connection()
    engine, ranges = connection.engine, _code_ranges(connection)

    def read(bounds: tuple[str, str | None], conn) -> list[pa.RecordBatch]:
        low, high = bounds
        upper, values = ("", (low,)) if high is None else ("AND credit_code < ? ", bounds)
        rows, *columns = conn.exec_driver_sql(_COLUMNS_IN_RANGE.format(upper=upper), values).one()
        if not rows:
            return []
        if (batch := _latest_of(rows, *columns)) is not None:
            return [batch]
        _, text = conn.exec_driver_sql(_LINES_IN_RANGE.format(upper=upper), values).one()
        return _csv_batches(text.encode())

    def read_apart(bounds: tuple[str, str | None]) -> list[pa.RecordBatch]:
        with engine.connect() as conn:
            return read(bounds, conn)

    if engine.url.database in (None, "", ":memory:"):
        for bounds in ranges:
            yield from read(bounds, connection)
        return
    with ThreadPoolExecutor(READERS, thread_name_prefix="credit-levels") as pool:
        queued = iter(ranges)
        pending = deque(pool.submit(read_apart, bounds) for bounds in islice(queued, READERS + 1))
        while pending:
            batches = pending.popleft().result()
            if (bounds := next(queued, None)) is not None:
                pending.append(pool.submit(read_apart, bounds))
            yield from batches


def latest_level_batches(session: Session) -> Iterator[pa.RecordBatch]:
    """Each taxpayer's level in its latest year in the register, streamed as Arrow batches (credit code, level,
    year) straight from the driver: no ORM rows, never the whole register in memory."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        yield from _sqlite_level_batches(session)
        return
    # PostgreSQL: a server-side cursor inside the session's transaction, so rows come as they are read.
    cursor = connection.connection.driver_connection.cursor(name="credit_latest_levels")
    try:
        cursor.execute(_LATEST_LEVELS_POSTGRESQL)
        while rows := cursor.fetchmany(BATCH_ROWS):
            yield from _csv_batches("\n".join([line for (line,) in rows]).encode())
    finally:
        cursor.close()


def latest_repairs(session: Session, credit_code: str | None = None) -> dict[str, str]:
    """Each taxpayer's latest repair application's state, in words (待核定, 已修复, 不予修复), by credit code."""
    latest = select(func.max(CreditRepair.id)).group_by(CreditRepair.credit_code)
    if credit_code is not None:
        latest = latest.where(CreditRepair.credit_code == credit_code)
    return {code: REPAIR_STATES[state] for code, state in session.execute(
        select(CreditRepair.credit_code, CreditRepair.state).where(CreditRepair.id.in_(latest)))}


def publish_levels(*, session: Session, store: Path) -> int:
    """Write the register's latest levels and repair states where the push store joins them (`credit_level`,
    `credit_repair` in rules), the whole register: after an import, and by the periodic job. `session`: a read
    begun for this (it reads after the publishing lock is taken). Returns the taxpayers written."""
    with push_store.credit_levels_lock(store):
        return push_store.publish_credit_levels(store, latest_level_batches(session), latest_repairs(session))


def publish_taxpayer(*, session: Session, store: Path, credit_code: str) -> None:
    """After one evaluation or one repair commits: that taxpayer's latest level and repair state written over the
    published levels, the rest of the register untouched (a full publish instead when none was made yet).
    `session`: a read begun for this, after the change committed."""
    with push_store.credit_levels_lock(store):
        if push_store.credit_levels_generation(store) is None:
            push_store.publish_credit_levels(store, latest_level_batches(session), latest_repairs(session))
            return
        latest = session.execute(select(CreditRating.level, CreditRating.year)
                                 .where(CreditRating.credit_code == credit_code)
                                 .order_by(CreditRating.year.desc()).limit(1)).first()
        if latest is None:  # a repair is only ever of a rated year: nothing to show the rules
            return
        repair = latest_repairs(session, credit_code).get(credit_code, "无")
        push_store.publish_credit_level_changes(store, [(credit_code, latest.level, latest.year, repair)])
