"""What counting the rate limits in the database costs a public request, and what it holds the write lock for.

Figures, each printed beside its target and the baseline measured in the same run:
- the cost of one counted request (the endpoint's ceiling and the client's own limit, one transaction: two upserts
  and a commit), from one thread and from 4 threads at once (the most a process uses) (target: under 2 ms at the median, 10 ms at p99);
  baseline: the same rules counted in the process's memory (what a single process did before);
- on SQLite, how long each count holds the database's one write lock (BEGIN IMMEDIATE to the commit), the time
  any other writer may wait behind it (target: under 1 ms at p99), and an ordinary small write's latency while two
  threads count without pause beside it (target: p99 within a few times its latency alone, measured in the run).

Run: .venv/bin/python bench/rate_limits.py [--database-url postgresql://…/chunfeng_bench] [--requests 5000]
Without a URL a SQLite file in bench/out/ is made afresh.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path

from sqlalchemy import event, text

from chunfeng.db import Database
from chunfeng.ratelimit import RateLimiter, Rule


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


def rules(n: int) -> list[Rule]:
    # A ceiling too high to refuse (the cost is the same), and one of 500 client addresses.
    return [Rule("consult", "*", 1_000_000, 1.0, backlog=60), Rule("consult", f"10.{n % 500 // 250}.{n % 250}.1", 10**6, 60)]


def timed(take, count: int, threads: int) -> list[float]:
    samples: list[float] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        mine = []
        for n in range(offset, count, threads):
            start = time.perf_counter()
            take(rules(n))
            mine.append(time.perf_counter() - start)
        with lock:
            samples.extend(mine)

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return samples


def small_writes(db: Database, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        with db.write() as session:
            session.execute(text("INSERT INTO bench_write (v) VALUES ('x')"))
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    if not url:
        out = Path(__file__).with_name("out")
        out.mkdir(exist_ok=True)
        (out / "rate_limits.db").unlink(missing_ok=True)
        url = f"sqlite:///{out / 'rate_limits.db'}"
    db = Database(url)
    db.upgrade()
    limiter = RateLimiter(url, write_lock=db.write_lock)
    with db.write() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS bench_write (id INTEGER PRIMARY KEY, v TEXT)"))
    held: list[float] = []
    if url.startswith("sqlite"):
        began: dict[int, float] = {}

        @event.listens_for(limiter.engine, "begin")
        def _began(connection):
            began[id(connection)] = time.perf_counter()

        @event.listens_for(limiter.engine, "commit")
        def _committed(connection):
            held.append(time.perf_counter() - began.pop(id(connection), time.perf_counter()))

    print(f"rate limits on {url.split(':')[0]}, {args.requests} counted requests")
    for threads in (1, 4):  # the middleware counts on at most four threads a process
        memory = timed(lambda r: limiter._take_local(r, time.time()), args.requests, threads)
        shared = timed(limiter.take, args.requests, threads)
        print(f"  {threads} thread(s): in the database {percentiles(shared)} "
              f"(target p50 < 2 ms, p99 < 10 ms); in memory {percentiles(memory)}")
    if held:
        print(f"  SQLite write lock held per count: {percentiles(held)} (target p99 < 1 ms)")
        alone = small_writes(db, 500)
        stop = threading.Event()

        def count_until_stopped() -> None:
            n = 0
            while not stop.is_set():
                limiter.take(rules(n))
                n += 1

        counting = [threading.Thread(target=count_until_stopped) for _ in range(2)]
        for t in counting:
            t.start()
        beside = small_writes(db, 500)
        stop.set()
        for t in counting:
            t.join()
        print(f"  an ordinary write: alone {percentiles(alone)}; beside two threads counting {percentiles(beside)}")
    limiter.dispose()


if __name__ == "__main__":
    main()
