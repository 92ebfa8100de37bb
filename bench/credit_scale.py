"""Taxpayer credit at scale: risk tiers (measure 95) over a synthetic registry, and the public list of major
violators paged.

Figures, each printed beside its target and a baseline measured in the same run:
- the risk tiers (measure 95): every sample indicator inside DuckDB (flags summed there), and the whole scheduled
  run (`risk.compute` at the national unit on `--engine`: tiers decided there, the 中 and 高 rows written to the
  database), into an empty table, again with nothing changed, and again with one taxpayer in 1,000 re-rated D (the
  levels file swapped for the run, then put back), each with the machine's load. The issue's target is 10 million
  taxpayers under 30 s (`--taxpayers 10000000`). Baseline: the same three runs of `risk.compute` as of `--baseline`
  (default: the revision before a first run wrote into an empty table in bulk; '' leaves it out);
- the register's levels published for the rules (`evaluation.publish_levels`) from `--levels` register entries
  (target: 10 million under 30 s), beside `publish_levels` as of `--baseline` (before SQLite read the register in
  ranges on several connections; `--skip-baseline` leaves it out); then one
  taxpayer's change published over them (`evaluation.publish_taxpayer`) and a rule's count read through both;
- the public list of major violators (`services.public_violators`, as /credit/violators and /api/credit/violators
  use it: keyset pages after the previous page's last (published_on, id), the total counted up to 10,000) with N
  entries on the list (default 100,000, a tenth of them already off it): the first, middle and last page, a page
  reached backwards and a name search, each the median of 5 (target: every page under 300 ms). Baseline: the same
  pages as they were served before (a count and an OFFSET page);
- the repair queue (`repair.list_repairs`, as /credit/repairs serves it) with N applications (default 200,000, a
  twentieth pending), national view: each filter's first, middle and last page (target: under 300 ms). Baseline:
  the last page as it was served before (one query sorted “pending first”, an OFFSET page).

- the annual evaluation (`--annual`, `annual.evaluate_year` at the national unit for 2022, the synthetic returns'
  year): every taxpayer evaluated inside the engine (`annual.evaluate_in_engine`, DuckDB or `--engine spark`), then
  the whole run into the database — into an empty register, again with nothing changed, again with one row in 1,000
  rated otherwise — beside the 30 s target and the same three runs of `annual.evaluate_year` as of ANNUAL_BASELINE
  (with its bulk writer, `risk.write_rows` before `credit/bulk.py`; `--skip-baseline` leaves it out). Baseline of the evaluation: the
  voluntary evaluation's indicators (`evaluation.indicators`, one taxpayer at a time, as the register could be
  filled before), timed over 20 taxpayers and scaled up.

Run: .venv/bin/python bench/credit_scale.py [--taxpayers 1000000] [--levels 1000000] [--violators 100000]
     [--repairs 200000] [--engine duckdb|spark] [--database-url postgresql://…] [--risk-only] [--levels-only]
     [--baseline REV] [--skip-baseline] [--skip-risk] [--fresh] [--annual]
The synthetic store (registry, returns, the register's levels file) is built inside DuckDB into bench/out/ and reused
when the size matches; the database (a SQLite file in bench/out/, or the PostgreSQL one named) is made afresh on
every run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import nullcontext
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

import duckdb
import pyarrow as pa
from common import configure, step  # bench/common.py
from sqlalchemy import case, delete, insert, select, update

from chunfeng.credit import annual, evaluation, repair, risk, services
from chunfeng.credit.models import CreditRating, CreditRepair, CreditRisk, Violator
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.org.models import Unit
from chunfeng.paging import paginate
from chunfeng.push import store as push_store
from chunfeng.push import synthetic
from chunfeng.workdays import configured_calendar

OUT = Path(__file__).parent / "out"
TODAY = date(2026, 12, 7)  # the violator list's day
RISK_DAY = date(2022, 8, 1)  # the synthetic extract's returns are those of 2022's first half: a year's window holds them
TARGET_TAXPAYERS, TARGET_SECONDS, PAGE_TARGET_MS = 10_000_000, 30.0, 300.0
WHOLE_RUN_LIMIT = 10_000_000  # --annual: the whole run into the database up to this size
PER_PAGE = 50
ANNUAL_BASELINE = "bbef6d4"  # before the first run kept the indexes its rows append to (annual)
BASELINE = "f170756"  # before the bulk write into an empty table (risk) and the levels read in ranges by SQLite
REPAIR_PER_PAGE = 30  # as /credit/repairs serves it


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def median_of(work, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _uniform(salt: int, key: str = "i") -> str:
    """A uniform number in [0, 1) per taxpayer (`key`: its row number), its own for each salt: the same count gives
    the same store."""
    return f"CAST(hash({key}, {salt}) % 1000000 AS BIGINT) / 1e6"


def _log_band(band: str, column: int, salt: int) -> str:
    """A value spread log-uniformly over the size band's range (synthetic.BANDS), as the extract generator does."""
    lows = ", ".join(str(float(b[column][0])) for b in synthetic.BANDS)
    highs = ", ".join(str(float(b[column][1])) for b in synthetic.BANDS)
    return f"([{lows}][{band} + 1] * pow([{highs}][{band} + 1] / [{lows}][{band} + 1], {_uniform(salt)}))"


