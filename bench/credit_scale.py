"""Taxpayer credit at scale: risk tiers (measure 95) over a synthetic registry, and the public list of major
violators paged.

Figures, each printed beside its target and a baseline measured in the same run:
- evaluating every sample risk indicator for every taxpayer of the store in one DuckDB pass (`risk.evaluate`),
  rows into Python included. The issue's target is 10 million taxpayers under 30 s; this 2-core machine, shared,
  measures a smaller registry (default 1,000,000) and the 10-million figure is a linear extrapolation, printed as
  such. Beside it: the whole scheduled run (`risk.compute` at the national unit: evaluation, each taxpayer's tier
  and unit in Python, the tiers written to SQLite), so the share that is DuckDB's is visible;
- the public list of major violators (`services.public_violators`, as /credit/violators and /api/credit/violators
  use it: a count and an OFFSET page) with N entries on the list (default 100,000, a tenth of them already off it):
  the first, middle and last page and a name search, each the median of 5 (target: every page under 300 ms).
  Baseline: the same pages by keyset (WHERE (published_on, id) < the previous page's last, no count), which is what
  a change of the list's paging would buy.

Run: .venv/bin/python bench/credit_scale.py [--taxpayers 1000000] [--violators 100000] [--fresh]
The extract and the store are shared with bench/push_scale.py in bench/out/ and reused when the size matches; the
SQLite database is made afresh in bench/out/ on every run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from common import configure, step  # bench/common.py
from sqlalchemy import and_, func, insert, or_, select

from chunfeng.credit import risk, services
from chunfeng.credit.models import CreditRisk, Violator
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.org.models import Unit
from chunfeng.push import store as push_store
from chunfeng.workdays import configured_calendar

OUT = Path(__file__).parent / "out"
TODAY = date(2026, 12, 7)  # the violator list's day
RISK_DAY = date(2022, 8, 1)  # the synthetic extract's returns are those of 2022's first half: a year's window holds them
TARGET_TAXPAYERS, TARGET_SECONDS, PAGE_TARGET_MS = 10_000_000, 30.0, 300.0
PER_PAGE = 50


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def median_of(work, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def store_of(taxpayers: int, fresh: bool) -> Path:
    from chunfeng.push import services as push_services
    from chunfeng.push import store, synthetic

    extract, store_file = OUT / f"push-extract-{taxpayers}", OUT / f"push-{taxpayers}.duckdb"
    if fresh:
        shutil.rmtree(extract, ignore_errors=True)
        store_file.unlink(missing_ok=True)
    if not (extract / "registry.parquet").exists():
        shutil.rmtree(extract, ignore_errors=True)
        with step(f"generating a synthetic extract of {taxpayers:,} taxpayers (push/synthetic.py)"):
            synthetic.generate(extract, taxpayers=taxpayers, claim_rules=push_services.synthetic_claim_rules())
    if not store_file.exists():
        with step("importing it into DuckDB with every check"):
            store.import_extract(extract, store_file)
    return store_file


def fresh_database() -> Database:
    OUT.mkdir(exist_ok=True)
    path = OUT / "credit-scale.db"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    return db


def risk_figures(db: Database, store_file: Path, taxpayers: int) -> None:
    with db.read() as s:
        calendar = configured_calendar(s)
    risk.evaluate(store=store_file, calendar=calendar, today=RISK_DAY, prefix="11")  # warm the file cache
    with push_store.connect_store(store_file) as conn:  # inside DuckDB only: every flag summed, no row leaves it
        t = time.perf_counter()
        risk.create_risk_view(conn, calendar=calendar, today=RISK_DAY)
        flags = ", ".join(f"sum(i{k})" for k in range(len(risk.indicators())))
        conn.execute(f"SELECT count(*), {flags} FROM (SELECT {risk.flag_columns()} FROM risk_view AS r)").fetchall()
        in_engine = time.perf_counter() - t
    t = time.perf_counter()
    rows = risk.evaluate(store=store_file, calendar=calendar, today=RISK_DAY)
    seconds = time.perf_counter() - t
    fired = [sum(r[3 + k] for r in rows) for k in range(len(risk.indicators()))]
    extrapolated = seconds * TARGET_TAXPAYERS / len(rows)
    t = time.perf_counter()
    with db.write() as s:
        counts = risk.compute(session=s, actor=SystemActor(username="bench"), store=store_file, today=RISK_DAY)
    whole = time.perf_counter() - t
    with db.read() as s:
        written = s.scalar(select(func.count()).select_from(CreditRisk))
    print(f"\nrisk tiers (measure 95), {len(risk.indicators())} sample indicators, {len(rows):,} taxpayers:")
    print("  indicators fired: " + ", ".join(f"{i['name']} {n:,}" for (i, _), n in zip(risk.indicators(), fired, strict=True)))
    print(f"  every indicator evaluated inside DuckDB (flags summed there): {in_engine:.1f} s; EXTRAPOLATED (linear, "
          f"not measured) to {TARGET_TAXPAYERS:,}: {in_engine * TARGET_TAXPAYERS / len(rows):.0f} s")
    print(f"  risk.evaluate as compute runs it (the same, each taxpayer's row into Python): {seconds:.1f} s "
          f"({seconds / len(rows) * 1e6:.1f} µs a taxpayer)")
    print(f"  EXTRAPOLATED (linear, not measured) to {TARGET_TAXPAYERS:,}: {extrapolated:.0f} s   "
          f"target < {TARGET_SECONDS:.0f} s: {'met' if extrapolated < TARGET_SECONDS else 'NOT met'} by extrapolation")
    print(f"  baseline, the whole scheduled run (evaluation + tiers in Python + {written:,} rows written to SQLite): "
          f"{whole:.1f} s; tiers " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))


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


def keyset_page(session, after: tuple[date, int] | None) -> list[Violator]:
    """The baseline: the next page after the previous one's last (published_on, id), no count."""
    query = services.public_query(today=TODAY)
    if after is not None:
        query = query.where(or_(Violator.published_on < after[0],
                                and_(Violator.published_on == after[0], Violator.id < after[1])))
    return list(session.scalars(query.limit(PER_PAGE)))


