"""Where one public request's server CPU goes: the split of `bench/public_cost.py`'s figure between the parts a
question and a filing pass through — the HTTP server and framework, the middlewares (security headers and CSRF,
rate limit), the session lookup, the retrieval, the template, the classification, the filing's write and its audit
entry, the encryption of personal fields, the calendar, the database driver under each.

The application is served by uvicorn on a thread of this process (as `chunfeng serve` runs it). Each thread's CPU
time comes from /proc (the client, in the main thread, not counted): the event loop's thread (HTTP parsing, routing,
the middlewares, the responses) is given whole; the thread pool's (the routes, which are sync, and all they call) is
split by a sampler thread that looks at the pool's stacks every half millisecond and charges each sample to the
innermost part on the stack, "… (database)" when SQLAlchemy or the driver runs for it. Samples of a thread that
waits (for work, for PostgreSQL's answer, for a lock) are left out. Not split: the event loop's thread, whose Python
runs between C callbacks and is seldom caught by a sampler. On SQLite a commit's wait for the disk happens inside
the driver with the GIL released and is counted as "(database)"; on PostgreSQL the driver's waits are left out.

Run: .venv/bin/python bench/public_split.py [--requests 300]   (CHUNFENG_DATABASE_URL as for public_cost.py)
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import uvicorn
from common import configure  # bench/common.py
from public_cost import KINDS, TICKS, Kinds  # bench/public_cost.py
from public_load import prepare  # bench/public_load.py

from chunfeng.db import Database
from chunfeng.settings import Settings
from chunfeng.web.app import create_app
from chunfeng.web.server import uvicorn_config

# (a path ending, a function name or "*"): the part a frame of it starts; the innermost on a stack is charged.
PARTS = [
    ("uvicorn/", "*", "HTTP server (uvicorn)"),
    ("fastapi/applications.py", "__call__", "framework (routing, parameters, responses)"),
    ("chunfeng/web/security.py", "__call__", "middleware: security headers"),
    ("chunfeng/web/security.py", "csrf_protect", "middleware: CSRF"),
    ("chunfeng/web/limits.py", "__call__", "middleware: rate limit"),
    ("chunfeng/ratelimit.py", "take", "rate-limit counters"),
    ("chunfeng/web/deps.py", "optional_user", "session lookup"),
    ("chunfeng/web/deps.py", "render", "template"),
    ("chunfeng/consult/services.py", "ask", "question: checks and log"),
    ("chunfeng/consult/services.py", "index_for", "index freshness check"),
    ("chunfeng/appeals/intake.py", "measure_index", "index freshness check"),
    ("chunfeng/consult/index.py", "search", "retrieval"),
    ("chunfeng/appeals/intake.py", "classify", "classification"),
    ("chunfeng/db.py", "write_grouped", "transaction and shared flush"),
    ("chunfeng/db.py", "write", "transaction (begin, commit)"),
    ("chunfeng/appeals/intake.py", "submit", "filing: routing, checks, insert"),
    ("chunfeng/workdays.py", "configured_calendar", "calendar"),
    ("chunfeng/org/audit.py", "record", "audit chain"),
    ("chunfeng/crypto.py", "*", "encryption of personal fields"),
    ("chunfeng/outbox.py", "*", "outbox"),
]
DATABASE = ("sqlalchemy/", "psycopg/", "sqlite3/")
# A thread's innermost frame here: it waits (for work, for the network, for PostgreSQL), on no CPU.
WAITING = ("threading.py", "queue.py", "selectors.py", "asyncio/base_events.py", "asyncio/runners.py",
           "uvloop/__init__.py", "concurrent/futures/thread.py", "psycopg/waiting.py", "anyio/_backends/_asyncio.py")
WAITING_FUNCTIONS = {"wait", "wait_c", "_wait", "wait_conn"}


def part_of(frame) -> str | None:
    """The part a sample of this stack is charged to; None for a thread that is waiting."""
    top = frame.f_code
    if top.co_filename.endswith(WAITING) or any(w in top.co_filename for w in WAITING) \
            or (top.co_name in WAITING_FUNCTIONS and "psycopg" in top.co_filename):
        return None
    in_database = False
    while frame is not None:
        code = frame.f_code
        if any(d in code.co_filename for d in DATABASE):
            in_database = True
        for path, name, label in PARTS:
            if path in code.co_filename and name in ("*", code.co_name):
                if label == "retrieval" and _inside(frame, "chunfeng/appeals/intake.py", "classify"):
                    label = "classification"  # a complaint's retrieval is its classification
                return f"{label} (database)" if in_database else label
        frame = frame.f_back
    return "other (threads, start-up)"


def _inside(frame, path: str, name: str) -> bool:
    while frame is not None:
        if path in frame.f_code.co_filename and frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


class Sampler(threading.Thread):
    def __init__(self, interval: float = 0.0005):
        super().__init__(daemon=True)
        self.interval, self.counts, self.on = interval, Counter(), threading.Event()
        self.skip = {threading.main_thread().ident, None}

    def run(self) -> None:
        self.skip.add(threading.get_ident())
        while self.on.wait():  # off while the cost is measured: no CPU of its own in that figure
            for ident, frame in sys._current_frames().items():
                if ident not in self.skip and (part := part_of(frame)):
                    self.counts[part] += 1
            time.sleep(self.interval)


def thread_cpu(tids: set[int] | None, but: set[int] = frozenset()) -> float:
    """CPU seconds of these threads of this process (all when None) but those in `but`, from /proc."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        if tid in but or (tids is not None and tid not in tids):
            continue
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind measured (default 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chunfeng-split-") as tmp:
        files = Path(tmp)
        url = prepare(os.environ.get("CHUNFENG_DATABASE_URL"), files)
        # public_cost.py's servers' settings: the per-address limits off, the site's ceilings on
        settings = Settings(database_url=url, data_dir=str(files / "files"), push_store=str(files / "taxpayers.duckdb"),
                            audit_head_file=str(files / "audit-head.log"), scan_interval_minutes=0, rate_limits={})
        db = Database(url)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn_config(create_app(db, settings), settings, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        while not server.started or httpx.get(f"{base}/healthz").status_code != 200:
            time.sleep(0.1)
        sampler = Sampler()
        sampler.start()
        kinds, client, loop = Kinds(base), threading.get_native_id(), thread.native_id
        sampler.skip.add(thread.ident)  # the event loop's thread is measured whole, below: see the docstring
        figures = {}
        for kind in KINDS[1:]:
            for n in range(20):
                kinds.send(kind, n)
            before, before_loop = thread_cpu(None, {client, loop}), thread_cpu({loop})
            for n in range(20, 20 + args.requests):  # the cost without the sampler, as public_cost.py measures it
                kinds.send(kind, n)
            cost = (thread_cpu(None, {client, loop}) - before) / args.requests * 1000
            on_loop = (thread_cpu({loop}) - before_loop) / args.requests * 1000
            sampler.counts.clear()
            # A thread gives up the GIL to the sampler at the switch interval or when it waits: at the default 5 ms
            # nearly every sample would land where a thread waits on I/O. At 50 µs they land anywhere.
            switch = sys.getswitchinterval()
            sys.setswitchinterval(0.00005)
            sampler.on.set()
            for n in range(20 + args.requests, 20 + 2 * args.requests):
                kinds.send(kind, n)
            sampler.on.clear()
            sys.setswitchinterval(switch)
            figures[kind] = (on_loop, cost, Counter(sampler.counts))
        server.should_exit = True
        thread.join(10)
        db.dispose()
    engine = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\nWhere a public request's server CPU goes, on {engine}, load {os.getloadavg()[0]:.1f}; {args.requests} "
          "of each, one at a time; ms a request (share of the samples)")
    for kind, (on_loop, cost, counts) in figures.items():
        total = sum(counts.values()) or 1
        print(f"  {kind}: {on_loop + cost:.2f} ms server CPU a request")
        print(f"    {'event loop thread: HTTP, routing, middlewares, responses':<58} {on_loop:6.2f} ms")
        print(f"    {'thread pool (the route and its work), by ' + str(total) + ' samples:':<58} {cost:6.2f} ms")
        for part, n in counts.most_common():
            if n / total >= 0.01:
                print(f"      {part:<56} {cost * n / total:6.2f} ms ({n / total:4.0%})")

if __name__ == "__main__":
    main()