def build_risk_store(path: Path, taxpayers: int) -> None:
    """A store of `taxpayers` synthetic taxpayers — the registry and a half-year of returns as push/synthetic.py
    draws them (regions by weight, size bands, levels, registration dates, monthly or quarterly returns filed up
    to 19 days after the period; contacts and claims empty: the risk indicators read neither) — made inside DuckDB
    from hashes of the row number, column by column: 10 million taxpayers in a minute or two where the
    row-by-row extract and its checked import took hours. Credit codes carry their GB 32100 check character."""
    from chunfeng.push.schema import CLAIMS, CONTACTS, CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS, REGISTRY

    cities = [(prov, n, name, w / len(names.split())) for prov, w, names in synthetic.PROVINCES
              for n, name in enumerate(names.split(), start=1)]
    total, slots, acc = sum(c[3] for c in cities), [], 0.0
    for prov, n, name, w in cities:  # 4,096 slots shared out by weight: a city is picked by one hash
        acc += w
        slots += [(prov, n, name)] * (round(acc / total * 4096) - len(slots))
    regions = pa.table({"slot": pa.array(range(4096), pa.int64()), "prov": [s[0] for s in slots],
                        "city": [s[1] for s in slots], "city_name": [s[2] for s in slots]})
    returns = pa.table({"slot": list(range(len(synthetic.SLOTS))), "return_type": [s[0] for s in synthetic.SLOTS],
                        "period": [s[1] for s in synthetic.SLOTS], "who": [s[2] for s in synthetic.SLOTS],
                        "period_end": pa.array(synthetic.SLOT_END.tolist(), pa.date32()),
                        "latest": synthetic.LATEST.tolist()})
    alphabet, weights = CREDIT_CODE_ALPHABET, CREDIT_CODE_WEIGHTS
    org = [f"(i // {31 ** (7 - k)}) % 31" for k in range(8)]  # the row number in base 31: unique codes
    digit = [f"(region_no // {10 ** (5 - k)}) % 10" for k in range(6)]
    check = " + ".join([f"9 * {weights[0]}", f"(CASE WHEN ib THEN 2 ELSE 1 END) * {weights[1]}"]
                       + [f"{d} * {w}" for d, w in zip(digit, weights[2:8], strict=True)]
                       + [f"{o} * {w}" for o, w in zip(org, weights[8:16], strict=True)]
                       + [f"(CAST(hash(i, 17) % 31 AS BIGINT)) * {weights[16]}"])
    chars = " || ".join(f"'{alphabet}'[{o} + 1]" for o in org)
    divisions = "[" + ", ".join(f"'{d[0]}'" for d in synthetic.DIVISIONS) + "]"
    trades = "[" + ", ".join(f"'{d[1]}'" for d in synthetic.DIVISIONS) + "]"
    brand, surnames = synthetic.BRAND_CHARS, "".join(synthetic.SURNAMES)
    span = (synthetic.REGISTERED_TO - synthetic.REGISTERED_FROM).astype(int) + 1
    building = path.with_name(path.name + ".building")
    building.unlink(missing_ok=True)
    with duckdb.connect(str(building)) as conn:
        conn.execute("SET enable_progress_bar = false")
        conn.register("regions", regions)
        conn.register("returns", returns)
        conn.execute(f"""CREATE TEMP TABLE drawn AS
            SELECT i, ib, CASE WHEN ib THEN 3 WHEN u < 0.05 THEN 0 WHEN u < 0.20 THEN 1 WHEN u < 0.60 THEN 2 ELSE 3 END
                   AS size_no, region_no, city_name
            FROM (SELECT i, {_uniform(1)} < 0.25 AS ib, {_uniform(2)} AS u,
                         r.prov * 10000 + r.city * 100 + CASE WHEN r.prov IN (11, 12, 31, 50) THEN 1 + CAST(hash(i, 4) % 16 AS BIGINT)
                                                              ELSE 1 + CAST(hash(i, 4) % 20 AS BIGINT) END AS region_no, r.city_name
                  FROM range({taxpayers}) AS t(i) JOIN regions AS r ON r.slot = CAST(hash(i, 3) % 4096 AS BIGINT))""")
        conn.execute(f"""CREATE TEMP TABLE base AS
            SELECT *, annual_revenue > 5000000 OR (NOT ib AND {_uniform(9)} < 0.06) AS general FROM (
            SELECT i, ib, size_no,
                   '9' || CASE WHEN ib THEN '2' ELSE '1' END || CAST(region_no AS VARCHAR) || {chars}
                       || '{alphabet}'[CAST(hash(i, 17) % 31 AS BIGINT) + 1]
                       || '{alphabet}'[CAST((31 - ({check}) % 31) % 31 AS BIGINT) + 1] AS credit_code,
                   CASE WHEN ib THEN city_name || '市' || '{surnames}'[CAST(hash(i, 5) % {len(surnames)} AS BIGINT) + 1] || '记商行'
                        ELSE city_name || '{brand}'[CAST(hash(i, 6) % {len(brand)} AS BIGINT) + 1] || '{brand}'[CAST(hash(i, 7) % {len(brand)} AS BIGINT) + 1]
                             || {trades}[CAST(hash(i, 8) % {len(synthetic.DIVISIONS)} AS BIGINT) + 1] || '有限公司' END AS name,
                   CAST(region_no AS VARCHAR) AS region,
                   {divisions}[CAST(hash(i, 8) % {len(synthetic.DIVISIONS)} AS BIGINT) + 1] || CAST(10 + CAST(hash(i, 10) % 90 AS BIGINT) AS VARCHAR)
                       AS industry,
                   ['大型', '中型', '小型', '微型'][size_no + 1] AS size,
                   CAST(greatest(1, round({_log_band("CASE WHEN ib THEN 4 ELSE size_no END", 0, 11)})) AS INTEGER)
                       AS headcount,
                   CAST({_log_band("CASE WHEN ib THEN 4 ELSE size_no END", 1, 12)} AS DECIMAL(18,2)) AS total_assets,
                   CAST({_log_band("CASE WHEN ib THEN 4 ELSE size_no END", 2, 13)} AS DECIMAL(18,2)) AS annual_revenue,
                   {_uniform(14)} AS u_vat, {_uniform(15)} AS u_rd, {_uniform(16)} AS u_credit,
                   DATE '{synthetic.REGISTERED_FROM}' + CAST({span} * pow({_uniform(18)}, 0.7) AS INTEGER) AS registered,
                   NOT ib AND {_uniform(19)} < 0.05 AS high_tech, NOT ib AND {_uniform(20)} < 0.08 AS tech_sme,
                   NOT ib AND {_uniform(21)} < 0.10 AS exporter
            FROM drawn)""")
        values = {
            "vat_type": "CASE WHEN general THEN '一般纳税人' ELSE '小规模' END",
            "monthly_sales": "CAST(annual_revenue / 12 AS DECIMAL(18,2))",
            "taxable_income": "CAST(greatest(0, annual_revenue * (u_rd * 0.25 - 0.02)) AS DECIMAL(18,2))",
            "rd_expense": "CAST(CASE WHEN NOT ib AND u_rd < 0.12 THEN annual_revenue * 0.03 ELSE 0 END AS DECIMAL(18,2))",
            "vat_credit": "CAST(CASE WHEN general AND u_vat < 0.6 THEN annual_revenue * u_vat / 30 ELSE 0 END AS DECIMAL(18,2))",
            "credit": "CASE WHEN u_credit < 0.12 THEN 'A' WHEN u_credit < 0.57 THEN 'B' WHEN u_credit < 0.90 THEN 'M' "
                      "WHEN u_credit < 0.96 THEN 'C' ELSE 'D' END",
            "manufacturing": f"NOT ib AND starts_with({divisions}[CAST(hash(i, 8) % {len(synthetic.DIVISIONS)} AS BIGINT) + 1], 'C')",
            "individual_business": "ib",
        }
        columns = ", ".join(f'{values.get(f.name, f.name)} AS "{f.name}"' for f in REGISTRY.fields)
        conn.execute(f"CREATE TABLE registry AS SELECT {columns} FROM base")
        # A return for each period the taxpayer files for that ended after it registered; about 5% have not filed
        # the latest period yet. Filed on the day after the period ended to 19 days later: some after the deadline.
        conn.execute("""CREATE TABLE filings AS
            SELECT b.credit_code, r.return_type, r.period,
                   r.period_end + CAST(CAST(hash(b.i, 100 + r.slot) % 20 AS BIGINT) AS INTEGER) AS filed_on
            FROM base AS b CROSS JOIN returns AS r
            WHERE CASE r.who WHEN 'general' THEN b.general WHEN 'small' THEN NOT b.general ELSE NOT b.ib END
              AND b.registered < r.period_end AND NOT (r.latest AND CAST(hash(b.i, 99) % 100 AS BIGINT) < 5)""")
        for table in (CONTACTS, CLAIMS):
            typed = ", ".join(f'CAST(NULL AS {f.duck_type}) AS "{f.name}"' for f in table.fields)
            conn.execute(f"CREATE TABLE {table.name} AS SELECT {typed} LIMIT 0")
        # The credit register's levels file, as evaluation.publish_levels writes it, for every taxpayer: the rules'
        # credit_level is joined from it (a twentieth rated differently from the extract, a few under repair).
        levels = push_store.credit_levels_path(path)
        conn.execute(f"""COPY (SELECT credit_code,
                   CASE WHEN {_uniform(30, "credit_code")} < 0.05
                        THEN ['A', 'B', 'M', 'C', 'D'][CAST(hash(credit_code, 31) % 5 AS BIGINT) + 1]
                        ELSE credit END AS level, CAST(2024 AS INTEGER) AS year,
                   CASE WHEN {_uniform(32, "credit_code")} < 0.01 THEN '已修复' ELSE '无' END AS repair
            FROM registry) TO '{levels}' (FORMAT parquet)""")
    building.replace(path)


