"""Dynamic credit + risk monitoring (measure 95): a risk tier per taxpayer from indicators written in the push rule
language, with the indicators that fired and the consequence as a flag the bureau acts on.

The indicators (credit/data/risk.json) are samples for a bureau to replace. Each is a rule over the registry with
its credit overlay (credit_level, from the register) and two figures of the filings; they are checked like any push
rule and run in one pass over the store. A taxpayer's tier is the highest of those that fired, 低 when none did.
A run recomputes the tiers of the actor's subtree (the whole store for the scheduled job), writes only the rows that
changed since the tiers stored, and is audited once, with the counts per tier and the rows written.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from uuid import uuid4

import duckdb
import pyarrow as pa
from sqlalchemy import Text, case, cast, delete, func, or_, select
from sqlalchemy.orm import Session, joinedload

from chunfeng import workdays
from chunfeng.credit.bulk import BATCH, literal, write_rows
from chunfeng.credit.evaluation import filing_deadline_of
from chunfeng.credit.models import RISK_TIERS, CreditRisk
from chunfeng.db import NUL_REFUSED, NulInText, utcnow
from chunfeng.jobs import Progress, no_progress
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize, subtree_filter
from chunfeng.org.models import Unit
from chunfeng.paging import Page, paginate
from chunfeng.push import rules as push_rules
from chunfeng.push import store as push_store
from chunfeng.push.matching import region_prefix
from chunfeng.push.schema import RULE_REGISTRY, Field, Table

RISK_TABLE = Table("risk_view", "风险指标数据", RULE_REGISTRY.fields + (
    Field("returns_12m", "int", "近12个月申报次数"),
    Field("late_returns_12m", "int", "近12个月逾期申报次数(月、季申报)"),
), key=("credit_code",))
EXPORT_HEADERS = ["统一社会信用代码", "纳税人名称", "风险等级", "处理标识", "触发的风险指标", "主管税务机关", "等级确定时间"]
ENGINES = ("duckdb", "spark")  # where the tiers are decided (the setting credit_risk_engine)


@cache
def data() -> dict:
    return json.loads(files("chunfeng.credit").joinpath("data/risk.json").read_text(encoding="utf-8"))


@cache
def indicators() -> list[tuple[dict, push_rules.Rule]]:
    """Each indicator with its checked rule; a shipped indicator that does not check fails loudly here."""
    return [(i, push_rules.check(i["rule"], RISK_TABLE)) for i in data()["indicators"]]


def consequence(tier: str) -> dict:
    return data()["tiers"][tier]


def _deadlines(conn, since: date, calendar: workdays.WorkCalendar) -> pa.Table:
    """Each period of the window's returns and its deadline; a period whose deadline falls in a year the calendar
    does not cover is left out (its returns are not counted late: the deadline is not known, never guessed)."""
    periods = [p for (p,) in conn.execute("SELECT DISTINCT period FROM filings WHERE filed_on >= $since",
                                          {"since": since}).fetchall()]
    known: dict[str, date] = {}
    for period in periods:
        try:
            if (deadline := filing_deadline_of(period, calendar)) is not None:
                known[period] = deadline
        except workdays.CalendarNotCovered:
            continue
    return pa.table({"period": pa.array(list(known), pa.string()), "deadline": pa.array(list(known.values()), pa.date32())})


def flag_columns() -> str:
    """One 0/1 column per indicator (i0, i1, …, in the order of `indicators()`), over `risk_view AS r`."""
    return ", ".join(f"CASE WHEN {rule.sql('duckdb', table_alias='r')} THEN 1 ELSE 0 END AS i{n}"
                     for n, (_, rule) in enumerate(indicators()))


def risk_view_sql(today: date) -> str:
    """`risk_view` (DuckDB dialect): the registry with the year's returns and late returns before `today`, over the
    tables `registry`, `filings` and `deadlines` (`_deadlines`)."""
    since = today - timedelta(days=365)
    return f"""SELECT g.*, CAST(coalesce(f.returns, 0) AS INTEGER) AS returns_12m,
               CAST(coalesce(f.late, 0) AS INTEGER) AS late_returns_12m
        FROM registry g LEFT JOIN (
            SELECT k.credit_code, count(*) AS returns,
                   count(*) FILTER (WHERE d.deadline IS NOT NULL AND k.filed_on > d.deadline) AS late
            FROM filings k LEFT JOIN deadlines d ON d.period = k.period
            WHERE k.filed_on >= DATE '{since.isoformat()}' AND k.filed_on <= DATE '{today.isoformat()}'
            GROUP BY k.credit_code) f ON f.credit_code = g.credit_code"""


def create_risk_view(conn, *, calendar: workdays.WorkCalendar, today: date) -> None:
    """`risk_view` on a store connection: the registry with the year's returns and late returns before `today`."""
    conn.register("deadlines", _deadlines(conn, today - timedelta(days=365), calendar))
    conn.execute(f"CREATE TEMP VIEW risk_view AS {risk_view_sql(today)}")


