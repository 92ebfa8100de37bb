"""The public answer page under load: locust's respondents on a published questionnaire's open link against one
`chunfeng serve` on SQLite (the demo's survey), each opening the page and answering as fast as it is answered, with
the rate limits and ceilings off.

Figures beside the target of issue 18 (p99 of the answer page under 200 ms at 50 concurrent respondents, nothing
lost) and the baseline of the same run (5 respondents): requests/s and p50/p99 of the page and of the answers,
failures, and every answer accepted (201) looked for in the database afterwards. With --think, also the same
respondents pausing about that long between requests (people read a page before they answer it): flat out, 50
users are a closed loop whose latency is users ÷ throughput, whatever the page costs. Beside each, the page's p99
without the first 2 s (all respondents arrive in the first second). With --baseline REV, the
50-respondent runs also against the server as of that revision (git archive), on the same database, in the same run.

Run: .venv/bin/python bench/survey_load.py [--users 50] [--seconds 30] [--think 2] [--baseline REV]
A fresh SQLite file in bench/out/ (or CHUNFENG_DATABASE_URL, emptied: its name must hold "test" or "bench"), filled
by `chunfeng demo --no-serve`.
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

from cold_start import Server, baseline_source  # bench/cold_start.py
from common import configure  # bench/common.py
from public_load import prepare  # bench/public_load.py
from sqlalchemy import func, select

from chunfeng.db import Database
from chunfeng.survey.models import Survey, SurveyResponse

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 200
# locust starts every respondent in the same second: the paced runs' p99 (their 7 slowest pages) falls in that
# burst. Shown beside it, never instead: the page's p99 once they are all in.
START_SECONDS = 2


def run(url: str, files: Path, link: str, users: int, seconds: int, think: float = 0, source: Path = ROOT / "src",
        label: str = "") -> dict:
    prefix = files / f"survey-{label}{users}-{think}"
    accepted_file = files / f"accepted-{label}{users}-{think}.json"
    with Server(source, url, files) as server:
        env = {**os.environ, "CHUNFENG_BENCH_LINK": link, "CHUNFENG_BENCH_ACCEPTED": str(accepted_file),
               "CHUNFENG_BENCH_THINK": str(think)}
        subprocess.run([str(Path(sys.executable).with_name("locust")), "-f", str(Path(__file__).with_name(
            "survey_locustfile.py")), "--headless", "-H", server.url, "-u", str(users), "-r", str(users), "-t",
            f"{seconds}s", "--csv", str(prefix), "--only-summary", "--loglevel", "ERROR"],
            check=True, capture_output=True, env=env)
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        rows = {r["Name"]: r for r in csv.DictReader(fh)}
    accepted = set(json.loads(accepted_file.read_text()))
    timed = json.loads(Path(f"{accepted_file}.timed").read_text())
    late = sorted(ms for at, name, ms in timed if name == "page" and at > START_SECONDS)
    db = Database(url)
    with db.read() as session:
        stored = set(session.scalars(select(SurveyResponse.id).where(SurveyResponse.id.in_(accepted)))) if accepted else set()
        total = session.scalar(select(func.count()).select_from(SurveyResponse))
    db.dispose()
    return {"rows": rows, "accepted": len(accepted), "lost": len(accepted - stored), "total": total,
            "late_p99": late[int(len(late) * 0.99)] if late else None}


def line(label: str, f: dict) -> str:
    parts = [f"{name} {float(f['rows'][name]['Requests/s']):.0f}/s (p50 {f['rows'][name]['50%']} ms, p99 "
             f"{f['rows'][name]['99%']} ms, {f['rows'][name]['Failure Count']} failed)"
             for name in ("page", "answer") if name in f["rows"]]
    late = f" (pages after the first {START_SECONDS} s: p99 {f['late_p99']:.0f} ms)" if f["late_p99"] is not None else ""
    return (f"  {label}: " + "; ".join(parts) + f"; answers accepted {f['accepted']}, missing from the database "
            f"{f['lost']}{late}")


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--think", type=float, default=0, help="also a run where each respondent waits about this "
                        "many seconds between requests (a person reading the page), beside the flat-out runs")
    parser.add_argument("--baseline", help="a revision whose server is measured too at --users, in the same run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chunfeng-survey-load-") as tmp:
        files = Path(tmp)
        url = prepare(os.environ.get("CHUNFENG_DATABASE_URL"), files)
        db = Database(url)
        with db.read() as session:
            link = session.scalar(select(Survey.link).where(Survey.state == "published").order_by(Survey.id))
        db.dispose()
        before = {}
        if args.baseline:
            source = baseline_source(args.baseline, files / "baseline")
            before["loaded"] = run(url, files, link, args.users, args.seconds, source=source, label="before")
            if args.think:
                before["paced"] = run(url, files, link, args.users, args.seconds, args.think, source=source,
                                      label="before")
        baseline = run(url, files, link, 5, args.seconds)
        loaded = run(url, files, link, args.users, args.seconds)
        paced = run(url, files, link, args.users, args.seconds, args.think) if args.think else None
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nPublic answer page on {engine}, one server process, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, {args.seconds} s each   target: page p99 < {P99_TARGET_MS} ms at 50 respondents, "
          "nothing lost")
    print(line("baseline, 5 respondents", baseline))
    if before:
        print(line(f"{args.baseline}, {args.users} respondents, each as fast as it is answered", before["loaded"]))
    print(line(f"{args.users} respondents, each as fast as it is answered", loaded))
    if paced:
        print(line(f"{args.users} respondents, each waiting about {args.think:g} s between requests", paced))
    if "paced" in before:
        print(line(f"{args.baseline}, {args.users} respondents, each waiting about {args.think:g} s between requests",
                   before["paced"]))


if __name__ == "__main__":
    main()