def store_of(taxpayers: int, fresh: bool) -> Path:
    """The synthetic store of `taxpayers`, built once and reused from bench/out/ while the size matches."""
    store_file = OUT / f"credit-risk-{taxpayers}.duckdb"
    if fresh:
        store_file.unlink(missing_ok=True)
    if not (store_file.exists() and push_store.credit_levels_path(store_file).exists()):
        OUT.mkdir(exist_ok=True)
        with step(f"building a synthetic store of {taxpayers:,} taxpayers inside DuckDB (registry and returns)"):
            build_risk_store(store_file, taxpayers)
    return store_file


def fresh_database(url: str = "") -> Database:
    """The bench's database made afresh: a SQLite file in bench/out/, or the PostgreSQL database `url` emptied."""
    OUT.mkdir(exist_ok=True)
    if url:
        db = Database("postgresql+psycopg://" + url.removeprefix("postgresql://").removeprefix("postgresql+psycopg://"))
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    else:
        path = OUT / "credit-scale.db"
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        db = Database(f"sqlite:///{path}")
    db.upgrade()
    return db


def baseline_module(revision: str, name: str = "risk"):
    """`chunfeng.credit.<name>` as of `revision` (git show: no checkout), loaded beside the current one over the same
    package: the baseline run in the same process, on the same store and database."""
    import subprocess
    import sys
    import types

    path = f"src/chunfeng/credit/{name}.py"
    source = subprocess.run(["git", "-C", str(Path(__file__).parent), "show", f"{revision}:{path}"],
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"chunfeng.credit.{name}_baseline")
    module.__file__ = f"{revision}:{path}"
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def with_bulk(module, revision: str):
    """`module` as of `revision` writing through that revision's bulk writer: `credit/bulk.py` where it has one
    (risk.py imported the current one while loading), else `risk.write_rows`, which stood in risk.py before."""
    import subprocess

    has_bulk = subprocess.run(["git", "-C", str(Path(__file__).parent), "cat-file", "-e",
                               f"{revision}:src/chunfeng/credit/bulk.py"], capture_output=True).returncode == 0
    if has_bulk:
        bulk = baseline_module(revision, "bulk")
        if hasattr(module, "write_rows"):  # risk: the names it imported from bulk
            module.write_rows, module.BATCH, module.literal = bulk.write_rows, bulk.BATCH, bulk.literal
        module.bulk = bulk
    return module