def tier_columns() -> str:
    """Over the flags i0, i1, … of `flag_columns`: `tier` (the highest of the indicators that fired, else 低) and
    `fired` (their names, in the order of `indicators()`), so a taxpayer's tier is decided inside the engine."""
    checked = indicators()
    whens = [f"WHEN {' OR '.join(f'i{k} = 1' for k, (i, _) in enumerate(checked) if i['tier'] == tier)} THEN '{tier}'"
             for tier in reversed(RISK_TIERS[1:]) if any(i["tier"] == tier for i, _ in checked)]
    tier = f"CASE {' '.join(whens)} ELSE '{RISK_TIERS[0]}' END" if whens else f"'{RISK_TIERS[0]}'"
    names = ", ".join(f"CASE WHEN i{k} = 1 THEN {literal(i['name'])} END" for k, (i, _) in enumerate(checked))
    return f"{tier} AS tier, list_filter([{names}], lambda x: x IS NOT NULL) AS fired"


def tiered_sql() -> str:
    """The taxpayers of the owned regions whose tier is above 低, with the unit, tier and fired indicators (DuckDB
    dialect, over `risk_view` and `owners`). Only these leave the engine: naming and listing the indicators of
    every taxpayer, 83 % of them 低, was most of the engine's time; the 低 are counted apart."""
    above = " OR ".join(f"i{k} = 1" for k, (i, _) in enumerate(indicators()) if i["tier"] != RISK_TIERS[0]) or "FALSE"
    return f"""SELECT f.credit_code, f.name, o.unit_id, {tier_columns()}
        FROM (SELECT r.credit_code, r.name, r.region, {flag_columns()} FROM risk_view AS r) AS f
        JOIN owners AS o ON o.region = f.region
        WHERE {above}"""


def _owners(session: Session, actor: Actor, regions: list[str], within: Unit | None = None) -> pa.Table:
    """Each region's unit: the deepest whose code prefixes it. A region whose unit another run owns (or that no
    bureau covers) is left out — outside the actor's subtree, or outside `within`'s when a run names a unit.
    Decided once per region (a few thousand), then joined on equality."""
    units = [(region_prefix(u.code), u.id) for u in session.scalars(select(Unit))]
    units = sorted(((p, i) for p, i in units if p), key=lambda pair: -len(pair[0]))
    scope = select(Unit.id).where(subtree_filter(actor))
    if within is not None:
        scope = scope.where(Unit.path.startswith(within.path, autoescape=True))
    inside = set(session.scalars(scope))
    owners: dict[str, int] = {}
    for region in regions:
        unit_id = next((i for p, i in units if region.startswith(p)), None)
        if unit_id in inside:
            owners[region] = unit_id
    return pa.table({"region": pa.array(list(owners), pa.string()), "unit_id": pa.array(list(owners.values()), pa.int64())})


