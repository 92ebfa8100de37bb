"""The public front door in the filing season: locust against 1 … N `chunfeng serve` processes on one database,
the season's mix — questions (/api/consult), filings (POST /api/appeals) and signed-in taxpayers' message centre
(/push/inbox) at 6 : 2 : 2 users, each as fast as it is answered — with the rate limits and ceilings off.

Figures per number of processes, beside the targets of issue 16 (on a 2-core machine, N = cores: at least 300
filings/s and 1,000 questions/s with p99 under 500 ms, nothing lost): requests/s and p50/p99 per kind, failures,
and every filing answered 201 looked for in the database afterwards. Locust itself runs on the same cores.

Run: .venv/bin/python bench/public_load.py [--processes 2] [--seconds 20] [--users 30] [--baseline REV] [--extra DIR]
With CHUNFENG_DATABASE_URL set, on that PostgreSQL database — emptied first, so its name must contain "test" or
"bench"; else a fresh SQLite file in bench/out/. The database is filled by `chunfeng demo --no-serve`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cold_start import ROOT, Server, baseline_source, fresh_database  # bench/cold_start.py
from common import configure  # bench/common.py
from sqlalchemy import func, select

from chunfeng.appeals.models import Appeal
from chunfeng.db import Database
from chunfeng.demo import DEMO_PASSWORD

TARGETS = {"file": 300, "ask": 1000}  # requests a second on 2 cores (issue 16)
P99_TARGET_MS = 500


def prepare(url: str | None, files: Path) -> str:
    url = fresh_database(url, "public-load")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CHUNFENG_DATABASE_URL": url,
           "CHUNFENG_DATA_DIR": str(files / "files"), "CHUNFENG_PUSH_STORE": str(files / "taxpayers.duckdb"),
           "CHUNFENG_AUDIT_HEAD_FILE": str(files / "audit-head.log")}
    subprocess.run([sys.executable, "-m", "chunfeng", "demo", "--no-serve"], env=env, check=True, capture_output=True)
    return url


def stored(url: str) -> set[int]:
    db = Database(url)
    with db.read() as session:
        ids = set(session.scalars(select(Appeal.id)))
        assert len(ids) == session.scalar(select(func.count(Appeal.id)))
    db.dispose()
    return ids


def run(url: str, files: Path, processes: int, args: argparse.Namespace, *, source: Path = ROOT / "src",
        extra: Path | None = None, label: str = "") -> dict[str, dict[str, str]]:
    servers = [Server(source, url, files, extra=extra) for _ in range(processes)]
    for server in servers:
        server.__enter__()
    prefix = files / f"locust-{label}{processes}"
    accepted_file = files / f"accepted-{label}{processes}.json"
    try:
        env = {**os.environ, "CHUNFENG_BENCH_HOSTS": ",".join(s.url for s in servers),
               "CHUNFENG_BENCH_ACCEPTED": str(accepted_file), "CHUNFENG_BENCH_TAXPAYER": "taxpayer",
               "CHUNFENG_BENCH_PASSWORD": DEMO_PASSWORD}
        subprocess.run([str(Path(sys.executable).with_name("locust")), "-f", str(Path(__file__).with_name(
            "public_locustfile.py")), "--headless", "-u", str(args.users), "-r", str(args.users), "-t",
            f"{args.seconds}s", "--csv", str(prefix), "--only-summary", "--loglevel", "ERROR"],
            check=True, capture_output=True, env=env)
    finally:
        for server in servers:
            server.__exit__()
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        rows = {r["Name"]: r for r in csv.DictReader(fh)}
    accepted = set(json.loads(accepted_file.read_text()))
    lost = len(accepted - stored(url))
    figures = {name: {"rps": f"{float(rows[name]['Requests/s']):.0f}", "p50": rows[name]["50%"],
                      "p99": rows[name]["99%"], "failed": rows[name]["Failure Count"]}
               for name in ("ask", "file", "inbox") if name in rows}
    figures["lost"] = {"accepted": str(len(accepted)), "lost": str(lost)}
    return figures


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="up to this many server processes")
    parser.add_argument("--seconds", type=int, default=20, help="how long locust loads each configuration")
    parser.add_argument("--users", type=int, default=30, help="locust users, each asking as fast as it is answered")
    parser.add_argument("--baseline", help="a revision measured too, at the most processes only, in the same run")
    parser.add_argument("--extra", type=Path, help="a directory of packages (httptools, uvloop: pip install --target "
                        "DIR) the servers of this checkout use")
    args = parser.parse_args()
    extra = args.extra.resolve() if args.extra else None
    with tempfile.TemporaryDirectory(prefix="chunfeng-load-") as tmp:
        files = Path(tmp)
        url = prepare(os.environ.get("CHUNFENG_DATABASE_URL"), files)
        results = {}
        if args.baseline:
            source = baseline_source(args.baseline, files / "baseline")
            results[f"baseline {args.baseline}, {args.processes}"] = run(url, files, args.processes, args,
                                                                         source=source, label="baseline-")
        results |= {f"{n}": run(url, files, n, args, extra=extra) for n in range(1, args.processes + 1)}
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nPublic front door on {engine}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {args.users} locust "
          f"users (asks : filings : message centre = 6 : 2 : 2), {args.seconds} s each")
    print(f"  targets at N = cores: filings ≥ {TARGETS['file']}/s, questions ≥ {TARGETS['ask']}/s, p99 < "
          f"{P99_TARGET_MS} ms, nothing lost")
    for configuration, figures in results.items():
        n = int(configuration.rsplit(" ", 1)[-1])
        which = configuration.rsplit(",", 1)[0] + ": " if "," in configuration else ""
        parts = []
        for name, label in (("ask", "questions"), ("file", "filings"), ("inbox", "message centre")):
            if name in figures:
                f = figures[name]
                parts.append(f"{label} {f['rps']}/s (p50 {f['p50']} ms, p99 {f['p99']} ms, {f['failed']} failed)")
        lost = figures["lost"]
        print(f"  {which}{n} process{'es' if n > 1 else ''}: " + "; ".join(parts)
              + f"; filings accepted {lost['accepted']}, missing from the database {lost['lost']}")


if __name__ == "__main__":
    main()
