"""A sample drawn from an uploaded list at scale (issue 18): a list of N rows (default 200,000: a province's visitors
to its service halls over a year) with three stratum columns (规模 × 行业 × 办税服务厅: 3 × 20 × 10 strata), a mobile
number and a name each, read and checked (`list_sampling.parse_list`, the one tabular reader), previewed (units in
the subtree, strata, proportional quotas) and drawn (a sample of 2,000 with its strata, members and their contacts
written) — and, in the same run, a list of N/10 rows as the baseline.

Issue 18 sets no figure for this; the budget printed is this bench's own: the whole of it (read, preview, draw) for
200,000 rows within 60 s, the time one page's task may reasonably take. The lists are written as CSV (the usual
export of a hall's queueing system); `--xlsx` writes them as workbooks instead (openpyxl reads those more slowly).

Run: .venv/bin/python bench/survey_list_sample.py [--rows 200000] [--size 2000] [--xlsx]
The SQLite database and the lists are generated afresh in bench/out/ on every run.
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

from common import OUT, configure, step, survey_database  # bench/common.py

from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.survey import list_sampling
from chunfeng.tabular import TableLimits, write_csv
from chunfeng.xlsx import write_table

ACTOR = SystemActor(username="bench", unit_code="110000")
BUDGET_S = 60.0
SIZES = ["小型", "中型", "大型"]
INDUSTRIES = [chr(ord("A") + i) for i in range(20)]
HALLS = [f"第{i + 1}办税服务厅" for i in range(10)]
HEADERS = ["纳税人识别号", "主管单位代码", "名称", "手机号码", "规模", "行业", "办税服务厅"]


def write_list(n: int, *, xlsx: bool, seed: int) -> Path:
    rnd = random.Random(seed)
    rows = [[f"91110000MA{i:08d}", "110000", f"企业{i}", f"139{i:08d}", rnd.choice(SIZES), rnd.choice(INDUSTRIES),
             rnd.choice(HALLS)] for i in range(n)]
    path = OUT / f"survey-list-{n}.{'xlsx' if xlsx else 'csv'}"
    if xlsx:
        return write_table(path, sheet="名单", headers=HEADERS, rows=rows)
    return write_csv(path, headers=HEADERS, rows=rows)


def run(db: Database, survey_id: int, path: Path, size: int, limits: TableLimits) -> tuple[list[float], int]:
    """(seconds to read, preview, draw), members drawn."""
    with step(f"read and check {path.name}") as read:
        listing = list_sampling.parse_list(path, limits=limits)
    choice = dict(dimensions=[], allocation="proportional", size=size, seed=20261207)
    with step("preview") as preview, db.read() as s:
        p = list_sampling.preview(session=s, actor=ACTOR, survey_id=survey_id, listing=listing, **choice)
    with step(f"draw {p.total:,} from {len(p.strata)} strata") as draw, db.write() as s:
        sample = list_sampling.draw(session=s, actor=ACTOR, survey_id=survey_id, listing=listing, **choice)
        drawn = sample.drawn
    return [read.seconds, preview.seconds, draw.seconds], drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--xlsx", action="store_true", help="write the lists as xlsx instead of CSV")
    args = parser.parse_args()
    configure()
    db, survey_id = survey_database("survey-list-sample", actor=ACTOR, title="办税服务厅来访纳税人调查",
                                    question="您对办税服务厅的满意程度")
    limits = TableLimits(max_rows=args.rows, max_file_mb=200)  # CHUNFENG_IMPORT_MAX_ROWS raised for such a list
    print(f"A sample from a list on SQLite, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    small_path, big_path = (write_list(n, xlsx=args.xlsx, seed=n) for n in (args.rows // 10, args.rows))
    small, _ = run(db, survey_id, small_path, args.size, limits)
    big, drawn = run(db, survey_id, big_path, args.size, limits)
    print(f"\n{'part':<24} {args.rows // 10:>10,} {args.rows:>10,}")
    for label, a, b in zip(("read and check", "preview", "draw and write"), small, big, strict=True):
        print(f"{label:<24} {a:>9.2f}s {b:>9.2f}s")
    total = sum(big)
    print(f"\n{args.rows:,} rows read, previewed and {drawn:,} drawn in {total:.1f} s (budget ≤ {BUDGET_S:.0f} s: "
          f"{'met' if total <= BUDGET_S else 'NOT met'}); baseline {args.rows // 10:,} rows: {sum(small):.1f} s; "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