def on_spark(conn, work: Path, *, small: dict[str, tuple[pa.Table, str]], views: list[tuple[str, str]],
             result: str, columns: str) -> None:
    """Run DuckDB-dialect SQL on a local Spark session (as push's engines.SparkEngine runs) and bring its result
    back as the DuckDB temp table `result`: the registry (with its credit overlay) and the filings go over as
    Parquet, the `small` tables (name: (rows, Spark schema)) as data frames; each of `views` (name, SQL) becomes a
    temp view, translated for Spark, the last one's rows come back as Parquet. `columns`: the result's DuckDB
    columns, for the empty table when Spark wrote no file (no taxpayer in the actor's regions)."""
    from chunfeng.push.engines import SparkEngine, export_parquet
    from chunfeng.push.matching import translate

    tables = ("registry", "filings")
    engine = SparkEngine.local(export_parquet(conn, work / "extract", tables=tables), tables=tables)
    try:
        for name, (table, schema) in small.items():
            rows = list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
            engine.spark.createDataFrame(rows, schema=schema).createOrReplaceTempView(name)
        for name, sql in views[:-1]:
            engine.spark.sql(translate(sql, engine)[0]).createOrReplaceTempView(name)
        engine.spark.sql(translate(views[-1][1], engine)[0]).write.parquet(str(work / result))
    finally:
        engine.spark.stop()
    parts = sorted((work / result).glob("*.parquet"))
    if parts:
        files = "[" + ", ".join(literal(str(p)) for p in parts) + "]"
        names = ", ".join(c.split()[0] for c in columns.split(", "))
        conn.execute(f"CREATE TEMP TABLE {result} AS SELECT {names} FROM read_parquet({files})")
    else:
        conn.execute(f"CREATE TEMP TABLE {result} ({columns})")


def _tiers_on_spark(conn, work: Path, *, deadlines: pa.Table, owners: pa.Table, today: date) -> None:
    """`tiered` decided on Spark: the same SQL, written for DuckDB, translated for Spark (`on_spark`)."""
    on_spark(conn, work, small={"deadlines": (deadlines, "period STRING, deadline DATE"),
                                "owners": (owners, "region STRING, unit_id BIGINT")},
             views=[("risk_view", risk_view_sql(today)), ("tiered", tiered_sql())], result="tiered",
             columns="credit_code VARCHAR, name VARCHAR, unit_id BIGINT, tier VARCHAR, fired VARCHAR[]")


LISTED_COLUMNS = ("credit_code", "name", "unit_id", "tier", "indicators", "computed_at")
STORED = pa.schema([("credit_code", pa.string()), ("name", pa.string()), ("unit_id", pa.int64()), ("tier", pa.string()),
                    ("indicators", pa.string())])


def snapshot_path(store: Path) -> Path:
    """Where the runs keep a copy of the tier table for the next national run, beside the store it was computed from."""
    return store.with_name(store.name + ".risk.parquet")


@dataclass(frozen=True)
class Fingerprint:
    """The table as a run leaves it: every run that writes a row stamps it with its own time, and one that only
    deletes changes the count, so a table a rolled-back transaction, a restored backup or a hand edit left differs
    from the one the snapshot was written for."""

    dialect: str
    rows: int
    top: int | None
    latest: datetime | None

    @classmethod
    def of(cls, session: Session) -> Fingerprint:
        rows, top, latest = session.execute(select(func.count(), func.max(CreditRisk.id),
                                                   func.max(CreditRisk.computed_at))).one()
        return cls(session.get_bind().dialect.name, rows, top, latest)

    def after(self, session: Session, written: dict, now: datetime) -> Fingerprint:
        """The table after a run's writes, without reading its latest time again (a scan of every row): the run's
        own time when it wrote a row."""
        if written["inserted"] + written["updated"]:
            latest = now
        elif written["deleted"]:  # the rows deleted may have held the latest time
            latest = session.scalar(select(func.max(CreditRisk.computed_at)))
        else:
            latest = self.latest
        rows = self.rows + written["inserted"] - written["deleted"]
        return Fingerprint(self.dialect, rows, session.scalar(select(func.max(CreditRisk.id))), latest)

    def __str__(self) -> str:
        return f"{self.dialect}:{self.rows}:{self.top}:{self.latest.isoformat() if self.latest else ''}"


def _snapshot_of(conn, path: Path, fingerprint: Fingerprint) -> bool:
    """Whether the snapshot at `path` holds exactly the table whose fingerprint is given."""
    if not path.exists():
        return False
    try:
        kept = conn.execute(f"SELECT value::VARCHAR FROM parquet_kv_metadata({literal(str(path))}) "
                            "WHERE key::VARCHAR = 'fingerprint'").fetchall()
    except duckdb.Error:  # not a Parquet file (a disk that filled up): the table is read instead
        return False
    return kept == [(str(fingerprint),)]


