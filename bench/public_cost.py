"""What one public request costs the server: CPU milliseconds of the `chunfeng serve` process, and of the PostgreSQL
backends serving it, per question (GET /api/consult, the /ask page) and per filing (POST /api/appeals, the public
form) — for a baseline revision and this checkout, in the same run on the
same database, so that the two are compared on one machine state.

CPU time, not wall time: what a busy shared machine does to the latency it leaves out, and throughput on N cores
is about N divided by the cost. Requests are sent one at a time (the client's own CPU is not counted) with the
per-address limits off and the endpoints' ceilings on, as a site runs them (one client address would exceed its
own limit; the ceilings are what every public request counts against).

Run: .venv/bin/python bench/public_cost.py [--baseline REV] [--requests 300] [--extra DIR] [--survey]
--survey: the survey answer page (GET /s/{link}) and an answer (POST /api/s/{link}) on the demo's open link
instead (issue 18).
With CHUNFENG_DATABASE_URL set, on that PostgreSQL database — emptied first, so its name must contain "test" or
"bench"; else a fresh SQLite file in bench/out/. The database is filled by `chunfeng demo --no-serve`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from pathlib import Path

import httpx
from cold_start import ROOT, Server, baseline_source  # bench/cold_start.py
from common import configure  # bench/common.py
from public_load import TARGETS, prepare  # bench/public_load.py
from sqlalchemy import select, text

from chunfeng.db import Database
from chunfeng.survey.models import Survey

BASELINE = "10ff8fe"  # before issue 16's per-request work
CORES = 2
QUESTIONS = ["个税汇算什么时候办", "小规模纳税人增值税征收率是多少", "出口退税多久能到账", "发票丢了怎么办",
             "个人所得税专项附加扣除有哪些", "怎么开具完税证明", "春风行动承诺出口退税要多少个工作日", "个体户怎么申报经营所得"]
COMPLAINTS = ["出口退税申报后很久没有到账,希望加快", "办税服务厅排队时间太长,窗口开得太少", "电子税务局申报期总是提示系统繁忙",
              "数电发票额度不够用,怎么申请调整", "12366热线一直占线打不进去", "建议周末开放办税服务厅"]
REGIONS = ["110101", "310104", "440300", "330106", "320102", "510104", ""]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system time of these processes, every thread included (what /proc says)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a backend that ended: its time is lost to the figure (rare; pools keep them)
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


class Kinds:
    """The requests, each sent once by `send(kind, n)` to one server."""

    def __init__(self, url: str, link: str = ""):
        self.client = httpx.Client(base_url=url, timeout=60)
        page = self.client.get("/appeals/new").text  # the form's CSRF token, bound to this client's cookie
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        self.link = link  # the demo's published questionnaire's open link
        self.questions = self.client.get(f"/api/s/{link}").json()["questions"] if link else []

    def send(self, kind: str, n: int) -> None:
        if kind == "survey page":
            response = self.client.get(f"/s/{self.link}")
            expected = 200
        elif kind == "survey answer":  # as bench/survey_locustfile.py answers, each question within its choices
            answers = {q["code"]: ([q["choices"][n % len(q["choices"])]] if q["kind"] == "multi" else
                                   q["choices"][n % len(q["choices"])]) if q["choices"] else "希望延长服务时间"
                       for q in self.questions}
            response = self.client.post(f"/api/s/{self.link}", json={"answers": answers})
            expected = 201
        elif kind == "/healthz":
            response = self.client.get("/healthz")
            expected = 200
        elif kind == "ask (API)":
            response = self.client.get("/api/consult", params={"q": QUESTIONS[n % len(QUESTIONS)]})
            expected = 200
        elif kind == "ask (page)":
            response = self.client.get("/ask", params={"q": QUESTIONS[n % len(QUESTIONS)]})
            expected = 200
        elif kind == "filing (API)":
            response = self.client.post("/api/appeals", json=self._filing(n))
            expected = 201
        else:
            response = self.client.post("/appeals/new", data=self._filing(n) | {"csrf_token": self.token},
                                        follow_redirects=False)
            expected = 303
        assert response.status_code == expected, f"{kind}: {response.status_code} {response.text[:300]}"

    @staticmethod
    def _filing(n: int) -> dict:
        return {"kind": "complaint", "text": f"{COMPLAINTS[n % len(COMPLAINTS)]}(#{n})",
                "region": REGIONS[n % len(REGIONS)], "phone": f"139{n:08d}"}


# /healthz: the floor every request pays (HTTP parsing, the middlewares, the access log), next to the real ones.
KINDS = ("/healthz", "ask (API)", "ask (page)", "filing (API)", "filing (form)")
# --survey: a respondent's round on the questionnaire's open link (issue 18), one request at a time (no answers
# waiting to share a commit, as they do at 50 respondents).
SURVEY_KINDS = ("/healthz", "survey page", "survey answer")


def backends(db: Database, name: str) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> "
                                      "pg_backend_pid()"), {"name": name}))


def measure(source: Path, url: str, files: Path, requests: int, extra: Path | None = None, kinds_measured=KINDS
            ) -> dict[str, tuple[float, float]]:
    """Per kind: (server CPU ms, PostgreSQL backends' CPU ms) a request."""
    db = Database(url) if url.startswith("postgresql") else None
    name = db.engine.url.database if db else ""
    figures = {}
    server = Server(source, url, files, extra=extra)
    server.env.pop("CHUNFENG_RATE_CEILINGS")  # the site's ceilings, counted; the per-address limits stay off
    with server:
        kinds = Kinds(server.url, open_link(url) if kinds_measured == SURVEY_KINDS else "")
        for kind in kinds_measured:
            for n in range(20):  # warm: connections opened, caches filled
                kinds.send(kind, n)
            pids = backends(db, name) if db else []
            before, before_db = cpu_seconds([server.process.pid]), cpu_seconds(pids)
            for n in range(20, 20 + requests):
                kinds.send(kind, n)
            pids_after = backends(db, name) if db else []
            spent = cpu_seconds([server.process.pid]) - before
            spent_db = cpu_seconds(pids_after) - before_db if pids_after == pids else cpu_seconds(pids) - before_db
            figures[kind] = (spent / requests * 1000, spent_db / requests * 1000)
        kinds.client.close()
    if db:
        db.dispose()
    return figures


def open_link(url: str) -> str:
    db = Database(url)
    with db.read() as session:
        link = session.scalar(select(Survey.link).where(Survey.state == "published", Survey.link.is_not(None)))
    db.dispose()
    return link


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help=f"the revision measured as the baseline (default {BASELINE})")
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind measured (default 300)")
    parser.add_argument("--extra", type=Path, help="a directory of packages (httptools, uvloop: pip install --target "
                        "DIR) this checkout is measured with too, beside without")
    parser.add_argument("--survey", action="store_true", help="the survey answer page and an answer (issue 18) "
                        "instead of the questions and filings")
    args = parser.parse_args()
    kinds = SURVEY_KINDS if args.survey else KINDS
    with tempfile.TemporaryDirectory(prefix="chunfeng-cost-") as tmp:
        tmp = Path(tmp)
        url = prepare(os.environ.get("CHUNFENG_DATABASE_URL"), tmp)
        load_before = os.getloadavg()[0]
        before = measure(baseline_source(args.baseline, tmp / "baseline"), url, tmp, args.requests, kinds_measured=kinds)
        now = measure(ROOT / "src", url, tmp, args.requests, kinds_measured=kinds)
        fast = (measure(ROOT / "src", url, tmp, args.requests, extra=args.extra.resolve(), kinds_measured=kinds)
                if args.extra else None)
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    print(f"\nCost of one public request on {engine}, {os.cpu_count()} cores, load {load_before:.1f} at the start and "
          f"{os.getloadavg()[0]:.1f} at the end; {args.requests} of each, one at a time, ceilings counted")
    print("  CPU ms a request: the server process (+ its PostgreSQL backends)")
    fast_head = f" {'now + ' + args.extra.name:>22}" if fast else ""
    print(f"  {'request':<15} {'baseline ' + args.baseline:>22} {'now ' + revision:>22}{fast_head}   "
          "at the last cost, 2 cores serve")
    for kind in kinds:
        b, n = before[kind], now[kind]
        f = fast[kind] if fast else None
        last = f or n
        target = (f"target {TARGETS['file'] if kind.startswith('filing') else TARGETS['ask']:,}/s" if not args.survey
                  else "target: a page p99 < 200 ms at 50 respondents, bench/survey_load.py")
        print(f"  {kind:<15} {b[0]:>10.2f} (+{b[1]:.2f}) ms {n[0]:>10.2f} (+{n[1]:.2f}) ms"
              + (f" {f[0]:>10.2f} (+{f[1]:.2f}) ms" if f else "")
              + f"   {CORES * 1000 / (last[0] + last[1]):,.0f}/s alone ({target})")


if __name__ == "__main__":
    main()