def paging_figures(db: Database, count: int) -> None:
    with step(f"adding {count:,} major violators (a tenth already off the list)"):
        add_violators(db, count)
    with db.read() as s:
        listed = services.public_violators(session=s, today=TODAY, page=1, per_page=PER_PAGE)
        pages = listed.pages
        cursors = {}  # the keyset cursor before each page measured: the previous page's last row
        for page in (pages // 2, pages):
            before = services.public_violators(session=s, today=TODAY, page=page - 1, per_page=PER_PAGE).items[-1]
            cursors[page] = (before.published_on, before.id)
        print(f"\npublic list of major violators: {listed.total:,} entries on the list, {pages:,} pages of {PER_PAGE}")
        print(f"  {'page':<28} {'offset + count (as served)':>28} {'keyset, no count (baseline)':>28}   target")
        worst = 0.0
        for label, page in (("first", 1), ("middle", pages // 2), ("last", pages)):
            served = median_of(lambda p=page: services.public_violators(session=s, today=TODAY, page=p, per_page=PER_PAGE))
            keyset = median_of(lambda p=page: keyset_page(s, cursors.get(p)))
            check = services.public_violators(session=s, today=TODAY, page=page, per_page=PER_PAGE).items
            assert [v.id for v in check] == [v.id for v in keyset_page(s, cursors.get(page))], "keyset differs"
            worst = max(worst, served)
            print(f"  {label + f' (page {page:,})':<28} {ms(served):>28} {ms(keyset):>28}   < {PAGE_TARGET_MS:.0f} ms")
        search = median_of(lambda: services.public_violators(session=s, q="失信公司0999", today=TODAY, page=1,
                                                             per_page=PER_PAGE))
        worst = max(worst, search)
        print(f"  {'name search, first page':<28} {ms(search):>28} {'—':>28}   < {PAGE_TARGET_MS:.0f} ms")
        verdict = "met" if worst * 1000 < PAGE_TARGET_MS else "NOT met"
        print(f"  slowest: {ms(worst)}   target every page < {PAGE_TARGET_MS:.0f} ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taxpayers", type=int, default=1_000_000)
    parser.add_argument("--violators", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="generate and import the extract again")
    args = parser.parse_args()
    configure()
    store_file = store_of(args.taxpayers, args.fresh)
    db = fresh_database()
    risk_figures(db, store_file, args.taxpayers)
    paging_figures(db, args.violators)


if __name__ == "__main__":
    main()
