"""Filings through the audit chain's lock: one commit each, flushed under the lock (`Database.write`, as before),
against `Database.write_grouped` (issue 16: on PostgreSQL committed without waiting for the disk, the lock released
at once, then answered after a flush shared with the filings of the moment; on SQLite an ordinary write), with the
same threads on the same database in one run.

Each filing is the public intake's write as `POST /api/appeals` does it — the item, its measure links, its event and
its audit entry, which takes the chain's lock until the commit is flushed — classified before, outside the
transaction, as the route does. No HTTP and no other load: what the database and the lock allow, not the web.
Printed per mode: filings a second, p50/p99 of a filing's wait, commits, and whether the audit chain verifies.

Run: .venv/bin/python bench/group_commit.py [--threads 32] [--seconds 10]
With CHUNFENG_DATABASE_URL set, on that PostgreSQL database — emptied first, so its name must contain "test" or
"bench"; else a fresh SQLite file in bench/out/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cold_start import fresh_database  # bench/cold_start.py
from common import configure  # bench/common.py
from sqlalchemy import event

from chunfeng.appeals import intake
from chunfeng.db import Database
from chunfeng.org import audit
from chunfeng.org.access import SystemActor
from chunfeng.plan import services as plan

TARGET = 300  # filings a second on the 2-core machine (issue 16)
COMPLAINTS = ["出口退税申报后很久没有到账,希望加快", "办税服务厅排队时间太长,窗口开得太少", "电子税务局申报期总是提示系统繁忙"]


def run(db: Database, grouped: bool, threads: int, seconds: float) -> dict:
    with db.read() as session:
        classified = intake.classify(session, COMPLAINTS[0])
    waits: list[float] = []
    commits = [0]

    def counted(_conn) -> None:
        commits[0] += 1
    event.listen(db.engine, "commit", counted)
    stop = time.monotonic() + seconds

    def filer(k: int) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            submission = intake.Submission(kind="complaint", text=f"{COMPLAINTS[n % 3]}(#{k}-{n})", channel="api",
                                           phone=f"139{k:04d}{n:04d}")

            def work(session, submission=submission):
                return intake.submit(session=session, submission=submission, classified=classified)[0].id

            began = time.perf_counter()
            if grouped:
                db.write_grouped(work)
            else:
                with db.write() as session:
                    work(session)
            waits.append(time.perf_counter() - began)

    began = time.monotonic()
    pool = [threading.Thread(target=filer, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - began
    event.remove(db.engine, "commit", counted)
    with db.read() as session:
        report = audit.verify(session)
        ok = report.ok or report.reason
    waits.sort()
    return {"rate": len(waits) / elapsed, "p50": statistics.median(waits) * 1000,
            "p99": waits[int(len(waits) * 0.99) - 1] * 1000, "filings": len(waits), "commits": commits[0], "ok": ok}


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=32, help="filings in flight at once")
    parser.add_argument("--seconds", type=float, default=10, help="how long each mode runs")
    args = parser.parse_args()
    audit.configure(Path(tempfile.mkdtemp(prefix="chunfeng-group-")) / "audit-head.log")  # this database's own head
    url = fresh_database(os.environ.get("CHUNFENG_DATABASE_URL"), "group-commit")
    db = Database(url)
    db.upgrade()
    with db.write() as session:
        plan.import_notice(session=session, actor=SystemActor(username="bench"), data=plan.shipped_notice(),
                           source_name="bench")
    load = os.getloadavg()[0]
    results = {grouped: run(db, grouped, args.threads, args.seconds) for grouped in (False, True)}
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nFilings through the audit chain's lock on {engine}, {args.threads} threads, {args.seconds:g} s each, "
          f"load {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (target {TARGET}/s on 2 cores)")
    for grouped, r in results.items():
        label = "write_grouped (now)" if grouped else "one commit each (before)"
        print(f"  {label:<26} {r['rate']:>6.0f} filings/s, p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, "
              f"{r['filings']} filings in {r['commits']} commits; audit chain verifies: {r['ok']}")
    db.dispose()


if __name__ == "__main__":
    main()