def _stored(session: Session, actor: Actor, national: bool) -> pa.Table:
    """The tiers the database holds for the actor's subtree (the whole table for a national run), as the run
    compares them: read by the driver's cursor (the ORM's rows took twice as long: 49 s for 1.86 M on SQLite) and
    put into Arrow a column at a time, the indicators as the JSON text stored."""
    query = select(CreditRisk.credit_code, CreditRisk.name, CreditRisk.unit_id, CreditRisk.tier,
                   cast(CreditRisk.indicators, Text))
    if not national:
        query = query.where(CreditRisk.unit_id.in_(select(Unit.id).where(subtree_filter(actor))))
    bind = session.connection()
    cursor = bind.connection.driver_connection.cursor()
    cursor.execute(str(query.compile(dialect=bind.dialect, compile_kwargs={"literal_binds": True})))
    batches = []
    while part := cursor.fetchmany(BATCH):
        batches.append(pa.record_batch([pa.array(column, type=f.type) for column, f
                                        in zip(zip(*part, strict=True), STORED, strict=True)], schema=STORED))
    cursor.close()
    return pa.Table.from_batches(batches, schema=STORED)


def _register_stored(session: Session, conn, actor: Actor, national: bool, snapshot: Path, kept: bool) -> bool:
    """`stored` on the store connection: the tiers the database holds for the subtree. A national run reads them
    from the snapshot when it still holds the table (`kept`) — reading 1.86 M rows out of SQLite into Python cost
    as much as DuckDB's whole evaluation — and from the database otherwise; a subtree's run reads its own rows from
    the database. Returns whether the snapshot was used."""
    if national and kept:
        conn.execute(f"CREATE TEMP VIEW stored AS SELECT credit_code, name, unit_id, tier, fired "
                     f"FROM read_parquet({literal(str(snapshot))})")
        return True
    conn.register("stored_rows", _stored(session, actor, national))
    conn.execute("""CREATE TEMP VIEW stored AS SELECT credit_code, name, unit_id, tier,
                    from_json(indicators, '["VARCHAR"]') AS fired FROM stored_rows""")
    return False


def _keep_snapshot(conn, snapshot: Path, fingerprint: Fingerprint, inside: list[int] | None) -> None:
    """After a run's writes, the whole table as the next national run's `stored`, with the table's fingerprint: a
    national run's 中 and 高 rows; a subtree's run (`inside`: its units), the snapshot's rows of the other units and
    its own — so an official's run does not send the next national one to the table. Written beside the old file,
    then renamed over it."""
    rows = f"SELECT credit_code, name, unit_id, tier, fired FROM tiered WHERE tier <> '{RISK_TIERS[0]}'"
    if inside is not None:
        conn.register("inside_units", pa.table({"unit_id": pa.array(inside, pa.int64())}))
        rows = (f"SELECT credit_code, name, unit_id, tier, fired FROM read_parquet({literal(str(snapshot))}) "
                f"WHERE unit_id NOT IN (SELECT unit_id FROM inside_units) UNION ALL {rows}")
    building = snapshot.with_name(f"{snapshot.name}.{uuid4().hex}.building")  # two runs at once on PostgreSQL
    conn.execute(f"COPY ({rows}) TO {literal(str(building))} (FORMAT parquet, KV_METADATA {{fingerprint: "
                 f"{literal(str(fingerprint))}}})")
    building.replace(snapshot)


# A stored row differs from the run's when any column the pages show does; the indicators are compared as lists,
# whatever JSON spelling wrote them (the ORM's escaped text or DuckDB's).
CHANGES_SQL = f"""CREATE TEMP TABLE changes AS
    SELECT coalesce(t.credit_code, s.credit_code) AS credit_code, t.credit_code IS NOT NULL AS written,
           s.credit_code IS NOT NULL AS dropped
    FROM (SELECT * FROM tiered WHERE tier <> '{RISK_TIERS[0]}') AS t FULL JOIN stored AS s ON s.credit_code = t.credit_code
    WHERE s.credit_code IS NULL OR t.credit_code IS NULL OR t.name IS DISTINCT FROM s.name
       OR t.unit_id IS DISTINCT FROM s.unit_id OR t.tier IS DISTINCT FROM s.tier OR t.fired IS DISTINCT FROM s.fired"""