def annual_baseline(revision: str):
    """`annual` as of `revision` writing through the bulk writer and risk as of the same revision (the first run's
    bulk write lives there), both beside the current ones."""
    module = with_bulk(baseline_module(revision, "annual"), revision)
    module.risk = with_bulk(baseline_module(revision, "risk"), revision)
    return module


def load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


class Rerated:
    """`with Rerated(store, every):` the store's levels file with one taxpayer in `every` rated D (a daily run's
    changes), put back as it was at the end."""

    def __init__(self, store_file: Path, every: int):
        self.path, self.every = push_store.credit_levels_path(store_file), every
        self.kept = self.path.with_name(self.path.name + ".kept")

    def __enter__(self):
        os.replace(self.path, self.kept)
        with duckdb.connect() as conn:
            conn.execute(f"""COPY (SELECT credit_code, CASE WHEN hash(credit_code, 40) % {self.every} = 0 THEN 'D'
                                   ELSE level END AS level, year, repair FROM read_parquet('{self.kept}'))
                             TO '{self.path}' (FORMAT parquet)""")
        return self

    def __exit__(self, *exc):
        os.replace(self.kept, self.path)


def risk_figures(db: Database, store_file: Path, taxpayers: int, engine: str, baseline: str) -> None:
    with db.read() as s:
        calendar = configured_calendar(s)
    with push_store.connect_store(store_file) as conn:  # inside DuckDB only: every flag summed, no row leaves it
        conn.execute("SELECT count(*), count(DISTINCT region) FROM registry").fetchall()  # warm the file cache
        t = time.perf_counter()
        risk.create_risk_view(conn, calendar=calendar, today=RISK_DAY)
        flags = ", ".join(f"sum(i{k})" for k in range(len(risk.indicators())))
        conn.execute(f"SELECT count(*), {flags} FROM (SELECT {risk.flag_columns()} FROM risk_view AS r)").fetchall()
        in_engine = time.perf_counter() - t
    print(f"\nrisk tiers (measure 95), {len(risk.indicators())} sample indicators, {taxpayers:,} taxpayers, "
          f"{db.engine.dialect.name}")
    print(f"  every indicator evaluated inside DuckDB (flags summed there): {in_engine:.1f} s", flush=True)
    runs = [("after", risk)] + ([(f"before ({baseline})", with_bulk(baseline_module(baseline), baseline))] if baseline else [])
    slowest, counts = 0.0, {}
    for who, module in runs:
        with db.write() as s:
            s.execute(delete(CreditRisk))
        for label in ("into an empty table", "again, nothing changed", "again, 1 in 1,000 re-rated D"):
            with Rerated(store_file, 1000) if "re-rated" in label else nullcontext():
                t, cpu, started = time.perf_counter(), time.process_time(), load()
                with db.write() as s:
                    counts = module.compute(session=s, actor=SystemActor(username="bench"), store=store_file,
                                            today=RISK_DAY, engine=engine)
                seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            if module is risk:
                slowest = max(slowest, seconds)
            print(f"  {who:<18} risk.compute on {engine}, {label:<30} {seconds:5.1f} s (CPU {cpu:5.1f} s, every "
                  f"thread)   target < {TARGET_SECONDS:.0f} s at {TARGET_TAXPAYERS:,}   ({started})", flush=True)
    print("  tiers: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + " (the 中 and 高 rows kept)")
    if sum(counts.values()) == TARGET_TAXPAYERS:
        print(f"  measured at {TARGET_TAXPAYERS:,}: target {'met' if slowest < TARGET_SECONDS else 'NOT met'} "
              f"(slowest run {slowest:.1f} s)")
    else:
        print(f"  (measured at {sum(counts.values()):,}; --taxpayers {TARGET_TAXPAYERS} measures the target's size)")


def annual_figures(db: Database, store_file: Path, taxpayers: int, engine: str, baseline: str) -> None:
    year, actor = RISK_DAY.year, SystemActor(username="bench")
    with db.read() as s:
        calendar = configured_calendar(s)
        national = s.scalar(select(Unit).where(Unit.code == actor.unit_code))
        with push_store.connect_store(store_file) as conn, TemporaryDirectory() as tmp:
            conn.execute("SELECT count(*), count(DISTINCT region) FROM registry").fetchall()  # warm the file cache
            t, started = time.perf_counter(), load()
            annual.evaluate_in_engine(s, conn, Path(tmp), actor=actor, unit=national, year=year, calendar=calendar,
                                      engine=engine)
            by_status = conn.execute("SELECT status, count(*) FROM evaluated GROUP BY ALL ORDER BY 1").fetchall()
            in_engine = time.perf_counter() - t
            codes = [c for (c,) in conn.execute("SELECT credit_code FROM evaluated WHERE status = 'evaluated' "
                                                "USING SAMPLE 20 ROWS").fetchall()]
        t = time.perf_counter()
        for credit_code in codes:  # the baseline: the voluntary evaluation's indicators, one taxpayer at a time
            evaluation.indicators(store_file, credit_code, year, calendar)
        one_by_one = (time.perf_counter() - t) / max(len(codes), 1) * taxpayers
    print(f"\nannual evaluation of {year}, {taxpayers:,} taxpayers, {db.engine.dialect.name}")
    print(f"  every taxpayer evaluated inside {engine} (status, score, level, deductions): {in_engine:.1f} s   target < "
          f"{TARGET_SECONDS:.0f} s at {TARGET_TAXPAYERS:,}   ({started})")
    print("  " + ", ".join(f"{status} {n:,}" for status, n in by_status))
    print(f"  baseline: one taxpayer at a time (evaluation.indicators, 20 timed): {one_by_one / 3600:,.1f} h for "
          f"{taxpayers:,}", flush=True)
    if taxpayers > WHOLE_RUN_LIMIT:
        print(f"  the whole run is measured up to {WHOLE_RUN_LIMIT:,} (beyond it the first run's SQLite inserts alone "
              "take over 5 minutes on this machine)")
        return
    runs = [("after", annual)] + ([(f"before ({baseline})", annual_baseline(baseline))] if baseline else [])
    for who, module in runs:
        with db.write() as s:
            s.execute(delete(CreditRating).where(CreditRating.year == year))
        for label in ("into an empty register", "again, nothing changed", "again, 1 in 1,000 rated otherwise"):
            if "otherwise" in label:
                with db.write() as s:
                    s.execute(update(CreditRating).where(CreditRating.year == year, CreditRating.id % 1000 == 0)
                              .values(score=CreditRating.score - 1))
            t, cpu, started = time.perf_counter(), time.process_time(), load()
            with db.write() as s:
                figures = module.evaluate_year(session=s, actor=actor, store=store_file, year=year, today=TODAY,
                                               engine=engine)
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            print(f"  {who:<18} whole run on {engine} into {db.engine.dialect.name}, {label:<34} {seconds:5.1f} s "
                  f"(CPU {cpu:5.1f} s, every thread)   "
                  f"target < {TARGET_SECONDS:.0f} s at {TARGET_TAXPAYERS:,}   written {figures['written']}   "
                  f"({started})", flush=True)
    print("  levels: " + ", ".join(f"{level} {n:,}" for level, n in figures["levels"].items()))


def levels_figures(db: Database, store_file: Path, count: int, baseline: str) -> None:
    """`evaluation.publish_levels` (the job credit.levels.publish, and after an import) over a register of `count`
    taxpayers of the store, one year each: what the rules' credit_level is joined from, beside the same as of
    `baseline` (a revision; '' leaves it out); then one taxpayer's change
    published over it (`evaluation.publish_taxpayer`, after an evaluation or a repair), and a rule's count read
    through the levels with and without that change."""
    with step(f"adding {count:,} register entries (one year each)"), db.write() as s:
        unit_id = s.scalar(select(Unit.id).where(Unit.level == "province").order_by(Unit.id))
        bind = s.connection()
        stamp = CreditRating.__table__.c.imported_at.type.dialect_impl(bind.dialect).bind_processor(bind.dialect)
        now = datetime.now(UTC).replace(tzinfo=None)
        now = stamp(now) if stamp else now
        cursor = bind.connection.driver_connection.cursor()
        marker = "%s" if bind.dialect.name == "postgresql" else "?"
        sql = (f"INSERT INTO credit_rating (credit_code, name, year, score, level, deductions, unit_id, imported_at) "
               f"VALUES ({', '.join([marker] * 8)})")
        if bind.dialect.name == "sqlite":  # the indexes' random inserts kept in memory: 10 M in minutes, not an hour
            cursor.execute("PRAGMA cache_size = -2000000")
        with push_store.connect_store(store_file) as conn:  # in the registry's order, as an import would write them
            for batch in conn.sql(f"SELECT credit_code, name, credit FROM registry LIMIT {count}").to_arrow_reader(50_000):
                codes, names, levels = (c.to_pylist() for c in batch.columns)
                cursor.executemany(sql, [(c, n, 2024, 85.0, lv, "{}", unit_id, now)
                                         for c, n, lv in zip(codes, names, levels, strict=True)])
    levels_store = OUT / "levels-bench.duckdb"  # not the risk store's levels file
    print(f"\ncredit levels published for the rules, {count:,} taxpayers in the register, {db.engine.dialect.name}:")
    if baseline:
        t, cpu, started = time.perf_counter(), time.process_time(), load()
        with db.read() as s:
            baseline_module(baseline, "evaluation").publish_levels(session=s, store=OUT / "levels-bench-before.duckdb")
        print(f"  baseline, evaluation.publish_levels as of {baseline}: {time.perf_counter() - t:.1f} s "
              f"(CPU {time.process_time() - cpu:.1f} s)   ({started})", flush=True)
    t, cpu, started = time.perf_counter(), time.process_time(), load()
    with db.read() as s:
        written = evaluation.publish_levels(session=s, store=levels_store)
    seconds = time.perf_counter() - t
    print(f"  evaluation.publish_levels, the whole register ({written:,} taxpayers): {seconds:.1f} s "
          f"(CPU {time.process_time() - cpu:.1f} s, every thread)   target < {TARGET_SECONDS:.0f} s at "
          f"{TARGET_TAXPAYERS:,}   ({started})", flush=True)
    if written == TARGET_TAXPAYERS:
        print(f"  measured at {TARGET_TAXPAYERS:,}: target {'met' if seconds < TARGET_SECONDS else 'NOT met'}")
    with db.write() as s:  # one repair approved: that taxpayer's level raised
        rating = s.scalar(select(CreditRating).where(CreditRating.level == "C").limit(1))
        rating.level, code = "B", rating.credit_code
    t = time.perf_counter()
    with db.read() as s:
        evaluation.publish_taxpayer(session=s, store=levels_store, credit_code=code)
    one = time.perf_counter() - t
    print(f"  evaluation.publish_taxpayer, one taxpayer's change over it (after an evaluation or a repair): {ms(one)}")
    rule = "SELECT count(*) FROM registry WHERE credit_level = 'B'"
    levels_store.unlink(missing_ok=True)
    levels_store.symlink_to(store_file.resolve())  # the synthetic registry under the bench's levels files
    try:
        with push_store.connect_store(levels_store) as conn:
            with_change = median_of(lambda: conn.execute(rule).fetchall(), runs=3)
        changes = push_store.credit_changes_path(levels_store)
        changes.rename(changes.with_suffix(".aside"))
        with push_store.connect_store(levels_store) as conn:
            without = median_of(lambda: conn.execute(rule).fetchall(), runs=3)
        changes.with_suffix(".aside").rename(changes)
    finally:
        levels_store.unlink()
    print(f"  a rule's count through the levels (credit_level = 'B'): {ms(with_change)} with the change over them, "
          f"{ms(without)} without")


def add_violators(db: Database, count: int) -> None:
    with db.write() as s:
        units = list(s.scalars(select(Unit.id).where(Unit.level == "province").order_by(Unit.id))) or \
            list(s.scalars(select(Unit.id)))
        rows = []
        for n in range(count):
            published = TODAY - timedelta(days=n * 1095 // count)
            removed = n % 10 == 0
            rows.append(dict(credit_code=f"91{n:016d}", name=f"基准失信公司{n:06d}", unit_id=units[n % len(units)],
                             case_nature="偷税", facts="虚假申报少缴税款", amount_unpaid=Decimal("1234567.89"),
                             amount_penalty=Decimal("617283.95"), published_on=published,
                             off_on=published + timedelta(days=3 * 365 + 10), removed_on=TODAY if removed else None,
                             removal_reason="paid" if removed else None, removal_note=""))
            if len(rows) == 10_000:
                s.execute(insert(Violator), rows)
                rows = []
        if rows:
            s.execute(insert(Violator), rows)


def offset_page(session, page: int):
    """The baseline: the list as it was served before keyset paging — a count and an OFFSET page."""
    return paginate(session, services.public_query(today=TODAY), page, PER_PAGE)


def paging_figures(db: Database, count: int) -> None:
    with step(f"adding {count:,} major violators (a tenth already off the list)"):
        add_violators(db, count)
    with db.read() as s:
        listed = offset_page(s, 1)
        pages = listed.pages
        cursors = {1: None}  # the keyset cursor before each page measured: the previous page's last row
        for page in (pages // 2, pages):
            cursors[page] = services.format_cursor(services.violator_cursor(offset_page(s, page - 1).items[-1]))
        print(f"\npublic list of major violators: {listed.total:,} entries on the list, {pages:,} pages of {PER_PAGE}")
        print(f"  {'page':<28} {'keyset, count ≤ 10,000 (served)':>32} {'count + OFFSET (baseline)':>28}   target")
        worst = 0.0
        for label, page in (("first", 1), ("middle", pages // 2), ("last", pages)):
            served = median_of(lambda p=page: services.public_violators(session=s, today=TODAY, after=cursors[p],
                                                                        per_page=PER_PAGE))
            before = median_of(lambda p=page: offset_page(s, p))
            check = services.public_violators(session=s, today=TODAY, after=cursors[page], per_page=PER_PAGE).items
            assert [v.id for v in check] == [v.id for v in offset_page(s, page).items], "keyset differs"
            worst = max(worst, served)
            print(f"  {label + f' (page {page:,})':<28} {ms(served):>32} {ms(before):>28}   < {PAGE_TARGET_MS:.0f} ms")
        back = services.format_cursor(services.violator_cursor(offset_page(s, pages // 2 + 1).items[0]))
        previous = median_of(lambda: services.public_violators(session=s, today=TODAY, before=back, per_page=PER_PAGE))
        worst = max(worst, previous)
        print(f"  {'middle, reached by 上一页':<28} {ms(previous):>32} {'—':>28}   < {PAGE_TARGET_MS:.0f} ms")
        search = median_of(lambda: services.public_violators(session=s, q="失信公司0999", today=TODAY,
                                                             per_page=PER_PAGE))
        old_search = median_of(lambda: paginate(s, services.public_query(q="失信公司0999", today=TODAY), 1, PER_PAGE))
        worst = max(worst, search)
        print(f"  {'name search, first page':<28} {ms(search):>32} {ms(old_search):>28}   < {PAGE_TARGET_MS:.0f} ms")
        verdict = "met" if worst * 1000 < PAGE_TARGET_MS else "NOT met"
        print(f"  slowest: {ms(worst)}   target every page < {PAGE_TARGET_MS:.0f} ms: {verdict}")
        # The officials' management page keeps numbered pages (count + OFFSET, entries off the list included).
        actor = SystemActor(username="bench")
        managed = services.list_violators(session=s, actor=actor, page=1, per_page=PER_PAGE)
        times = [median_of(lambda p=p: services.list_violators(session=s, actor=actor, page=p, per_page=PER_PAGE), runs=3)
                 for p in (1, managed.pages // 2, managed.pages)]
        print(f"  officials' /credit/violators/manage, national ({managed.total:,} entries, numbered pages): first / "
              f"middle / last {' / '.join(ms(t) for t in times)}   < {PAGE_TARGET_MS:.0f} ms")


def add_repairs(db: Database, count: int) -> None:
    """`count` applications over three years at the county units (one rating each to point at): a twentieth still
    pending (some with a due day the calendar cannot count yet), the rest decided; a tenth by the bankruptcy path."""
    with db.write() as s:
        units = list(s.scalars(select(Unit.id).where(Unit.level == "county").order_by(Unit.id))) or \
            list(s.scalars(select(Unit.id).order_by(Unit.id)))
        ratings = {}
        for n, unit_id in enumerate(units):
            rating = CreditRating(credit_code=f"92{n:016d}", name=f"基准评价{n}", year=2025, score=70.0, level="B",
                                  deductions={"未按期申报": 5.0}, unit_id=unit_id)
            s.add(rating)
            ratings[unit_id] = rating
        s.flush()
        rows = []
        for n in range(count):
            unit_id = units[n % len(units)]
            applied = TODAY - timedelta(days=(count - n) * 1095 // count)
            state = "pending" if n % 20 == 0 else ("approved" if n % 3 else "refused")
            due = None if state == "pending" and n % 200 == 0 else applied + timedelta(days=21)
            rows.append(dict(credit_code=f"93{n:016d}", name=f"基准修复申请公司{n:06d}", rating_id=ratings[unit_id].id,
                             year=2025, path="bankruptcy" if n % 10 == 0 else "correction", indicator="未按期申报",
                             points=5.0, failed_on=applied - timedelta(days=30), corrected_on=applied - timedelta(days=2),
                             correction="已补办申报", court="", ruling_number="", unit_id=unit_id, state=state,
                             applicant="bench", on_behalf=False, applied_at=datetime(applied.year, applied.month, applied.day),
                             applied_on=applied, due_on=due, proposal={}, score_before=70.0, level_before="B",
                             reason=""))
            if len(rows) == 10_000:
                s.execute(insert(CreditRepair), rows)
                rows = []
        if rows:
            s.execute(insert(CreditRepair), rows)


def old_queue_page(session, actor, page: int, *, state: str, path: str = "", q: str = "", overdue: bool = False):
    """The baseline: the queue as it was served before its two parts were read apart — one query sorted by
    “pending first” (an expression no index gives) and an OFFSET page."""
    query = repair._queue(actor, state, path, q, overdue, TODAY)
    query = query.order_by(case((CreditRepair.state == "pending", 0), else_=1), *repair.PENDING_ORDER)
    return paginate(session, query, page, REPAIR_PER_PAGE)


def repair_figures(db: Database, count: int) -> None:
    with step(f"adding {count:,} repair applications (a twentieth pending)"):
        add_repairs(db, count)
    actor = SystemActor(username="bench")  # the national view: the whole queue
    views = (("待核定 (the default)", dict(state="pending")), ("all states", dict(state="")),
             ("破产重整, all states", dict(state="", path="bankruptcy")), ("逾期未核定", dict(state="", overdue=True)),
             ("name search, all states", dict(state="", q="修复申请公司0999")))
    print(f"\nrepair queue (/credit/repairs as served: filters, pending first and soonest due), {count:,} applications, "
          f"national view, {REPAIR_PER_PAGE} a page:")
    print(f"  {'view':<28} {'rows':>8} {'first page':>12} {'middle page':>12} {'last page':>12} "
          f"{'last, before':>13}   target")
    worst = 0.0
    with db.read() as s:
        for label, filters in views:
            first = repair.list_repairs(session=s, actor=actor, today=TODAY, page=1, per_page=REPAIR_PER_PAGE, **filters)
            times = [median_of(lambda p=p: repair.list_repairs(session=s, actor=actor, today=TODAY, page=p,
                                                              per_page=REPAIR_PER_PAGE, **filters), runs=3)
                     for p in sorted({1, max(1, first.pages // 2), first.pages})]
            before = median_of(lambda f=filters, p=first.pages: old_queue_page(s, actor, p, **f), runs=3)
            worst = max(worst, *times)
            cells = [ms(t) for t in times] + ["—"] * (3 - len(times))
            print(f"  {label:<28} {first.total:>8,} {cells[0]:>12} {cells[1]:>12} {cells[2]:>12} {ms(before):>13}   "
                  f"< {PAGE_TARGET_MS:.0f} ms")
    verdict = "met" if worst * 1000 < PAGE_TARGET_MS else "NOT met"
    print(f"  slowest: {ms(worst)}   target every page < {PAGE_TARGET_MS:.0f} ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taxpayers", type=int, default=1_000_000)
    parser.add_argument("--violators", type=int, default=100_000)
    parser.add_argument("--repairs", type=int, default=200_000)
    parser.add_argument("--levels", type=int, default=1_000_000,
                        help="register entries the levels are published from (0: not measured)")
    parser.add_argument("--engine", choices=risk.ENGINES, default="duckdb",
                        help="where the risk tiers are decided (the setting credit_risk_engine)")
    parser.add_argument("--database-url", default="", help="default: a SQLite file in bench/out/")
    parser.add_argument("--skip-risk", action="store_true", help="only the list and queue pages")
    parser.add_argument("--risk-only", action="store_true", help="only the risk tiers (and the levels)")
    parser.add_argument("--levels-only", action="store_true", help="only the levels published for the rules")
    parser.add_argument("--baseline", default=BASELINE, metavar="REVISION",
                        help="the revision whose risk.compute and publish_levels run beside this one's ('': none)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="not the baseline's levels publish")
    parser.add_argument("--fresh", action="store_true", help="build the synthetic store again")
    parser.add_argument("--annual", action="store_true", help="only the annual evaluation of levels (--engine)")
    args = parser.parse_args()
    configure()
    db = fresh_database(args.database_url)
    print(f"database: {db.engine.url.render_as_string(hide_password=True)}; {load()}")
    if args.annual:
        annual_figures(db, store_of(args.taxpayers, args.fresh), args.taxpayers, args.engine,
                       "" if args.skip_baseline else ANNUAL_BASELINE)
        return
    if not args.skip_risk:
        store_file = store_of(args.taxpayers, args.fresh)
        if not args.levels_only:
            risk_figures(db, store_file, args.taxpayers, args.engine, args.baseline)
        if args.levels:
            levels_figures(db, store_file, min(args.levels, args.taxpayers), "" if args.skip_baseline else args.baseline)
    if not (args.risk_only or args.levels_only):
        paging_figures(db, args.violators)
        repair_figures(db, args.repairs)


if __name__ == "__main__":
    main()
