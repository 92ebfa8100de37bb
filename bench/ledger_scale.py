"""The ledger at national scale: 1 + 36 + 500 municipal + 3,000 county units, all 121 measures broken down
to every unit (about 428,000 assignments), 12 monthly cycles of reports (about 5.1 million).

Figures, each printed beside its baseline or target:
- the national dashboard roll-up (lights and progress per province and per category), against the
  same roll-up done object by object through the ORM (target: at most 1 s and at least 20x faster);
- the full national ledger as xlsx, run as `chunfeng ledger export` in a child process (target: at most
  60 s, peak memory under 1 GB);
- a scan of all warnings (target: at most 10 s).

Run: .venv/bin/python bench/ledger_scale.py [--scale 0.1] [--database-url postgresql://…/chunfeng_bench]
The generated database is kept in bench/out/ and reused when its scale matches (--fresh rebuilds it).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

from common import configure, step  # bench/common.py
from sqlalchemy import func, insert, select, text

from chunfeng.db import Database
from chunfeng.ledger import warnings
from chunfeng.ledger.dashboard import rollup
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.org.access import SystemActor
from chunfeng.org.builtin import PROVINCES
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.plan import services as plan
from chunfeng.plan.models import PlanCategory, PlanItem, PlanMeasure

OUT = Path(__file__).parent / "out"
SYSTEM = SystemActor(username="bench")
TODAY = date(2022, 12, 20)
PERIODS = [f"2022-{m:02d}" for m in range(1, 13)]


def build(db: Database, scale: float) -> None:
    rng = random.Random(2022)
    db.upgrade()
    with db.write() as s:
        plan.import_notice(session=s, actor=SYSTEM, data=plan.shipped_notice())
    n_city, n_county = round(500 * scale), round(3000 * scale)
    with step(f"units: {n_city} municipal, {n_county} county"), db.write() as s:
        provinces = [find_unit(session=s, code=code) for code, _ in PROVINCES]
        cities = []
        for i in range(n_city):
            p = provinces[i % len(provinces)]
            code = f"M{i:05d}"
            cities.append(dict(code=code, name=f"基准市{i}税务局", level="municipal", parent_id=p.id, path=p.path + code + "/",
                               sort=i, builtin=False, synthetic=True))
        s.execute(insert(Unit), cities)
        city_rows = list(s.execute(select(Unit.id, Unit.path).where(Unit.level == "municipal")))
        counties = []
        for i in range(n_county):
            cid, cpath = city_rows[i % len(city_rows)]
            code = f"C{i:05d}"
            counties.append(dict(code=code, name=f"基准县{i}税务局", level="county", parent_id=cid, path=cpath + code + "/",
                                 sort=i, builtin=False, synthetic=True))
        s.execute(insert(Unit), counties)
    with db.read() as s:
        measures = list(s.execute(select(PlanMeasure.id, PlanMeasure.no, PlanCategory.no)
                                  .join(PlanItem, PlanMeasure.item_id == PlanItem.id)
                                  .join(PlanCategory, PlanItem.category_id == PlanCategory.id)))
        units = list(s.execute(select(Unit.id, Unit.path, Unit.level, Unit.code, Unit.parent_id)
                               .where(Unit.level.in_(["province", "municipal", "county"])).order_by(Unit.path)))
    province_of = {u.id: u.path.split("/")[1] for u in units}
    with step(f"assignments: {len(units) * len(measures):,}"), db.write() as s:
        ids: dict[tuple[int, int], int] = {}
        next_id = 1
        rows = []
        # Parents before children (ordered by path), so each row knows its parent's id.
        for u in units:
            for mid, mno, cat in measures:
                leaf = u.level == "county"
                status = rng.choice(["in_progress", "in_progress", "done", "not_started"]) if leaf else "in_progress"
                percent = {"done": 100.0, "not_started": 0.0}.get(status, float(rng.randint(10, 95)))
                ids[(mid, u.id)] = next_id
                rows.append(dict(id=next_id, measure_id=mid, unit_id=u.id, parent_id=ids.get((mid, u.parent_id)), role="lead",
                                 owner="", start_date=date(2022, 1, 1), deadline=date(2022, 12, 31), ongoing=False,
                                 cycle="monthly", assigned_by="bench", assigned_at=datetime(2022, 1, 1),
                                 province_code=province_of[u.id], category_no=cat, measure_no=mno, status=status,
                                 progress=percent if leaf else 0.0, last_period="2022-12", light="green", light_reason=""))
                next_id += 1
                if len(rows) == 20000:
                    s.execute(insert(Assignment), rows)
                    rows = []
        if rows:
            s.execute(insert(Assignment), rows)
    with step("roll-up of the generated tree (set-based, level by level)"), db.write() as s:
        for level in ("municipal", "province"):
            children = defaultdict(list)
            for parent, progress in s.execute(select(Assignment.parent_id, Assignment.progress)
                                                   .where(Assignment.parent_id.is_not(None))):
                children[parent].append(progress)
            holders = set(s.scalars(select(Assignment.id).join(Unit, Assignment.unit_id == Unit.id).where(Unit.level == level)))
            updates = [{"i": k, "p": round(sum(v) / len(v), 2)} for k, v in children.items() if k in holders]
            s.execute(text("UPDATE ledger_assignment SET progress = :p WHERE id = :i"), updates)
    total = next_id - 1
    with step(f"reports: {total * len(PERIODS):,} (12 monthly cycles)"):
        _insert_reports(db, total)


def _insert_reports(db: Database, total: int) -> None:
    now = datetime(2022, 12, 31)
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        if db.is_sqlite:
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-1000000")  # 1 GB: the two report indexes stay in memory while loading
            cur.execute("BEGIN")  # the connection is in autocommit mode (see chunfeng.db): one transaction, not millions
            stamp = now.isoformat(sep=" ")
            batch = []
            for aid in range(1, total + 1):
                for i, period in enumerate(PERIODS):
                    batch.append((aid, period, "in_progress", float(8 * i), "进展正常", "approved", 1, "bench",
                                  stamp, "bench", stamp, ""))
                if len(batch) >= 120000:
                    cur.executemany("INSERT INTO ledger_report (assignment_id, period, status, percent, narrative, state, "
                                    "version, submitted_by, submitted_at, reviewed_by, reviewed_at, review_comment, on_time, returned_count) "
                                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,0)", batch)
                    batch = []
            if batch:
                cur.executemany("INSERT INTO ledger_report (assignment_id, period, status, percent, narrative, state, "
                                "version, submitted_by, submitted_at, reviewed_by, reviewed_at, review_comment, on_time, returned_count) "
                                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,0)", batch)
        else:
            with cur.copy("COPY ledger_report (assignment_id, period, status, percent, narrative, state, version, "
                          "submitted_by, submitted_at, reviewed_by, reviewed_at, review_comment, on_time, returned_count) FROM STDIN") as copy:
                for aid in range(1, total + 1):
                    for i, period in enumerate(PERIODS):
                        copy.write_row((aid, period, "in_progress", float(8 * i), "进展正常", "approved", 1, "bench",
                                        now, "bench", now, "", True, 0))
        raw.commit()
    finally:
        raw.close()


def orm_rollup(db: Database) -> dict:
    """The baseline: the same national table, object by object through the ORM."""
    with db.read() as s:
        national = find_unit(session=s, code="000000")
        provinces = {u.path: u for u in s.scalars(select(Unit).where(Unit.parent_id == national.id))}
        table: dict = defaultdict(lambda: {"red": 0, "yellow": 0, "green": 0, "sum": 0.0, "held": 0})
        for a in s.scalars(select(Assignment)):
            province = provinces["/".join(a.unit.path.split("/")[:2]) + "/"]
            cell = table[(province.code, a.measure.item.category.no)]
            cell[a.light] += 1
            if a.unit_id == province.id:
                cell["sum"] += a.progress
                cell["held"] += 1
        return table


def _high_water_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 500 + 3,000 lower units (default 1)")
    parser.add_argument("--database-url", default="", help="default: a SQLite file in bench/out/")
    parser.add_argument("--fresh", action="store_true", help="rebuild the generated database")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    url = args.database_url or f"sqlite:///{OUT / f'ledger-{args.scale:g}.db'}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    db = Database(url)
    print(f"database: {db.engine.url.render_as_string(hide_password=True)}")
    exists = False
    try:
        with db.read() as s:
            exists = (s.scalar(select(func.count()).select_from(Assignment)) or 0) > 0
    except Exception:
        exists = False
    if args.fresh or not exists:
        if not db.is_sqlite:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        elif exists:
            db.dispose()
            Path(url[len("sqlite:///"):]).unlink()
            db = Database(url)
        print("building the national ledger:")
        build(db, args.scale)
    with db.read() as s:
        n_assign = s.scalar(select(func.count()).select_from(Assignment))
        n_reports = s.scalar(select(func.count()).select_from(ProgressReport))
        n_units = s.scalar(select(func.count()).select_from(Unit))
    print(f"\n{n_units:,} units, {n_assign:,} assignments, {n_reports:,} reports\n")

    rules = warnings.WarningRules()
    with db.write() as s:  # every run measures the same worst case: every light written anew
        s.execute(text("UPDATE ledger_assignment SET light = 'green', light_reason = ''"))
    start = time.perf_counter()
    with db.write() as s:
        result = warnings.scan(session=s, today=TODAY, rules=rules)
    scan_s = time.perf_counter() - start
    print(f"warning scan of {result.scanned:,} assignments: {scan_s:.2f} s   (target ≤ 10 s; "
          f"{result.counts['red']:,} red, {result.counts['yellow']:,} yellow, {result.counts['green']:,} green)")

    def fast():
        with db.read() as s:
            return rollup(session=s, actor=SYSTEM, unit=find_unit(session=s, code="000000"))

    fast_s, rows = timed(fast)
    slow_s, table = timed(lambda: orm_rollup(db), repeat=1)
    # Both ways must give the same table.
    for row in rows:
        for cat, cell in row.by_category.items():
            ref = table[(row.unit.code, cat)]
            assert (cell.red, cell.yellow, cell.green) == (ref["red"], ref["yellow"], ref["green"]), (row.unit.code, cat)
            assert abs(cell.progress - (ref["sum"] / ref["held"] if ref["held"] else 0)) < 0.06
    print(f"national dashboard roll-up: {fast_s * 1000:.0f} ms   (target ≤ 1000 ms); "
          f"object by object through the ORM: {slow_s:.1f} s → {slow_s / fast_s:.0f}x faster (target ≥ 20x)")

    out = OUT / "national-ledger.xlsx"
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "chunfeng", "ledger", "export", str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_mb = 0.0
    # VmHWM is the child's own high-water mark; getrusage(RUSAGE_CHILDREN) would also count the pages
    # this (large) process had when it forked the child.
    while child.poll() is None:
        peak_mb = max(peak_mb, _high_water_mb(child.pid))
        time.sleep(0.1)
    export_s = time.perf_counter() - start
    if child.returncode:
        sys.exit(child.stderr.read())
    print(f"national ledger xlsx ({n_assign:,} rows, {out.stat().st_size / 1e6:.0f} MB): {export_s:.1f} s, "
          f"peak memory {peak_mb:.0f} MB   (target ≤ 60 s, < 1024 MB)")
    db.dispose()


if __name__ == "__main__":
    main()
