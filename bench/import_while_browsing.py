"""Pages while a hotline file is imported (issue 13 §1): a signed-in official browses a real `chunfeng serve`
while `chunfeng appeals import` loads a 30,000-row hotline file in another process.

Figures, each beside its target and its baseline measured in the same run:
- page latency (`GET /ledger` and `GET /appeals`), p50 and p99, with no import running and during the import
  (target: p99 under 1 s during the import);
- the import's throughput, classification included: rows a second of the whole command, and of the import
  proper (the command's time less that of the same command on a one-row file: process start, loading the
  tokenizer and building the measures' index) (target: at least 2,000 rows/s).

Run: .venv/bin/python bench/import_while_browsing.py [--rows 30000] [--baseline-seconds 15] [--pause 0.2]
On SQLite (a fresh file in bench/out/) by default; on PostgreSQL with CHUNFENG_DATABASE_URL set to a database
whose name contains "bench" or "test" (its tables are dropped first).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from appeals_scale import make_text  # bench/appeals_scale.py: texts in the words of real complaints
from sqlalchemy import text

from chunfeng import runtime
from chunfeng.db import Database
from chunfeng.org import services as org
from chunfeng.org.access import SystemActor
from chunfeng.plan import services as plan
from chunfeng.settings import Settings

OUT = Path(__file__).parent / "out"
PASSWORD = "Bench-password-1"
PAGES = ("/ledger", "/appeals")
TARGET_P99, TARGET_ROWS = 1.0, 2000
REGIONS = ["110101", "110000", "310000", "440300", "440000", "330100", "510000", "210200", ""]


def environment(url: str, files: Path) -> dict[str, str]:
    return {**os.environ, "CHUNFENG_DATABASE_URL": url, "CHUNFENG_ENVIRONMENT": "bench",
            "CHUNFENG_SECRET_KEY": "bench-secret-key-not-for-production", "CHUNFENG_DATA_KEY": "0123456789abcdef" * 2,
            "CHUNFENG_SCAN_INTERVAL_MINUTES": "0", "CHUNFENG_RATE_LIMITS": "{}", "CHUNFENG_TOTP_REQUIRED_ROLES": "[]",
            "CHUNFENG_DATA_DIR": str(files / "files"), "CHUNFENG_AUDIT_HEAD_FILE": str(files / "audit-head.log"),
            "CHUNFENG_IMPORT_MAX_ROWS": "100000", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}


def prepare(url: str, env: dict[str, str]) -> None:
    os.environ.update(env)  # the audit head and the data key of this run, for the rows written here
    settings = Settings(database_url=url)
    runtime.configure(settings)  # the data key is read at the entry point only, never behind its back
    db = Database(settings.sqlalchemy_url)
    if not db.is_sqlite:
        if not any(word in (db.engine.url.database or "") for word in ("bench", "test")):
            sys.exit(f"refusing to empty {db.engine.url.database!r}: name a database containing 'bench' or 'test'")
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.upgrade()
    system = SystemActor(username="bench")
    with db.write() as session:
        plan.import_notice(session=session, actor=system, data=plan.shipped_notice(), source_name="shipped")
        user = org.add_user(session=session, actor=system, username="browser", display_name="浏览者", unit_code="000000",
                            roles=["action_office"], password=PASSWORD)
        user.must_change_password = False
    db.dispose()


def hotline_file(path: Path, rows: int) -> None:
    rng = random.Random(13)
    kinds = ["诉求", "投诉", "意见建议", "舆情"]
    with path.open("w", encoding="utf-8") as f:
        f.write("类型,内容,地区代码,来电人,电话,来电日期\n")
        for n in range(rows):
            words = make_text(rng)[0].replace(",", "\uff0c")  # a comma of the text is not a field's end
            f.write(f"{rng.choice(kinds)},{words},{rng.choice(REGIONS)},来电人{n % 977},1{rng.randint(3, 9)}"
                    f"{rng.randrange(10**9):09d},2026-12-0{rng.randint(1, 4)}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen([sys.executable, "-m", "chunfeng", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    sys.exit("the server did not start")


def login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    page = client.get("/login").text
    marker = 'name="csrf_token" value="'
    token = page[page.index(marker) + len(marker):].split('"', 1)[0]
    response = client.post("/login", data={"username": "browser", "password": PASSWORD, "csrf_token": token})
    if response.status_code != 303:
        sys.exit(f"login failed: {response.status_code}")
    return client


def browse(client: httpx.Client, until, pause: float) -> dict[str, list[float]]:
    """Each page in turn, `pause` seconds apart (an official reading, not a load test, so that the browsing does not
    take the import's processor), until `until()` says stop: each latency, any answer but 200 a failure."""
    seconds: dict[str, list[float]] = {page: [] for page in PAGES}
    failures = 0
    while not until():
        for page in PAGES:
            start = time.perf_counter()
            try:
                status = client.get(page).status_code
            except httpx.HTTPError:
                status = 0
            seconds[page].append(time.perf_counter() - start)
            failures += status != 200
            time.sleep(pause)
    seconds["failures"] = [failures]
    return seconds


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # of the children waited for: the import, once it ended
    return usage.ru_utime + usage.ru_stime


def run_import(env: dict[str, str], path: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "chunfeng", "appeals", "import", str(path)], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the import failed: {done.stdout}{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=30000)
    parser.add_argument("--baseline-seconds", type=float, default=15)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between two page requests")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="browse-", dir=OUT))
    url = os.environ.get("CHUNFENG_DATABASE_URL") or f"sqlite:///{work / 'chunfeng.db'}"
    engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    env = environment(url, work)
    print(f"{engine}; {args.rows:,} hotline rows; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    prepare(url, env)
    big, small = work / "hotline.csv", work / "one.csv"
    hotline_file(big, args.rows)
    hotline_file(small, 1)
    server, base = serve(env, free_port())
    try:
        client = login(base)
        for page in PAGES:  # the first request of each page builds what it caches
            client.get(page)
        stop = time.monotonic() + args.baseline_seconds
        idle = browse(client, lambda: time.monotonic() > stop, args.pause)
        cpu_before = children_cpu()
        startup = run_import(env, small)
        startup_cpu = children_cpu() - cpu_before
        cpu_before = children_cpu()
        importer = subprocess.Popen([sys.executable, "-m", "chunfeng", "appeals", "import", str(big)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        start = time.perf_counter()
        busy = browse(client, lambda: importer.poll() is not None, args.pause)
        wall = time.perf_counter() - start
        output = importer.stdout.read()
        cpu = children_cpu() - cpu_before
        if importer.returncode:
            sys.exit(f"the import failed: {output}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{'page':<10} {'no import: p50 / p99':>24} {'during the import: p50 / p99':>32}   target p99")
    for page in PAGES:
        a, b = idle[page], busy[page]
        print(f"{page:<10} {percentile(a, 50) * 1000:>10.0f} / {percentile(a, 99) * 1000:>6.0f} ms ({len(a):>3})"
              f" {percentile(b, 50) * 1000:>14.0f} / {percentile(b, 99) * 1000:>6.0f} ms ({len(b):>4})   "
              f"< {TARGET_P99 * 1000:.0f} ms: {'met' if percentile(b, 99) < TARGET_P99 else 'NOT met'}")
    print(f"answers other than 200: {idle['failures'][0]} without the import, {busy['failures'][0]} during it")
    proper = wall - startup
    print(f"\nimport of {args.rows:,} rows (`chunfeng appeals import`, a child process): {wall:.1f} s, "
          f"{args.rows / wall:,.0f} rows/s for the whole command")
    print(f"  less its start-up ({startup:.1f} s: the same command on a one-row file): {proper:.1f} s, "
          f"{args.rows / proper:,.0f} rows/s; target ≥ {TARGET_ROWS:,} rows/s: "
          f"{'met' if args.rows / proper >= TARGET_ROWS else 'NOT met'}")
    print(f"  its processor time (user + system, all cores; what another load on the machine does not change): "
          f"{cpu:.1f} s, {args.rows / cpu:,.0f} rows per processor-second; less the one-row command's "
          f"{startup_cpu:.1f} s: {args.rows / (cpu - startup_cpu):,.0f} rows per processor-second")


if __name__ == "__main__":
    main()
