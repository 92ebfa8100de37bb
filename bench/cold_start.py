"""Cold start: the first requests after `chunfeng serve` starts, with the indexes built by the requests themselves
(the baseline: this repository's source as of LAZY, the last revision that did) and built once at start-up (this
checkout), both measured in this run on the same database.

For each, a fresh `chunfeng serve` three times, each time waited for until /healthz answers 200 (as a load balancer
does; the baseline answers at once, this checkout once its indexes are in):
- the first question (GET /api/consult) and the first filing (POST /api/appeals), one at a time, beside the median
  of the next 20 of each (the "hundredth": warm);
- 20 filings at once (target: each answered within 3 s, issue 16);
- 20 questions at once (likewise).

Run: .venv/bin/python bench/cold_start.py [--baseline REV] [--burst 20]
With CHUNFENG_DATABASE_URL set, on that PostgreSQL database — emptied first, so its name must contain "test" or
"bench"; else a fresh SQLite file in bench/out/. The notice and the shipped starter knowledge base are loaded, as
on a site.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import httpx
from common import configure  # bench/common.py
from sqlalchemy import text

from chunfeng.consult import transfer
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.plan import services as plan

OUT = Path(__file__).parent / "out"
ROOT = Path(__file__).resolve().parent.parent
LAZY = "f7f5a89"  # the last revision whose first requests built the indexes (issue 16 changed that)
TARGET_SECONDS = 3.0
QUESTIONS = ["个税汇算什么时候办", "小规模纳税人增值税征收率是多少", "出口退税多久能到账", "发票丢了怎么办",
             "春风行动承诺出口退税要多少个工作日", "个人所得税专项附加扣除有哪些", "怎么开具完税证明"]
COMPLAINTS = ["办税服务厅排队时间太长,窗口开得太少", "出口退税申报后很久没有到账,希望加快", "电子税务局申报期总是提示系统繁忙",
              "12366热线一直占线打不进去", "建议周末开放办税服务厅", "数电发票额度不够用,怎么申请调整"]


def fresh_database(url: str | None, name: str) -> str:
    """`url` emptied (PostgreSQL: only a database named for tests or benchmarks), or a new SQLite file `name` in
    bench/out/; its URL."""
    if url is None:
        OUT.mkdir(exist_ok=True)
        for old in OUT.glob(f"{name}.db*"):
            old.unlink()
        return f"sqlite:///{OUT / f'{name}.db'}"
    db = Database(url)
    database = db.engine.url.database or ""
    if "test" not in database and "bench" not in database:
        sys.exit(f"refusing to empty {database!r}: name a database whose name contains 'test' or 'bench'")
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()
    return url


def prepare(url: str | None) -> str:
    """The database both servers use: migrated, with the notice and the starter knowledge base; its URL."""
    url = fresh_database(url, "cold-start")
    db = Database(url)
    db.upgrade()
    actor = SystemActor(username="bench")
    with db.write() as session:
        plan.import_notice(session=session, actor=actor, data=plan.shipped_notice(), source_name="bench")
        transfer.load_starter(session=session, actor=actor)
    db.dispose()
    return url


def baseline_source(revision: str, into: Path) -> Path:
    """The package as of `revision` (git archive: no checkout, no worktree), for PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", revision, "src"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