def _write_changes(session: Session, conn, work: Path, progress: Progress, *, national: bool, empty: bool,
                   now: datetime) -> dict:
    """Bring `credit_risk` to the 中 and 高 rows of `tiered`, in the session's transaction, writing only what
    changed since the tiers it holds (`stored`): a row the run no longer lists is deleted, a row that changed is
    deleted and written again (its computed_at is this run's), a new one is written; the rest are left as they are.
    A daily run finds a few thousand changes among 1.7 M listed rows at 10 M taxpayers, where writing them all
    again was half the run. `empty`: the table holds no row at all (a first run), written in bulk. Returns the counts
    written and deleted."""
    ((written, dropped, changed, kept),) = conn.execute(
        "SELECT count(*) FILTER (WHERE written), count(*) FILTER (WHERE dropped), "
        "count(*) FILTER (WHERE written AND dropped), (SELECT count(*) FROM stored) FROM changes").fetchall()
    counts = {"inserted": written - changed, "updated": changed, "deleted": dropped - changed,
              "unchanged": kept - dropped}
    rows = ("SELECT t.credit_code, t.name, t.unit_id, t.tier, CAST(to_json(t.fired) AS VARCHAR) AS indicators "
            "FROM tiered AS t JOIN changes AS c ON c.credit_code = t.credit_code AND c.written ORDER BY t.credit_code")
    (nul,) = conn.execute(f"SELECT count(*) FILTER (WHERE contains(name, chr(0))) FROM ({rows})").fetchall()[0]
    if nul:  # these writes bypass the statement hook that refuses NUL everywhere else
        raise NulInText(NUL_REFUSED)
    session.flush()
    if dropped:
        if national and dropped == kept:  # every row goes: one unconditional DELETE, which SQLite does without
            session.execute(delete(CreditRisk))  # visiting the rows
        else:
            _delete_codes(session, conn, dropped, progress)
    write_rows(session, conn, rows, written, work, progress, model=CreditRisk, columns=LISTED_COLUMNS[:-1],
               fixed={"computed_at": now}, message="正在写入中、高风险纳税人", bulk=empty)
    return counts


def _delete_codes(session: Session, conn, total: int, progress: Progress) -> None:
    bind = session.connection()
    cursor, done = bind.connection.driver_connection.cursor(), 0
    marker = "%s" if bind.dialect.name == "postgresql" else "?"
    for batch in conn.sql("SELECT credit_code FROM changes WHERE dropped").to_arrow_reader(BATCH):
        cursor.executemany(f"DELETE FROM {CreditRisk.__tablename__} WHERE credit_code = {marker}",
                           [(code,) for code in batch.column(0).to_pylist()])
        done += batch.num_rows
        progress(done, total, "正在删除已变化的风险等级")
    cursor.close()



