"""A national survey's invitations: N sampled taxpayers (default 1 million) invited through the push outbox — planned
(a one-time token each, the invitation rows, the messages, the outbox deliveries, in one transaction) and sent
(claim → send → record) through an SMS channel configured as the demo would configure one: a json:// gateway, here
a counting HTTP server on loopback — on SQLite.

Figures, each beside its target and the baseline measured in the same run:
- planning N invitations (survey.invitations.invite), beside N/10 planned the same way (it should scale linearly);
- sending: deliveries per second through outbox.deliver_due on a slice of `--send` deliveries, half claimed one at
  a time (the baseline: the outbox's default) and half in batches of push_send_batch (a campaign's sender), and the
  time for all N at that rate (extrapolated, labelled so);
- every delivery of the slice checked afterwards: sent, and received by the gateway once.

Run: .venv/bin/python bench/survey_invitations.py [--n 1000000] [--send 3000]
The database is a fresh SQLite file in bench/out/; the taxpayers and their contacts an in-memory DuckDB store.
"""

from __future__ import annotations

import argparse
import http.server
import os
import threading
import time
from datetime import datetime

import duckdb
from common import configure, survey_database  # bench/common.py
from sqlalchemy import func, insert, select

from chunfeng import crypto, outbox
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.settings import Settings
from chunfeng.survey import invitations
from chunfeng.survey.sample_models import SurveySample, SurveySampleMember, SurveyStratum

PLAN_TARGET_S = 300  # the brief's budget for a bench run; issue 18 sets no figure for planning
ACTOR = SystemActor(username="bench", unit_code="110000")


class Gateway(http.server.BaseHTTPRequestHandler):
    """The SMS gateway: counts each message by the delivery id the channel URL carries."""
    received: dict[str, int] = {}
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (the http.server name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.path.split("?", 1)[0]
        with self.lock:
            self.received[key] = self.received.get(key, 0) + 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


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
    parser.add_argument("--send", type=int, default=3000, help="deliveries sent (a slice; the rate is extrapolated)")
    args = parser.parse_args()
    db, survey_id = survey_database("survey-invitations", actor=ACTOR, title="全国纳税人需求调查",
                                    question="您对办税服务的满意程度")
    conn = store(args.n + args.n // 10)
    print(f"Survey invitations on SQLite, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    small = plan(db, conn, survey_id, args.n // 10)
    print(f"  baseline: {args.n // 10:,} invitations planned in {small:.1f} s")
    full = plan(db, conn, survey_id, args.n)
    with db.read() as s:
        deliveries = s.scalar(select(func.count()).select_from(outbox.Delivery))
    print(f"  {args.n:,} invitations planned (tokens, invitations, messages, {deliveries:,} outbox deliveries in all) "
          f"in {full:.1f} s; {full / small:.1f}x the baseline for 10x the invitations   budget ≤ {PLAN_TARGET_S} s")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(push_channels={"sms": f"json://127.0.0.1:{server.server_port}/d{{message}}?to={{address}}"},
                        channel_hosts_allowed=["127.0.0.1"], push_max_attempts=1)
    rates = {}
    for label, batch in (("one claim per delivery (the outbox's default)", 1),
                         (f"push_send_batch = {settings.push_send_batch} (what a campaign's sender uses)",
                          settings.push_send_batch)):
        started = time.perf_counter()
        run = outbox.deliver_due(db, settings=settings, limit=args.send // 2, origin="push.message", batch=batch)
        seconds = time.perf_counter() - started
        rates[batch] = (run.sent + run.failed) / seconds
        print(f"  {'baseline, ' if batch == 1 else ''}{label}: sent {run.sent:,} (failed {run.failed}) in {seconds:.1f} s, "
              f"{rates[batch]:,.0f} deliveries/s")
    server.shutdown()
    rate = rates[settings.push_send_batch]
    with db.read() as s:
        sent = s.scalar(select(func.count()).select_from(outbox.Delivery).where(outbox.Delivery.state == "sent"))
    twice = sum(1 for k in Gateway.received.values() if k > 1)
    print(f"  all {deliveries:,} deliveries at {rate:,.0f}/s: {deliveries / rate / 3600:,.1f} h (extrapolated; one "
          "sender, each message its own HTTP request to the gateway)")
    print(f"  checked: {sent:,} recorded sent, {len(Gateway.received):,} received by the gateway, {twice} twice")
    db.dispose()


if __name__ == "__main__":
    main()
