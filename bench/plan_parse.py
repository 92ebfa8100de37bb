"""How long the plan takes to parse and to import, beside the cost of only decoding the file.

Run: .venv/bin/python bench/plan_parse.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import configure  # bench/common.py

from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.plan import services
from chunfeng.plan.parser import parse_notice
from chunfeng.plan.text import decode_notice, notice_lines

DATA = Path(__file__).parent.parent / "tests" / "plan" / "data"


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    configure()
    inputs = {"scraped text": services.shipped_notice(),
              "clean text": (DATA / "notice_clean.txt").read_bytes(),
              "HTML page": (DATA / "notice.html").read_bytes()}
    print(f"{'input':<14}{'decode+split (baseline)':>26}{'full parse + checks':>22}")
    for name, data in inputs.items():
        base = timed(lambda: notice_lines(decode_notice(data)), 50)
        full = timed(lambda: parse_notice(data), 50)
        print(f"{name:<14}{base:>23.2f} ms{full:>19.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.upgrade()

        def store() -> None:
            with db.write() as session:
                services.import_notice(session=session, actor=SystemActor(), data=inputs["scraped text"],
                                       replace=True)

        print(f"import into SQLite (parse, store 121 measures, audit): {timed(store, 10):.1f} ms (median of 10)")
        db.dispose()


if __name__ == "__main__":
    main()