def compute(*, session: Session, actor: Actor, store: Path, today: date, progress: Progress = no_progress,
            engine: str = "duckdb") -> dict:
    """Recompute the tiers of the actor's subtree from the store; returns the counts per tier.

    Each taxpayer's tier is decided in the data engine (`engine`: duckdb, where the store is, or spark — the
    setting credit_risk_engine); only the 中 and 高 tiers, with the indicators that fired, are kept in the
    application database — the lists officials page through — and only those that changed are written. A 低
    taxpayer is one with no row (every taxpayer of the subtree was evaluated: its count is in the audit entry)."""
    authorize(actor, "credit.risk")
    if engine not in ENGINES:
        raise ValueError(f"credit risk engine {engine!r}: one of {', '.join(ENGINES)}")
    prefix = region_prefix(actor.unit_code if isinstance(actor, SystemActor) else actor.unit.code)
    progress(0, 0, "正在计算风险指标")
    calendar = workdays.configured_calendar(session)
    with push_store.connect_store(store) as conn, tempfile.TemporaryDirectory(prefix="chunfeng-risk-") as tmp:
        # Regions and counts from the registry as stored: the `registry` view joins the register's levels onto every
        # taxpayer, which neither needs (a third of a run's reads outside the indicators themselves).
        catalog = conn.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""')
        stored = f'"{catalog}".main.registry'
        regions = [r for (r,) in conn.execute(f"SELECT DISTINCT region FROM {stored} WHERE starts_with(region, $prefix)",
                                              {"prefix": prefix}).fetchall()]
        owners = _owners(session, actor, regions)
        conn.register("owners", owners)
        if engine == "spark":
            _tiers_on_spark(conn, Path(tmp), deadlines=_deadlines(conn, today - timedelta(days=365), calendar),
                            owners=owners, today=today)
        else:
            create_risk_view(conn, calendar=calendar, today=today)
            conn.execute(f"CREATE TEMP TABLE tiered AS {tiered_sql()}")
        counts = dict.fromkeys(RISK_TIERS, 0) | dict(conn.execute(
            f"SELECT tier, count(*) FROM tiered WHERE tier <> '{RISK_TIERS[0]}' GROUP BY tier").fetchall())
        evaluated = conn.execute(f"SELECT count(*) FROM {stored} AS r JOIN owners AS o ON o.region = r.region").fetchall()
        counts[RISK_TIERS[0]] = evaluated[0][0] - sum(counts.values())
        # The subtree's tiers as stored, compared inside DuckDB with the run's: a subtree of every unit (the job's
        # national run) compares the whole table.
        national = not session.scalar(select(func.count()).select_from(Unit)
                                      .where(or_(Unit.path.is_(None), ~subtree_filter(actor))))
        before, snapshot = Fingerprint.of(session), snapshot_path(store)
        kept = _snapshot_of(conn, snapshot, before)
        compared = _register_stored(session, conn, actor, national, snapshot, kept)
        conn.execute(CHANGES_SQL)
        now = utcnow()
        written = _write_changes(session, conn, Path(tmp), progress, national=national, empty=not before.rows,
                                 now=now)
        changed = written["unchanged"] != sum(written.values())
        # A national run leaves a snapshot of the table; a subtree's run brings a snapshot that held the table up to
        # date, and leaves a stale one alone (its fingerprint no longer matches: it is not read).
        if (national or kept) and (changed or not kept):
            session.flush()
            inside = None if national else list(session.scalars(select(Unit.id).where(subtree_filter(actor))))
            _keep_snapshot(conn, snapshot, before.after(session, written, now), inside)
    audit.record(session, actor=actor, action="credit.risk.computed", object_type="credit_risk",
                 object_id=prefix or "national",
                 after={"counts": counts, "written": written, "compared": "snapshot" if compared else "table",
                        "day": today.isoformat(), "engine": engine})
    return counts


def _query(actor: Actor, tier: str, q: str):
    query = (select(CreditRisk).join(CreditRisk.unit).options(joinedload(CreditRisk.unit)).where(subtree_filter(actor)))
    if tier:
        query = query.where(CreditRisk.tier == tier)
    if q := q.strip():
        query = query.where(or_(CreditRisk.name.contains(q, autoescape=True),
                                CreditRisk.credit_code.startswith(q.upper(), autoescape=True)))
    # 高 first: by the tiers' order, not their characters' (高 > 低 > 中 in code points)
    rank = case({t: n for n, t in enumerate(reversed(RISK_TIERS))}, value=CreditRisk.tier, else_=len(RISK_TIERS))
    return query.order_by(rank, CreditRisk.credit_code)


def list_risks(*, session: Session, actor: Actor, tier: str = "", q: str = "", page: int = 1,
               per_page: int = 50) -> Page[CreditRisk]:
    """The tiers of the actor's subtree, filtered by tier or name/code."""
    authorize(actor, "credit.view")
    return paginate(session, _query(actor, tier if tier in RISK_TIERS else "", q), page, per_page)


def export_rows(*, session: Session, actor: Actor, tier: str = "", q: str = ""):
    authorize(actor, "credit.view")
    for r in session.scalars(_query(actor, tier if tier in RISK_TIERS else "", q)).yield_per(1000):
        yield [r.credit_code, r.name, r.tier, consequence(r.tier)["flag"], "、".join(r.indicators) or "无",
               r.unit.name, r.computed_at.strftime("%Y-%m-%d %H:%M")]
