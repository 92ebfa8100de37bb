"""A national survey's invitations: N sampled taxpayers (default 1 million) invited through the push outbox — planned
(a one-time token each, the invitation rows, the messages, the outbox deliveries, in one transaction) and sent
(claim → send → record) through an SMS channel configured as the demo would configure one: a json:// gateway, here
a counting HTTP server on loopback — on SQLite.

Figures, each beside its target and the baseline measured in the same run:
- planning N invitations (survey.invitations.invite), beside N/10 planned the same way (it should scale linearly);
- sending: deliveries per second and the senders' CPU per message, each sender a process of its own as an
  installer runs it: the baseline, `--baseline` deliveries by the campaign sender of `--baseline-rev` (the sender
  before keep-alive sessions, from that revision's source); the same number by today's `chunfeng push deliver`
  on one process; then the rest (or `--send`) by `chunfeng push deliver --processes N`, in rounds of `--round`, so
  that `--minutes` can end the run between rounds; when not all are sent, the time for all at that rate is
  extrapolated and labelled so;
- every delivery checked afterwards: recorded sent, and received by the gateway once.

The gateway runs in its own process (as a real one does elsewhere), so its work does not share the sender's
interpreter; --gateway-ms makes it answer after a round trip, as a gateway across a network does.
Run: .venv/bin/python bench/survey_invitations.py [--n 1000000] [--baseline 3000] [--processes 2] [--minutes M]
     [--send N] [--gateway-ms 0]
The database is a fresh SQLite file in bench/out/; the taxpayers and their contacts an in-memory DuckDB store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import duckdb
from cold_start import baseline_source  # bench/cold_start.py
from common import OUT, configure, survey_database  # bench/common.py
from sqlalchemy import func, insert, select

from chunfeng import crypto, outbox
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.settings import Settings
from chunfeng.survey import invitations
from chunfeng.survey.sample_models import SurveySample, SurveySampleMember, SurveyStratum

BASELINE_REV = "84e660f"  # the sender before keep-alive sessions and sender processes
# The baseline revision's campaign sender, run from its own source (it had no --limit or --processes).
BASELINE_SENDER = ("import sys; from chunfeng import runtime; from chunfeng.db import Database; "
                   "from chunfeng.push import campaigns; from chunfeng.settings import Settings; s = Settings(); "
                   "runtime.configure(s); campaigns.deliver(Database(s.sqlalchemy_url), settings=s, limit=int(sys.argv[1]))")
PLAN_TARGET_S = 300  # the brief's budget for a bench run; issue 18 sets no figure for planning
ACTOR = SystemActor(username="bench", unit_code="110000")


async def gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, received: dict[str, int],
                  answer_after: float) -> None:
    """The SMS gateway: counts each message by the delivery id the channel URL carries; GET / answers how many
    were received and how many more than once. Lean on purpose (asyncio, one process of its own): the figure is
    the sender's, and http.server's thread per connection made the stub the slower end. It keeps a connection open
    for the next request (HTTP/1.1 keep-alive, as a real gateway does) until the client closes it or asks to."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            break
        method, path = head.split(b" ", 2)[:2]
        lines = [line.lower() for line in head.split(b"\r\n")]
        length = next((int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:")), 0)
        close = b"connection: close" in lines
        await reader.readexactly(length)
        if method == b"POST":
            await asyncio.sleep(answer_after)
            key = path.split(b"?", 1)[0].decode()
            received[key] = received.get(key, 0) + 1
            body = b"{}"
        else:
            body = json.dumps({"received": len(received),
                               "twice": sum(1 for k in received.values() if k > 1)}).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                     + (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n" + body)
        await writer.drain()
        if close:
            break
    writer.close()


def serve_gateway(ports, answer_after: float = 0) -> None:
    async def serve():
        received: dict[str, int] = {}
        server = await asyncio.start_server(lambda r, w: gateway(r, w, received, answer_after), "127.0.0.1", 0,
                                            backlog=512)
        ports.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(serve())


def store(n: int):
    """Taxpayers and one SMS contact each (the address SM4-encrypted, as the taxpayer store keeps it)."""
    conn = duckdb.connect()
    conn.execute(f"CREATE TABLE registry AS SELECT printf('91110000%010d', i) AS credit_code, "
                 f"'企业' || i AS name FROM range({n}) t(i)")
    address = crypto.encrypt_with(crypto.encryption_key(), ["13900000000"])[0]
    conn.execute("CREATE TABLE contacts AS SELECT credit_code, '法定代表人' AS role, '' AS person, 'sms' AS channel, "
                 "? AS address, false AS opted_out FROM registry", [address])
    return conn


def plan(db: Database, conn, survey_id: int, n: int) -> float:
    """A drawn sample of the first n taxpayers (one stratum), then the invitations timed."""
    with db.write() as s:
        sample = SurveySample(survey_id=survey_id, dimensions=[], allocation="given", requested=n, seed=1,
                              frame_total=n, drawn=n, state="drawn", created_by="bench")
        s.add(sample)
        s.flush()
        stratum = SurveyStratum(sample_id=sample.id, key="all", label="全部", frame_size=n, quota=n, drawn=n)
        s.add(stratum)
        s.flush()
        codes = [c for (c,) in conn.execute(f"SELECT credit_code FROM registry ORDER BY 1 LIMIT {n}").fetchall()]
        for i in range(0, n, 50_000):
            s.execute(insert(SurveySampleMember), [{"sample_id": sample.id, "stratum_id": stratum.id, "credit_code": c,
                                                    "token": "", "opted_out": False, "reminders": 0}
                                                   for c in codes[i:i + 50_000]])
        sample_id = sample.id
    started = time.perf_counter()
    with db.write() as s:
        invitations.invite(session=s, conn=conn, actor=ACTOR, sample_id=sample_id, channels=["sms"],
                           roles=["法定代表人"], personal_data=[], base_url="https://cf.example.cn",
                           configured=["sms"], now=datetime(2026, 12, 7, 8, 0))
    return time.perf_counter() - started


def main() -> None:
    configure()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="invitations planned")
    parser.add_argument("--baseline", type=int, default=3000, help="deliveries sent by the baseline sender and by "
                        "today's on one process")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="the revision whose sender is the baseline")
    parser.add_argument("--processes", type=int, default=2, help="sender processes for the rest")
    parser.add_argument("--round", type=int, default=100_000, help="deliveries per sending round")
    parser.add_argument("--minutes", type=float, default=0, help="no new round after this many minutes of sending "
                        "(0: until all are sent); the rest is extrapolated")
    parser.add_argument("--send", type=int, default=0, help="deliveries sent by the campaign's sender (0: all left; "
                                                           "fewer: the time for all is extrapolated)")
    parser.add_argument("--gateway-ms", type=float, default=0, help="the gateway answers each message after this "
                        "many ms (a real SMS gateway is a network round trip away; 0: at once, on loopback)")
    args = parser.parse_args()
    db, survey_id = survey_database("survey-invitations", actor=ACTOR, title="全国纳税人需求调查",
                                    question="您对办税服务的满意程度")
    conn = store(args.n + args.n // 10)
    print(f"Survey invitations on SQLite, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, the gateway answering "
          f"after {args.gateway_ms:g} ms")
    small = plan(db, conn, survey_id, args.n // 10)
    print(f"  baseline: {args.n // 10:,} invitations planned in {small:.1f} s")
    full = plan(db, conn, survey_id, args.n)
    with db.read() as s:
        deliveries = s.scalar(select(func.count()).select_from(outbox.Delivery))
    print(f"  {args.n:,} invitations planned (tokens, invitations, messages, {deliveries:,} outbox deliveries in all) "
          f"in {full:.1f} s; {full / small:.1f}x the baseline for 10x the invitations   budget ≤ {PLAN_TARGET_S} s")

    ports = multiprocessing.get_context("spawn").Queue()
    gateway = multiprocessing.get_context("spawn").Process(target=serve_gateway, args=(ports, args.gateway_ms / 1000),
                                                           daemon=True)
    gateway.start()
    port = ports.get(timeout=60)
    # The senders are processes of their own, as an installer runs them (`chunfeng push deliver`), configured by
    # the environment a site would set.
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url,
           "CHUNFENG_PUSH_CHANNELS": json.dumps({"sms": f"json://127.0.0.1:{port}/d{{message}}?to={{address}}"}),
           "CHUNFENG_CHANNEL_HOSTS_ALLOWED": json.dumps(["127.0.0.1"]), "CHUNFENG_PUSH_MAX_ATTEMPTS": "1"}
    settings = Settings()

    def send(label: str, n: int, command: list[str], source: Path) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with db.read() as s:
            sent_before = s.scalar(select(func.count()).select_from(outbox.Delivery)
                                   .where(outbox.Delivery.state.in_(["sent", "failed"])))
        started = time.perf_counter()
        subprocess.run([sys.executable, *command], env={**env, "PYTHONPATH": str(source)}, check=True,
                       stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        with db.read() as s:
            done = s.scalar(select(func.count()).select_from(outbox.Delivery)
                            .where(outbox.Delivery.state.in_(["sent", "failed"]))) - sent_before
        cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / max(done, 1) * 1000
        print(f"  {label}: {done:,} in {seconds:.1f} s, {done / seconds:,.0f} deliveries/s, sender CPU {cpu:.2f} ms a "
              f"message (process start included)   load {os.getloadavg()[0]:.1f}", flush=True)
        return done / seconds

    batch, concurrency = settings.push_send_batch, settings.push_send_concurrency
    old = baseline_source(args.baseline_rev, OUT / "survey-invitations-baseline")
    send(f"baseline {args.baseline_rev}: its campaign sender, batches of {batch}, {concurrency} in flight, one process",
         args.baseline, ["-c", BASELINE_SENDER, str(args.baseline)], old)
    here = Path(__file__).resolve().parent.parent / "src"
    send("now, the same on one process (`chunfeng push deliver`)", args.baseline,
         ["-m", "chunfeng", "push", "deliver", "--limit", str(args.baseline)], here)
    left = deliveries - 2 * args.baseline
    n = min(args.send or left, left)
    started, done, rates = time.perf_counter(), 0, []
    # In rounds (each a `push deliver` run of its own), so that a time budget ends the run between rounds, never
    # inside one: a sender stopped mid-batch would leave its batch uncertain.
    while done < n and (not args.minutes or time.perf_counter() - started < args.minutes * 60):
        share = min(args.round, n - done)
        rates.append(send(f"now, {args.processes} sender processes (`chunfeng push deliver --processes "
                          f"{args.processes}`), round {len(rates) + 1}", share,
                          ["-m", "chunfeng", "push", "deliver", "--processes", str(args.processes),
                           "--limit", str(share)], here))
        done += share
    seconds = time.perf_counter() - started
    rate = done / seconds
    print(f"  now, {args.processes} sender processes: {done:,} in {seconds / 60:.1f} min, {rate:,.0f} deliveries/s",
          flush=True)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as answer:
        received = json.loads(answer.read())
    gateway.terminate()
    with db.read() as s:
        sent = s.scalar(select(func.count()).select_from(outbox.Delivery).where(outbox.Delivery.state == "sent"))
        left_over = s.scalar(select(func.count()).select_from(outbox.Delivery)
                             .where(outbox.Delivery.state.not_in(["sent"])))
    if done < left:
        print(f"  all {deliveries:,} deliveries at {rate:,.0f}/s: {deliveries / rate / 60:,.1f} min (extrapolated from "
              f"{done:,}; each message its own HTTP request to the gateway)")
    else:
        print(f"  all {deliveries:,} deliveries sent: the last {done:,} in {seconds / 60:.1f} min")
    print(f"  checked: {sent:,} recorded sent ({left_over:,} not), {received['received']:,} received by the gateway, "
          f"{received['twice']} twice")
    db.dispose()


if __name__ == "__main__":
    main()
