"""The public answer page under load: locust's respondents on a published questionnaire's open link against
`chunfeng serve` on SQLite (the demo's survey; one process, and two sharing the file), each opening the page and
answering, with the rate limits and ceilings off.

Figures beside the target of issue 18 (p99 of the answer page under 200 ms at 50 concurrent respondents, nothing
lost), for every run twice: the steady state — requests started once the last respondent has arrived, after
locust's spawning is complete (where its --reset-stats would reset the figures) — beside the target, and the whole
run, arrivals included, beside it. Each: requests/s and p50/p99 of the page and of the answers, failures, and every
answer accepted (201) looked for in the database afterwards. Respondents arrive one by one, --spawn-rate a second
(10: fifty over five seconds; a survey's respondents open their link when they read the message, not in the same
millisecond; locust itself starts a second's users together, so each waits a random part of that second first).
Flat out, 50 users are a closed loop whose latency is users ÷ throughput whatever the page costs; with --think,
also the same respondents pausing about that long between requests (people read a page before they answer it).
With --baseline REV, the one-process runs also against the server as of that revision (git archive), on the same
database, in the same run.

Run: .venv/bin/python bench/survey_load.py [--users 50] [--seconds 30] [--think 2] [--spawn-rate 10]
     [--processes 1,2] [--baseline REV]
A fresh SQLite file in bench/out/ (or CHUNFENG_DATABASE_URL, emptied: its name must hold "test" or "bench"), filled
by `chunfeng demo --no-serve`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from cold_start import Server, baseline_source  # bench/cold_start.py
from common import configure  # bench/common.py
from public_load import prepare  # bench/public_load.py
from sqlalchemy import select

from chunfeng.db import Database
from chunfeng.survey.models import Survey, SurveyResponse

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 200


def run(url: str, files: Path, link: str, users: int, seconds: int, spawn_rate: float, *, think: float = 0,
        processes: int = 1, source: Path = ROOT / "src", label: str = "") -> dict:
    name = f"survey-{label}{users}-{processes}-{think}"
    record_file = files / f"{name}.json"
    with ExitStack() as stack:
        servers = [stack.enter_context(Server(source, url, files)) for _ in range(processes)]
        env = {**os.environ, "CHUNFENG_BENCH_LINK": link, "CHUNFENG_BENCH_RECORD": str(record_file),
               "CHUNFENG_BENCH_THINK": str(think), "CHUNFENG_BENCH_HOSTS": ",".join(s.url for s in servers),
               # locust starts floor(rate) users every floor(rate)/rate s; each spreads its start over that time
               "CHUNFENG_BENCH_SPREAD": str(max(1, math.floor(spawn_rate)) / spawn_rate)}
        subprocess.run([str(Path(sys.executable).with_name("locust")), "-f", str(Path(__file__).with_name(
            "survey_locustfile.py")), "--headless", "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s",
            "--only-summary", "--loglevel", "ERROR"], check=True, capture_output=True, env=env)
    record = json.loads(record_file.read_text())
    accepted = [i for _, i in record["accepted"]]
    db = Database(url)
    with db.read() as session:
        stored = set(session.scalars(select(SurveyResponse.id).where(SurveyResponse.id.in_(accepted))))
    db.dispose()
    spawned = max(record["arrived"], default=float("inf"))
    requests = [(end - ms / 1000, end, name, ms, failed) for end, name, ms, failed in record["requests"]]
    steady = [r for r in requests if r[0] >= spawned]
    return {"whole": figures(requests, record["accepted"], stored, -1.0),
            "steady": figures(steady, record["accepted"], stored, spawned), "spawned": spawned}


def figures(requests: list, accepted: list, stored: set[int], since: float) -> dict:
    """Requests/s, p50 and p99 per request name, failures, and the answers accepted (ended after `since`) and
    found in the database, over `requests` (start, end, name, ms, failed)."""
    if not requests:
        return {}
    span = max(r[1] for r in requests) - (since if since >= 0 else min(r[0] for r in requests))
    out = {"failed": sum(r[4] for r in requests)}
    for name in ("page", "answer"):
        ms = sorted(r[3] for r in requests if r[2] == name)
        if ms:
            out[name] = {"rps": len(ms) / span, "p50": _rank(ms, 0.50), "p99": _rank(ms, 0.99)}
    ids = {i for at, i in accepted if at >= since}
    out["accepted"], out["stored"] = len(ids), len(ids & stored)
    return out


def _rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(len(ordered) * q) - 1)]


def line(f: dict) -> str:
    if not f:
        return "no request in this window"
    parts = [f"{name} {f[name]['rps']:.0f}/s, p50 {f[name]['p50']:.0f} ms, p99 {f[name]['p99']:.0f} ms"
             for name in ("page", "answer") if name in f]
    return "; ".join(parts) + f"; {f['failed']} failed; answers accepted {f['accepted']:,}, stored {f['stored']:,}"


def report(label: str, result: dict) -> None:
    steady = result["steady"]
    verdict = ""
    if "page" in steady:
        met = steady["page"]["p99"] < P99_TARGET_MS and steady["accepted"] == steady["stored"]
        verdict = f"   [target page p99 < {P99_TARGET_MS} ms, nothing lost: {'met' if met else 'NOT met'}]"
    print(f"  {label}")
    print(f"    steady state (from {result['spawned']:.1f} s, all arrived): {line(steady)}{verdict}")
    print(f"    whole run (arrivals included):        {line(result['whole'])}")


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--think", type=float, default=0, help="also runs where each respondent waits about this "
                        "many seconds between requests (a person reading the page), beside the flat-out runs")
    parser.add_argument("--spawn-rate", type=float, default=10, help="respondents arriving a second")
    parser.add_argument("--processes", default="1,2", help="server processes of the runs, comma-separated")
    parser.add_argument("--small", type=int, default=5, help="respondents of the small run (0: none)")
    parser.add_argument("--baseline", help="a revision whose server is measured too (one process), in the same run")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    paces = [0.0] + ([args.think] if args.think else [])
    results: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="chunfeng-survey-load-") as tmp:
        files = Path(tmp)
        url = prepare(os.environ.get("CHUNFENG_DATABASE_URL"), files)
        db = Database(url)
        with db.read() as session:
            link = session.scalar(select(Survey.link).where(Survey.state == "published").order_by(Survey.id))
        db.dispose()
        common = (url, files, link)
        pace = {0.0: "each as fast as it is answered"}
        if args.think:
            pace[args.think] = f"each waiting about {args.think:g} s between requests"
        if args.baseline:
            source = baseline_source(args.baseline, files / "baseline")
            for think in paces:
                results.append((f"{args.baseline}: {args.users} respondents, 1 process, {pace[think]}",
                                run(*common, args.users, args.seconds, args.spawn_rate, think=think, source=source,
                                    label="before")))
        if args.small:
            results.append((f"{args.small} respondents, 1 process, {pace[0.0]}",
                            run(*common, args.small, args.seconds, args.spawn_rate)))
        for processes in counts:
            for think in paces:
                results.append((f"{args.users} respondents, {processes} process{'es' if processes > 1 else ''}, "
                                f"{pace[think]}", run(*common, args.users, args.seconds, args.spawn_rate,
                                                       think=think, processes=processes)))
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nPublic answer page on {engine}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {args.seconds} s a "
          f"run, respondents arriving {args.spawn_rate:g} a second   target: page p99 < {P99_TARGET_MS} ms at "
          f"{args.users} concurrent respondents, nothing lost")
    for label, result in results:
        report(label, result)


if __name__ == "__main__":
    main()