class Server:
    """One `chunfeng serve` on a loopback port, started by `with`, stopped at the end."""

    def __init__(self, source: Path, url: str, files: Path, *, extra: Path | None = None):
        """`extra`: packages the server may use beside the virtualenv's (httptools and uvloop, before the
        environment has them), appended to its PYTHONPATH."""
        self.source, self.files = source, files
        path = os.pathsep.join(str(p) for p in (source, extra) if p)
        self.env = {**os.environ, "PYTHONPATH": path, "CHUNFENG_DATABASE_URL": url,
                    "CHUNFENG_SCAN_INTERVAL_MINUTES": "0", "CHUNFENG_DATA_DIR": str(files / "files"),
                    "CHUNFENG_PUSH_STORE": str(files / "taxpayers.duckdb"),
                    "CHUNFENG_AUDIT_HEAD_FILE": str(files / "audit-head.log"),
                    # One address sends everything, faster than any ceiling a site would set: neither may refuse it.
                    "CHUNFENG_RATE_LIMITS": "{}", "CHUNFENG_RATE_CEILINGS": "{}"}

    def __enter__(self) -> Server:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "chunfeng", "serve", "--port", str(port)],
                                        env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.listening = None
        while True:
            try:
                status = httpx.get(f"{self.url}/healthz", timeout=5).status_code
                self.listening = self.listening or time.monotonic() - started
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() - started > 300:
                raise RuntimeError("chunfeng serve did not start")
            time.sleep(0.05)
        self.ready = time.monotonic() - started
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def ask(self, n: int) -> float:
        start = time.perf_counter()
        response = httpx.get(f"{self.url}/api/consult", params={"q": QUESTIONS[n % len(QUESTIONS)]}, timeout=300)
        assert response.status_code == 200, response.text[:300]
        return time.perf_counter() - start

    def file(self, n: int) -> float:
        body = {"kind": "complaint", "text": f"{COMPLAINTS[n % len(COMPLAINTS)]}(#{n})", "phone": f"139{n:08d}",
                "region": "110101"}
        start = time.perf_counter()
        response = httpx.post(f"{self.url}/api/appeals", json=body, timeout=300)
        assert response.status_code == 201, response.text[:300]
        return time.perf_counter() - start

    def burst(self, call, n: int) -> list[float]:
        barrier = threading.Barrier(n)

        def one(k: int) -> float:
            barrier.wait()
            return call(k)

        with ThreadPoolExecutor(n) as pool:
            return sorted(pool.map(one, range(n)))


def measure(source: Path, url: str, files: Path, burst: int) -> dict[str, str]:
    figures = {}
    with Server(source, url, files) as server:
        figures["listening / ready (/healthz 200) after start"] = f"{server.listening:.1f} s / {server.ready:.1f} s"
        first_ask, first_filing = server.ask(0), server.file(0)
        warm_ask = statistics.median(server.ask(n) for n in range(1, 21))
        warm_filing = statistics.median(server.file(n) for n in range(1, 21))
        figures["first question, one alone (warm: median of the next 20)"] = \
            f"{first_ask * 1000:,.0f} ms ({warm_ask * 1000:.0f} ms)"
        figures["first filing, one alone (warm: median of the next 20)"] = \
            f"{first_filing * 1000:,.0f} ms ({warm_filing * 1000:.0f} ms)"
    for label, kind in (("filings", "file"), ("questions", "ask")):
        with Server(source, url, files) as server:
            seconds = server.burst(getattr(server, kind), burst)
            within = sum(s <= TARGET_SECONDS for s in seconds)
            figures[f"{burst} {label} at once right after start: median, slowest (within 3 s)"] = (
                f"{statistics.median(seconds):.2f} s, {seconds[-1]:.2f} s ({within}/{burst})")
    return figures


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=LAZY, help=f"the revision measured as the baseline (default {LAZY})")
    parser.add_argument("--burst", type=int, default=20, help="requests sent at once after a start (default 20)")
    args = parser.parse_args()
    url = prepare(os.environ.get("CHUNFENG_DATABASE_URL"))
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    with tempfile.TemporaryDirectory(prefix="chunfeng-cold-") as tmp:
        tmp = Path(tmp)
        lazy = measure(baseline_source(args.baseline, tmp / "baseline"), url, tmp / "lazy", args.burst)
        preloaded = measure(ROOT / "src", url, tmp / "now", args.burst)
    load = os.getloadavg()[0]
    print(f"\nCold start on {engine}, {os.cpu_count()} cores, load {load:.1f} (target: every request within "
          f"{TARGET_SECONDS:.0f} s, the first as fast as the hundredth)")
    width = max(map(len, lazy))
    print(f"  {'figure':<{width}}  {'lazy (' + args.baseline + ')':>28}  {'built at start-up (now)':>28}")
    for figure in lazy:
        print(f"  {figure:<{width}}  {lazy[figure]:>28}  {preloaded[figure]:>28}")


if __name__ == "__main__":
    main()
