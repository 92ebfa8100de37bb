"""The floor every request pays — HTTP parsing, the event loop, the middlewares, the access log — as server CPU per
`GET /healthz`, for `chunfeng serve` with uvicorn's pure-Python parser (h11 on asyncio), with httptools, and with
httptools on uvloop: three servers of this checkout side by side, measured in turns so that each round sees the
same machine state (issue 16).

Run: .venv/bin/python bench/http_floor.py --extra DIR [--rounds 5] [--requests 200]
DIR holds httptools and uvloop (`pip install --target DIR httptools uvloop`) when the environment does not; the
"h11" server is started with neither on its path only if the environment lacks them too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import httpx
from cold_start import ROOT, Server, fresh_database  # bench/cold_start.py
from common import configure  # bench/common.py
from public_cost import cpu_seconds  # bench/public_cost.py

from chunfeng.db import Database


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extra", type=Path, required=True, help="a directory holding httptools and uvloop")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="requests per server and round")
    args = parser.parse_args()
    extra = args.extra.resolve()
    with tempfile.TemporaryDirectory(prefix="chunfeng-floor-") as tmp:
        tmp = Path(tmp)
        only_httptools = tmp / "httptools-only"
        only_httptools.mkdir()
        for item in extra.glob("httptools*"):
            (only_httptools / item.name).symlink_to(item)
        url = fresh_database(os.environ.get("CHUNFENG_DATABASE_URL"), "http-floor")
        db = Database(url)
        db.upgrade()
        db.dispose()
        servers = {"h11, asyncio": Server(ROOT / "src", url, tmp),
                   "httptools, asyncio": Server(ROOT / "src", url, tmp, extra=only_httptools),
                   "httptools, uvloop": Server(ROOT / "src", url, tmp, extra=extra)}
        for server in servers.values():
            server.__enter__()
        load = os.getloadavg()[0]
        spent = dict.fromkeys(servers, 0.0)
        try:
            clients = {name: httpx.Client(base_url=server.url) for name, server in servers.items()}
            for name in servers:
                for _ in range(50):  # warm
                    clients[name].get("/healthz")
            for _ in range(args.rounds):
                for name, server in servers.items():
                    before = cpu_seconds([server.process.pid])
                    for _ in range(args.requests):
                        clients[name].get("/healthz")
                    spent[name] += cpu_seconds([server.process.pid]) - before
        finally:
            for server in servers.values():
                server.__exit__()
    print(f"\nServer CPU per GET /healthz, {args.rounds} rounds of {args.requests}, load {load:.1f} at the start and "
          f"{os.getloadavg()[0]:.1f} at the end")
    for name, seconds in spent.items():
        print(f"  {name:<20} {seconds / (args.rounds * args.requests) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
