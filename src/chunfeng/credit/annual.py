"""The annual evaluation (纳税缴费信用 is evaluated yearly for the year just ended): every taxpayer of a unit's
subtree evaluated at once on the indicators of credit/data/evaluation.json, inside the data engine.

The score is the start score minus each indicator's deductions, the level the band of credit/data/rules.json that
score falls in — the bands compiled to SQL by the push rule compiler, so DuckDB (where the store is) and Spark (the
setting credit_risk_engine) run the same text. The rules' own exceptions leave a taxpayer out, counted by reason: a
business newer than the year (第十五条), an individual business (evaluated on application, measure 115) and, until a
reviewer confirms the rule, one with no return in the year. The result becomes the register's year for those
taxpayers: only the rows whose level or score changed are written, in bulk, the old values of the first of them kept
in the run's audit entry as an import's re-evaluation keeps them. Whoever runs it publishes the levels afterwards
(`evaluation.publish_levels`), once the transaction has committed.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, datetime
from functools import cache
from pathlib import Path

import pyarrow as pa
from sqlalchemy import DateTime, String, bindparam, cast, select, text
from sqlalchemy.orm import Session

from chunfeng import workdays
from chunfeng.credit import bulk, evaluation, risk
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import CreditRating
from chunfeng.credit.services import FIRST_YEAR, level_rules
from chunfeng.db import NUL_REFUSED, NulInText, copy_csv_file, utcnow
from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, refusal
from chunfeng.org.models import Unit
from chunfeng.push import rules as push_rules
from chunfeng.push import store as push_store
from chunfeng.push.matching import region_prefix
from chunfeng.push.schema import RULE_REGISTRY, Field, Table

ANNUAL_TABLE = Table("annual_view", "年度信用评价数据", RULE_REGISTRY.fields + (
    Field("returns", "int", "评价年度申报次数"),
    Field("late_returns", "int", "评价年度逾期申报次数(月、季申报)"),
    Field("score", "number", "年度评价得分"),
), key=("credit_code",))
# Why a taxpayer of the scope is not rated, in the order they are tested (evaluation.json "annual.exceptions").
EXCEPTIONS = ("individual_business", "new", "no_filings")
# How an indicator of evaluation.json counts its failures over `annual_view`; an indicator without one fails loudly.
COUNTS = {"late_filing": "late_returns"}
ROW_COLUMNS = ("credit_code", "name", "unit_id", "score", "level", "deductions", "is_new")


def result_columns() -> str:
    """`evaluated`'s columns in DuckDB's words (for the empty table when Spark wrote no file)."""
    return ("credit_code VARCHAR, name VARCHAR, unit_id BIGINT, status VARCHAR, score DOUBLE, level VARCHAR, "
            + ", ".join(f"d{n} DOUBLE" for n in range(len(_indicators()))))


@cache
def annual_rules() -> dict:
    return evaluation.rules()["annual"]


@cache
def level_conditions() -> list[tuple[str, push_rules.Rule]]:
    """Each level but the last with its condition as a checked rule over `annual_view`, in the order they are
    tried: M first (no revenue and the M band's score: evaluation.level_for), then the bands from the top; D is
    what none of them gives."""
    bands = level_rules()
    ordered = [("M", f"annual_revenue == 0 and score >= {bands['M']['min_score']}")]
    ordered += [(level, f"score >= {bands[level]['min_score']}") for level in ("A", "B", "C")]
    return [(level, push_rules.check(rule, ANNUAL_TABLE)) for level, rule in ordered]


def _indicators() -> list[tuple[dict, str]]:
    return [(i, COUNTS[i["key"]]) for i in evaluation.rules()["indicators"]]


def annual_view_sql(year: int, registry: str = "registry") -> str:
    """`annual_view` (DuckDB dialect): each taxpayer of `registry` with its returns of `year` (by period) and those
    filed after their deadline (the table `deadlines`, risk._deadlines), and its score."""
    start, points = annual_rules()["start_score"], " + ".join(f"{i['points']} * {column}" for i, column in _indicators())
    return f"""SELECT *, CAST(greatest(0, {start} - ({points})) AS DOUBLE) AS score FROM (
        SELECT g.credit_code, g.name, g.region, g.individual_business, g.registered, g.annual_revenue,
               CAST(coalesce(f.returns, 0) AS INTEGER) AS returns, CAST(coalesce(f.late, 0) AS INTEGER) AS late_returns
        FROM {registry} g LEFT JOIN (
            SELECT k.credit_code, count(*) AS returns,
                   count(*) FILTER (WHERE d.deadline IS NOT NULL AND k.filed_on > d.deadline) AS late
            FROM filings k LEFT JOIN deadlines d ON d.period = k.period
            WHERE substr(k.period, 1, 4) = '{year}'
            GROUP BY k.credit_code) f ON f.credit_code = g.credit_code) AS a"""


def evaluated_sql(year: int) -> str:
    """Every taxpayer of the owned regions (`owners`) with its name, status (evaluated, or the exception that leaves it
    out), score, level and deductions (a JSON object of the indicators that deducted), over `annual_view`."""
    levels = " ".join(f"WHEN {rule.sql('duckdb', table_alias='e')} THEN '{level}'" for level, rule in level_conditions())
    deducted = ", ".join(f"CAST({i['points']} * e.{column} AS DOUBLE) AS d{n}" for n, (i, column) in enumerate(_indicators()))
    return f"""SELECT e.credit_code, e.name, o.unit_id,
               CASE WHEN e.individual_business THEN 'individual_business'
                    WHEN e.registered > DATE '{year}-01-01' THEN 'new'
                    WHEN e.returns = 0 THEN 'no_filings' ELSE 'evaluated' END AS status,
               e.score, CASE {levels} ELSE 'D' END AS level, {deducted}
        FROM annual_view AS e JOIN owners AS o ON o.region = e.region"""


def scope(session: Session, actor: Actor, unit_code: str | None) -> Unit:
    """The unit whose subtree a run evaluates: the one named, else the actor's own. Refused (403) outside the
    actor's subtree, before any work: the page checks it before it starts the task."""
    authorize(actor, "credit.evaluate")
    code = unit_code.strip() if unit_code else (actor.unit_code if isinstance(actor, SystemActor) else actor.unit.code)
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise CreditNotFound(f"没有代码为 {code} 的单位")
    if refused := refusal(actor, "credit.evaluate", unit):
        raise refused
    return unit


def check_year(year: int, today: date) -> None:
    if year >= today.year:
        raise CreditInvalid(f"{year} 年度尚未结束,不能评价:纳税缴费信用评价周期为一个公历年度,"
                            f"年度评价在年度结束后进行(现可评价 {today.year - 1} 年度及以前)", field="year")
    if year < FIRST_YEAR:
        raise CreditInvalid(f"评价年度应在 {FIRST_YEAR}–{today.year - 1} 年之间", field="year")


def stored_query(unit: Unit, year: int, national: bool, dialect) -> str:
    """`_stored`'s query: a national run's is read from the index ix_credit_rating_year_levels alone, never visiting
    the table (through an index on the year alone, 7.4 M rows at 10 M taxpayers took 24.8 s on SQLite)."""
    line = CreditRating.credit_code + "," + CreditRating.level + "," + cast(CreditRating.score, String)
    query = select(line).where(CreditRating.year == year)
    if not national:
        query = query.where(CreditRating.unit_id.in_(select(Unit.id).where(
            Unit.path.startswith(unit.path, autoescape=True))))
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _stored(session: Session, unit: Unit, year: int, national: bool) -> pa.Table:
    """The register's rows of `year` in the unit's subtree (all of them for a national run): credit code, level,
    score — one text line a row from the driver's cursor, split by Arrow (as evaluation.latest_level_batches)."""
    import pyarrow.csv as csv

    bind = session.connection()
    cursor = bind.connection.driver_connection.cursor()
    cursor.execute(stored_query(unit, year, national, bind.dialect))
    read = csv.ReadOptions(column_names=["credit_code", "level", "score"])
    convert = csv.ConvertOptions(column_types={"credit_code": pa.string(), "level": pa.string(), "score": pa.float64()})
    batches = []
    try:
        while rows := cursor.fetchmany(bulk.BATCH * 2):
            lines = "\n".join([row for (row,) in rows]).encode()
            batches += csv.read_csv(pa.py_buffer(lines), read_options=read, convert_options=convert).to_batches()
    finally:
        cursor.close()
    schema = pa.schema([("credit_code", pa.string()), ("level", pa.string()), ("score", pa.float64())])
    return pa.Table.from_batches(batches, schema=schema)


def deductions_sql(alias: str) -> str:
    """The deductions as the register keeps them, a JSON object of the indicators that deducted (`{}` when none did),
    over the columns d0, d1, … of `evaluated AS alias`: joined as text, not built as a map and serialised — at 10 M
    taxpayers that was a third of the comparison's time, for a value that is `{}` for half of them."""
    pairs = ", ".join(f"CASE WHEN {alias}.d{n} > 0 THEN {bulk.literal(json.dumps(i['name'], ensure_ascii=False))} "
                      f"|| ':' || CAST(to_json({alias}.d{n}) AS VARCHAR) END" for n, (i, _) in enumerate(_indicators()))
    return f"'{{' || concat_ws(',', {pairs}) || '}}'"


def changes_sql() -> str:
    """The evaluated taxpayers whose year the register lacks or holds with another level or score (the rest are
    left as they are), with the deductions as the register keeps them (built here, in DuckDB, whichever engine
    evaluated). The names come through the evaluation: joining the registry again for them cost a first run at
    10 M taxpayers 2 s of CPU, where carrying them cost nothing measurable."""
    return f"""CREATE TEMP TABLE changes AS
        SELECT e.credit_code, e.name, e.unit_id, e.score, e.level, {deductions_sql("e")} AS deductions,
               s.credit_code IS NULL AS is_new, s.level AS level_before, s.score AS score_before
        FROM evaluated AS e LEFT JOIN stored AS s ON s.credit_code = e.credit_code
        WHERE e.status = 'evaluated'
          AND (s.credit_code IS NULL OR s.level IS DISTINCT FROM e.level OR abs(s.score - e.score) > 1e-6)"""


def stored_registry(conn) -> str:
    """The store's registry table itself, not the `registry` view joining the register's levels onto it: no level
    is read here."""
    catalog = conn.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""')
    return f'"{catalog}".main.registry'


def _load_changes(session: Session, conn, work: Path, total: int, progress: Progress) -> None:
    """`changes` into the database's temporary table credit_annual_rows: COPY on PostgreSQL (DuckDB writes the CSV),
    the driver's executemany of plain tuples on SQLite — never row objects through the ORM."""
    rows = f"SELECT {', '.join(ROW_COLUMNS)} FROM changes ORDER BY credit_code"
    bind = session.connection()
    driver, message = bind.connection.driver_connection, "正在写入变化的评价结果"
    if bind.dialect.name == "postgresql":
        session.execute(text("CREATE TEMP TABLE credit_annual_rows (credit_code varchar(18), name varchar(200), "
                             "unit_id integer, score double precision, level varchar(1), deductions json, "
                             "is_new boolean) ON COMMIT DROP"))
        path = work / "changes.csv"
        conn.execute(f"COPY ({rows}) TO {bulk.literal(str(path))} (HEADER false)")
        with driver.cursor() as cur:
            copy_csv_file(cur, f"credit_annual_rows ({', '.join(ROW_COLUMNS)})", path,
                          lambda share: progress(int(total * share), total, message))
        return
    # a run that failed after creating it may have left it on this pooled connection
    session.execute(text("DROP TABLE IF EXISTS temp.credit_annual_rows"))
    session.execute(text("CREATE TEMP TABLE credit_annual_rows (credit_code TEXT, name TEXT, unit_id INTEGER, "
                         "score REAL, level TEXT, deductions TEXT, is_new INTEGER)"))
    insert_sql = f"INSERT INTO credit_annual_rows VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
    done, cursor = 0, driver.cursor()
    for batch in conn.sql(rows).to_arrow_reader(bulk.BATCH):
        cursor.executemany(insert_sql, zip(*[column.to_pylist() for column in batch.columns], strict=True))
        done += batch.num_rows
        progress(done, total, message)
    cursor.close()


def _write_changes(session: Session, year: int, now: datetime) -> int:
    """From credit_annual_rows into the register, two statements on either database: the new years inserted (a
    taxpayer whose year another unit outside the scope already holds is left: returns how many were inserted), the
    changed ones updated in place."""
    stamp = bindparam("now", now, type_=DateTime())
    columns = "credit_code, name, year, score, level, deductions, unit_id, imported_at"
    inserted = session.execute(text(
        f"INSERT INTO credit_rating ({columns}) SELECT credit_code, name, :year, score, level, deductions, unit_id, "
        ":now FROM credit_annual_rows WHERE is_new ON CONFLICT (credit_code, year) DO NOTHING")
        .bindparams(stamp, year=year)).rowcount
    session.execute(text(
        "UPDATE credit_rating SET name = a.name, score = a.score, level = a.level, deductions = a.deductions, "
        "unit_id = a.unit_id, imported_at = :now FROM credit_annual_rows AS a "
        "WHERE NOT a.is_new AND credit_rating.credit_code = a.credit_code AND credit_rating.year = :year")
        .bindparams(stamp, year=year))
    if session.get_bind().dialect.name != "postgresql":
        session.execute(text("DROP TABLE temp.credit_annual_rows"))
    return inserted


def _empty_year(session: Session, year: int) -> bool:
    """Whether the register holds no row of `year` (in any unit) on SQLite: a first run then inserts every row
    straight into the register (`_insert_year`). PostgreSQL keeps its COPY into a temporary table, whose insert
    leaves a year another run wrote meanwhile as it is (SQLite has one writer at a time)."""
    return (session.get_bind().dialect.name == "sqlite"
            and session.scalar(select(CreditRating.id).where(CreditRating.year == year).limit(1)) is None)


def _insert_year(session: Session, conn, work: Path, year: int, total: int, progress: Progress) -> int:
    """Every row of `changes` (all new) into the register, in credit-code order, 100 rows a statement — the
    bulk write (`bulk.write_rows`), not a temporary table copied by INSERT … SELECT … ON CONFLICT: a first run at
    10 M taxpayers inserts 7.4 M rows. Only when the register holds no row of any year are the indexes on the level
    and the unit dropped and built again after (rebuilding them over the other years' rows would cost more than it
    saves); those on (credit code, year, …) and (year, credit code, …) take the rows at their right edge."""
    empty = session.scalar(select(CreditRating.id).limit(1)) is None
    columns = ("credit_code", "name", "score", "level", "deductions", "unit_id")
    bulk.write_rows(session, conn, f"SELECT {', '.join(columns)} FROM changes ORDER BY credit_code", total, work,
                    progress, model=CreditRating, columns=columns, fixed={"year": year, "imported_at": utcnow()},
                    message="正在写入评价结果", bulk=empty)
    return total


def evaluate_in_engine(session: Session, conn, work: Path, *, actor: Actor, unit: Unit, year: int,
                       calendar: workdays.WorkCalendar, engine: str = "duckdb") -> None:
    """The DuckDB temp table `evaluated` on a store connection: every taxpayer of the unit's subtree evaluated for
    `year` in the engine (duckdb, over the connection; or spark, handed over by risk.on_spark)."""
    regions = [r for (r,) in conn.execute(f"SELECT DISTINCT region FROM {stored_registry(conn)} "
                                          "WHERE starts_with(region, $prefix)",
                                          {"prefix": region_prefix(unit.code)}).fetchall()]
    owners = risk._owners(session, actor, regions, within=unit)
    deadlines = risk._deadlines(conn, date(year, 1, 1), calendar)
    conn.register("owners", owners)
    if engine == "spark":
        risk.on_spark(conn, work, small={"deadlines": (deadlines, "period STRING, deadline DATE"),
                                         "owners": (owners, "region STRING, unit_id BIGINT")},
                      views=[("annual_view", annual_view_sql(year)), ("evaluated", evaluated_sql(year))],
                      result="evaluated", columns=result_columns())
    else:
        conn.register("deadlines", deadlines)
        conn.execute(f"CREATE TEMP VIEW annual_view AS {annual_view_sql(year, stored_registry(conn))}")
        conn.execute(f"CREATE TEMP TABLE evaluated AS {evaluated_sql(year)}")


def evaluate_year(*, session: Session, actor: Actor, store: Path, year: int, today: date, unit_code: str | None = None,
                  progress: Progress = no_progress, engine: str = "duckdb") -> dict:
    """Evaluate `year` for every taxpayer of the unit's subtree (the actor's own unit when none is named) and write
    the changed results into the register; returns the audit entry's figures (counts by level and by exception,
    rows written). Refused for a year not yet over, or a unit outside the actor's subtree."""
    unit = scope(session, actor, unit_code)
    check_year(year, today)
    if engine not in risk.ENGINES:
        raise ValueError(f"credit engine {engine!r}: one of {', '.join(risk.ENGINES)}")
    national = unit.path is not None and not session.scalar(
        select(Unit.id).where(~Unit.path.startswith(unit.path, autoescape=True) | Unit.path.is_(None)).limit(1))
    progress(0, 0, f"正在评价 {year} 年度纳税缴费信用")
    calendar = workdays.configured_calendar(session)
    with push_store.connect_store(store) as conn, tempfile.TemporaryDirectory(prefix="chunfeng-annual-") as tmp:
        evaluate_in_engine(session, conn, Path(tmp), actor=actor, unit=unit, year=year, calendar=calendar, engine=engine)
        by_status = dict(conn.execute("SELECT status, count(*) FROM evaluated GROUP BY status").fetchall())
        levels = dict(conn.execute("SELECT level, count(*) FROM evaluated WHERE status = 'evaluated' "
                                   "GROUP BY level ORDER BY level").fetchall())
        progress(0, 0, "正在比对登记中的评价结果")
        conn.register("stored", _stored(session, unit, year, national))
        conn.execute(changes_sql())
        ((changed, new),) = conn.execute("SELECT count(*), count(*) FILTER (WHERE is_new) FROM changes").fetchall()
        replaced = [{"credit_code": c, "before": [lb, sb], "after": [la, sa]} for c, lb, sb, la, sa in conn.execute(
            "SELECT credit_code, level_before, score_before, level, score FROM changes WHERE NOT is_new "
            "ORDER BY credit_code LIMIT 50").fetchall()]
        session.flush()
        (nul,) = conn.execute("SELECT count(*) FILTER (WHERE contains(name, chr(0))) FROM changes").fetchall()[0]
        if nul:  # these writes bypass the statement hook that refuses NUL everywhere else
            raise NulInText(NUL_REFUSED)
        if changed and _empty_year(session, year):
            inserted = _insert_year(session, conn, Path(tmp), year, changed, progress)
        elif changed:
            _load_changes(session, conn, Path(tmp), changed, progress)
            inserted = _write_changes(session, year, utcnow())
        else:
            inserted = 0
    figures = {"year": year, "unit": unit.code, "engine": engine, "evaluated": by_status.get("evaluated", 0),
               "levels": levels, "not_evaluated": {reason: by_status.get(reason, 0) for reason in EXCEPTIONS},
               "written": {"inserted": inserted, "updated": changed - new, "held_elsewhere": new - inserted,
                           "unchanged": by_status.get("evaluated", 0) - changed}}
    audit.record(session, actor=actor, action="credit.annual.evaluated", object_type="credit_rating",
                 object_id=f"{year}:{unit.code}", after=figures | {"replaced_first": replaced})
    return figures


def summary(figures: dict) -> str:
    """The run's figures in words, for the task page and the command line."""
    levels = ",".join(f"{level}级 {n} 户" for level, n in figures["levels"].items()) or "无"
    out = figures["not_evaluated"]
    written = figures["written"]
    return (f"{figures['year']} 年度评价 {figures['evaluated']} 户({levels});未参评:个体工商户 "
            f"{out['individual_business']} 户,新设立 {out['new']} 户,年度内无申报 {out['no_filings']} 户。"
            f"写入:新增 {written['inserted']} 条,更新 {written['updated']} 条,未变化 {written['unchanged']} 条"
            + (f",已由管辖范围外单位登记 {written['held_elsewhere']} 条未写" if written["held_elsewhere"] else ""))
