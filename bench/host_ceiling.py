"""What this host can serve at most, whatever the application does: locust (the same FastHttpUser the load test
uses, on the same cores) against 1 … N server processes answering requests that do no work at all, beside the
cheapest request of `chunfeng serve` (GET /healthz) — the ceiling every public request of issue 16 lives under.

- "empty": a bare ASGI callable answering a fixed JSON body, on uvicorn with the same HTTP parser and event loop as
  `chunfeng serve` (httptools, uvloop): no framework, no database, no middleware;
- "/healthz": `chunfeng serve` on a fresh SQLite database, its readiness answer (routing, the middlewares, the
  access log; no database query in the answer itself).

For each: requests a second, p99, and the CPU one request costs the servers and the load generator (from /proc),
beside issue 16's target for the season's mix on this 2-core machine: 1,000 questions and 300 filings a second,
1,300 requests a second together.

Run: .venv/bin/python bench/host_ceiling.py [--processes 2] [--seconds 15] [--users 30]
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cold_start import ROOT, Server, prepare  # bench/cold_start.py
from common import configure  # bench/common.py
from public_cost import cpu_seconds  # bench/public_cost.py

TARGET_RPS = 1_000 + 300  # issue 16: questions and filings a second, together, on 2 cores
BODY = b'{"ok":true}'
LOCUSTFILE = '''
import itertools, os
from locust import FastHttpUser, constant, task
HOSTS = os.environ["CEILING_HOSTS"].split(",")
_next = itertools.count()
class Caller(FastHttpUser):
    wait_time = constant(0)
    def __init__(self, environment):
        self.host = HOSTS[next(_next) % len(HOSTS)]
        super().__init__(environment)
    @task
    def call(self):
        self.client.get(os.environ["CEILING_PATH"], name="call")
'''


async def app(scope, receive, send) -> None:
    """The empty answer: what any Python web application pays before doing anything."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})


class EmptyServer:
    """uvicorn serving `app` above on a loopback port."""

    def __enter__(self) -> EmptyServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "host_ceiling:app",
             "--port", str(port), "--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level",
             "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url, timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the empty server did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def load(servers, path: str, args: argparse.Namespace, out: Path, label: str) -> dict:
    locustfile = out / "ceiling_locustfile.py"
    locustfile.write_text(LOCUSTFILE, encoding="utf-8")
    prefix = out / label
    env = {**os.environ, "CEILING_HOSTS": ",".join(s.url for s in servers), "CEILING_PATH": path}
    pids = [s.process.pid for s in servers]
    before = cpu_seconds(pids)
    locust = subprocess.Popen([str(Path(sys.executable).with_name("locust")), "-f", str(locustfile), "--headless",
                               "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "--csv",
                               str(prefix), "--only-summary", "--loglevel", "ERROR"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The load generator's own CPU, read just before it exits (its children: none; FastHttpUser is gevent).
    client = 0.0
    while locust.poll() is None:
        client = cpu_seconds([locust.pid]) or client
        time.sleep(0.2)
    server = cpu_seconds(pids) - before
    with open(f"{prefix}_stats.csv", encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "call")
    requests = int(row["Request Count"])
    return {"rps": float(row["Requests/s"]), "p99": row["99%"], "failed": row["Failure Count"],
            "server_ms": 1000 * server / max(requests, 1), "client_ms": 1000 * client / max(requests, 1)}


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=30)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="chunfeng-ceiling-") as tmp:
        out = Path(tmp)
        url = prepare(None)
        for n in range(1, args.processes + 1):
            servers = [EmptyServer() for _ in range(n)]
            for s in servers:
                s.__enter__()
            try:
                results.append(("empty answer (bare ASGI, uvicorn + httptools + uvloop)", n,
                                load(servers, "/", args, out, f"empty{n}")))
            finally:
                for s in servers:
                    s.__exit__()
        for n in range(1, args.processes + 1):
            servers = [Server(ROOT / "src", url, out) for _ in range(n)]
            for s in servers:
                s.__enter__()
            try:
                results.append(("chunfeng serve, GET /healthz", n, load(servers, "/healthz", args, out, f"healthz{n}")))
            finally:
                for s in servers:
                    s.__exit__()
    print(f"\nThis host's ceiling: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {args.users} locust users "
          f"on the same cores, {args.seconds} s each")
    print(f"  issue 16's target in the season's mix: {TARGET_RPS:,} requests/s (1,000 questions + 300 filings)")
    for what, n, r in results:
        print(f"  {what}, {n} process{'es' if n > 1 else ''}: {r['rps']:,.0f} requests/s (p99 {r['p99']} ms, "
              f"{r['failed']} failed); CPU a request: servers {r['server_ms']:.2f} ms, locust {r['client_ms']:.2f} ms")


if __name__ == "__main__":
    main()
