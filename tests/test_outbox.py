"""The outbox on a real database (SQLite, or PostgreSQL when CHUNFENG_DATABASE_URL is set) with a real webhook
receiver on loopback: overlapping runs send each message once, a sender killed mid-send leaves the delivery
uncertain and it is not sent again, failures are retried with back-off, and an official may requeue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import select, text, update

from chunfeng import channels, outbox
from chunfeng.channels import ChannelRules
from chunfeng.inbox import services as inbox
from chunfeng.org.services import find_unit
from chunfeng.settings import get_settings
from tests.conftest import Webhook

LOOPBACK = ChannelRules(hosts_allowed=("127.0.0.1",))  # the receiver is on loopback


@pytest.fixture
def receiver(monkeypatch):
    r = Webhook()
    monkeypatch.setenv("CHUNFENG_CHANNEL_HOSTS_ALLOWED", '["127.0.0.1"]')  # the receiver is on loopback
    monkeypatch.setenv("CHUNFENG_PUSH_RETRY_MINUTES", "5")
    get_settings.cache_clear()
    yield r
    r.close()
    get_settings.cache_clear()


def _enqueue(db, url: str, titles: list[str], *, origin: str = "test.thing") -> list[int]:
    with db.write() as session:
        rows = [outbox.enqueue(session, origin=origin, origin_id=i, scope="/000000/", channel=outbox.URL,
                               target=url, title=title, body="正文") for i, title in enumerate(titles)]
        session.flush()
        return [row.id for row in rows]


def _row(db, delivery_id: int) -> outbox.Delivery:
    with db.read() as session:
        return session.get(outbox.Delivery, delivery_id)



def _two_senders_at_once(send) -> list[outbox.DeliveryRun]:
    """Run `send` on two threads released together; their delivery runs."""
    start = threading.Barrier(2)
    runs: list[outbox.DeliveryRun] = []

    def run():
        start.wait()
        runs.append(send())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return runs

def test_two_overlapping_runs_deliver_each_message_exactly_once(bureau, system, receiver):
    """Issue 13: a request's background delivery and the scheduled scan overlapping sent an inbox message twice.
    Here two runs start together, as the nudge after a notice and the schedule (or two replicas) would."""
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=receiver.url, label="值班群",
                          channel_rules=LOOPBACK)
        county = find_unit(session=s, code="110101")
        titles = [f"催办 {i}" for i in range(45)]
        for title in titles:
            inbox.post(s, unit=county, kind="reminder", title=title)
    receiver.delay = 0.02  # each send takes a while, so the runs overlap
    settings = get_settings()
    runs = _two_senders_at_once(lambda: inbox.deliver_pending(bureau, settings=settings))
    assert Counter(receiver.titles) == Counter(titles)  # every one, none twice
    assert sum(r.sent for r in runs) == len(titles) and sum(r.failed for r in runs) == 0
    with bureau.read() as s:
        states = Counter(s.scalars(select(outbox.Delivery.state)))
        assert states == {"sent": len(titles)}
        assert s.scalar(select(outbox.Delivery.attempts).distinct()) == 1


def test_a_claim_is_conditional_on_the_state_it_was_picked_in(db, receiver):
    """The second of two claims over the same due rows gets none of them."""
    ids = _enqueue(db, receiver.url, ["一", "二", "三"])
    now = datetime.utcnow()
    first = outbox.claim(db, now=now, limit=10, max_attempts=5)
    second = outbox.claim(db, now=now, limit=10, max_attempts=5)
    assert [c.id for c in first] == ids and second == []
    assert {_row(db, i).state for i in ids} == {"sending"}


def test_a_lease_runs_from_the_claim_not_from_the_start_of_a_long_run(db, receiver):
    """A run that began an hour ago (the `now` it was given) claims its next batch with a lease from the clock:
    otherwise a second run would find the lease over and take a delivery still being sent for abandoned."""
    [delivery_id] = _enqueue(db, receiver.url, ["一"])
    outbox.claim(db, now=datetime.utcnow() - timedelta(hours=1), limit=10, max_attempts=5)
    assert outbox.expire_leases(db, now=datetime.utcnow()) == 0
    assert _row(db, delivery_id).next_attempt_at > datetime.utcnow() + outbox.LEASE - timedelta(minutes=1)


def test_a_sender_killed_mid_send_leaves_the_delivery_uncertain_and_it_is_not_sent_again(bureau, system, receiver):
    """`chunfeng inbox deliver` is killed (SIGKILL) while the receiver holds its first request: that message went
    out but the outcome was never recorded. The next run sends the two it never reached; past the lease it marks
    the first uncertain and does not resend it; an official who has checked may requeue it, and it goes out again."""
    with bureau.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110101", url=receiver.url, channel_rules=LOOPBACK)
        for title in ("督办单", "催办一", "催办二"):
            inbox.post(s, unit=find_unit(session=s, code="110101"), kind="reminder", title=title)
    env = {**os.environ, "CHUNFENG_DATABASE_URL": bureau.url}
    proc = subprocess.Popen([sys.executable, "-m", "chunfeng", "inbox", "deliver"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    receiver.on_receive = lambda: os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL and receiver.titles == ["督办单"]
    receiver.on_receive = None
    with bureau.read() as s:
        states = dict(s.execute(select(outbox.Delivery.title, outbox.Delivery.state)).all())
        killed = s.scalars(select(outbox.Delivery.id).where(outbox.Delivery.title == "督办单")).one()
    assert states == {"督办单": "sending", "催办一": "pending", "催办二": "pending"}
    settings = get_settings()
    run = inbox.deliver_pending(bureau, settings=settings)  # the next run, within the lease
    assert (run.uncertain, run.sent) == (0, 2) and receiver.titles == ["督办单", "催办一", "催办二"]
    later = datetime.utcnow() + outbox.LEASE + timedelta(minutes=1)
    run = inbox.deliver_pending(bureau, settings=settings, now=later)
    assert (run.uncertain, run.sent) == (1, 0)
    assert inbox.deliver_pending(bureau, settings=settings, now=later + timedelta(days=1)).sent == 0
    assert _row(bureau, killed).state == "uncertain" and len(receiver.titles) == 3
    with bureau.write() as s:
        assert outbox.requeue(s, outbox.Delivery.id == killed) == 1
    assert inbox.deliver_pending(bureau, settings=settings, now=later).sent == 1
    assert receiver.titles.count("督办单") == 2 and _row(bureau, killed).state == "sent"
    assert _row(bureau, killed).attempts == 1  # the interrupted attempt did not count


def test_a_delivery_requeued_after_its_last_attempt_was_interrupted_still_goes(db, receiver):
    [delivery_id] = _enqueue(db, receiver.url, ["提醒"])
    settings = get_settings().model_copy(update={"push_max_attempts": 1})
    now = datetime.utcnow()
    outbox.claim(db, now=now, limit=1, max_attempts=1)  # and the sender died
    assert outbox.expire_leases(db, now=now + outbox.LEASE + timedelta(minutes=1)) == 1
    with db.write() as session:
        outbox.requeue(session, outbox.Delivery.id == delivery_id)
    assert outbox.deliver_due(db, settings=settings).sent == 1 and receiver.titles == ["提醒"]


def test_failures_are_retried_with_doubling_waits_until_the_attempts_are_used(db, receiver):
    [delivery_id] = _enqueue(db, receiver.url, ["提醒"])
    settings = get_settings().model_copy(update={"push_max_attempts": 3})
    receiver.status = 500
    now = datetime(2026, 12, 7, 9, 0)
    assert outbox.deliver_due(db, settings=settings, now=now).failed == 1
    row = _row(db, delivery_id)
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 1, now + timedelta(minutes=5))
    assert "未接受" in row.last_error
    assert outbox.deliver_due(db, settings=settings, now=now + timedelta(minutes=4)).failed == 0  # not yet due
    outbox.deliver_due(db, settings=settings, now=now + timedelta(minutes=5))
    row = _row(db, delivery_id)
    assert (row.attempts, row.next_attempt_at) == (2, now + timedelta(minutes=15))  # then 10 minutes
    outbox.deliver_due(db, settings=settings, now=now + timedelta(minutes=15))
    receiver.status = 200
    assert outbox.deliver_due(db, settings=settings, now=now + timedelta(days=1)).sent == 0  # gave up after 3
    assert (_row(db, delivery_id).state, _row(db, delivery_id).attempts) == ("failed", 3)
    assert len(receiver.titles) == 3


def test_a_named_channel_is_filled_from_its_template_and_the_payload_is_encrypted_at_rest(db, receiver, monkeypatch):
    monkeypatch.setenv("CHUNFENG_PUSH_CHANNELS", json.dumps({"sms": receiver.url + "?to={address}"}))
    get_settings.cache_clear()
    with db.write() as session:
        row = outbox.enqueue(session, origin="test.thing", origin_id=1, scope="/000000/", channel="sms",
                             target="13900001111", title="申报提醒", body="李四您好:请于15日前申报")
        session.flush()
        delivery_id = row.id
    with db.read() as session:
        raw = session.execute(text("SELECT target, body FROM outbox_delivery")).one()
    assert all(v.startswith("sm4gcm:") for v in raw) and "13900001111" not in raw[0] and "李四" not in raw[1]
    assert outbox.deliver_due(db, settings=get_settings()).sent == 1 and receiver.titles == ["申报提醒"]
    assert outbox.masked_target("sms", "13900001111") == "139****1111"
    unconfigured = get_settings().model_copy(update={"push_channels": {}})
    with db.write() as session:
        outbox.enqueue(session, origin="test.thing", origin_id=2, scope="/000000/", channel="email",
                       target="a@b.cn", title="x")
    assert outbox.deliver_due(db, settings=unconfigured).failed == 1
    with db.read() as session:
        assert "未配置" in session.scalars(select(outbox.Delivery.last_error).where(
            outbox.Delivery.id != delivery_id)).one()


def test_a_batch_is_claimed_and_recorded_together_fresh_rows_first_each_sent_once(db, receiver):
    """A campaign's sender claims `batch` at a time: every message goes once, in id order, and a retry that is due
    comes after the rows never tried (it was failed first; the fresh rows are read off the queue index)."""
    [retry] = _enqueue(db, receiver.url, ["重试"])
    with db.write() as session:
        session.execute(update(outbox.Delivery).where(outbox.Delivery.id == retry).values(
            state="failed", attempts=1, next_attempt_at=datetime.utcnow() - timedelta(minutes=1)))
    ids = _enqueue(db, receiver.url, [f"消息 {i}" for i in range(7)])
    claimed = outbox.claim(db, now=datetime.utcnow(), limit=7, max_attempts=5, origin="test.thing")
    assert [c.id for c in claimed] == ids  # the older retry waits for the fresh rows
    assert [c.id for c in outbox.claim(db, now=datetime.utcnow(), limit=7, max_attempts=5)] == [retry]
    with db.write() as session:  # back to the queue, for the run below
        session.execute(update(outbox.Delivery).values(state="pending", next_attempt_at=None))
    run = outbox.deliver_due(db, settings=get_settings(), origin="test.thing", batch=3)
    assert run.sent == 8 and Counter(receiver.titles) == Counter(["重试", *[f"消息 {i}" for i in range(7)]])
    assert {_row(db, i).state for i in [*ids, retry]} == {"sent"}


def test_the_claim_reads_fresh_rows_off_an_index_without_sorting_the_queue(db):
    """A campaign of a million pending rows made every claim read and sort all of them (ORDER BY id over the rows
    the state index found): 41 ms a claim at 2,000, growing with the queue. Now SQLite walks the queue index."""
    if not db.url.startswith("sqlite"):
        pytest.skip("the plan checked is SQLite's")
    query = (select(outbox.Delivery.id).where(outbox.Delivery.state == "pending", outbox.Delivery.next_attempt_at.is_(None),
                                               outbox.Delivery.attempts < 5, outbox.Delivery.origin == "push.message")
             .order_by(outbox.Delivery.id).limit(50))
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    assert "ix_outbox_delivery_queue" in plan and "TEMP B-TREE" not in plan, plan


def test_a_failure_inside_a_concurrent_batch_is_retried_alone(db, receiver):
    """Eight sends of a batch in flight at once; the gateway refuses one of them. That one is recorded failed with
    its retry time and sent again later; the others are sent once and never again."""
    titles = [f"消息 {i}" for i in range(12)]
    ids = _enqueue(db, receiver.url, titles)
    receiver.delay, receiver.refused = 0.05, {"消息 5"}  # the sends of a batch overlap
    settings = get_settings().model_copy(update={"push_max_attempts": 3})
    now = datetime(2026, 12, 7, 9, 0)
    run = outbox.deliver_due(db, settings=settings, now=now, origin="test.thing", batch=12, concurrency=8)
    assert (run.sent, run.failed) == (11, 1)
    failed = _row(db, ids[5])
    assert (failed.state, failed.attempts, failed.next_attempt_at) == ("failed", 1, now + timedelta(minutes=5))
    assert {_row(db, i).state for i in ids if i != ids[5]} == {"sent"}
    receiver.refused = set()
    run = outbox.deliver_due(db, settings=settings, now=now + timedelta(minutes=5), origin="test.thing", batch=12,
                             concurrency=8)
    assert (run.sent, run.failed) == (1, 0) and _row(db, ids[5]).attempts == 2
    assert Counter(receiver.titles) == Counter(titles)  # each accepted exactly once


def test_two_senders_with_concurrent_batches_deliver_each_message_once(db, receiver):
    """Two campaign senders (two replicas, or the schedule and a command) each with eight sends in flight: every
    message reaches the gateway once, and the sends really overlapped (more than one request held at a time)."""
    titles = [f"邀请 {i}" for i in range(120)]
    _enqueue(db, receiver.url, titles)
    held, most, lock = [0], [0], threading.Lock()

    def on_receive():  # the gateway holds each request a while, counting how many it holds at once
        with lock:
            held[0] += 1
            most[0] = max(most[0], held[0])
        time.sleep(0.02)  # long enough that a sender started late on a loaded machine still finds work
        with lock:
            held[0] -= 1

    receiver.on_receive = on_receive
    settings = get_settings()
    runs = _two_senders_at_once(
        lambda: outbox.deliver_due(db, settings=settings, origin="test.thing", batch=10, concurrency=8))
    assert Counter(receiver.titles) == Counter(titles)  # every one, none twice
    assert sum(r.sent for r in runs) == len(titles) and all(r.sent for r in runs)
    with db.read() as s:
        assert Counter(s.scalars(select(outbox.Delivery.state))) == {"sent": len(titles)}
    assert most[0] > 1


@pytest.fixture
def gateway(monkeypatch):
    """A receiver that keeps connections alive (HTTP/1.1), as a real gateway does."""
    r = Webhook(keep_alive=True)
    monkeypatch.setenv("CHUNFENG_CHANNEL_HOSTS_ALLOWED", '["127.0.0.1"]')
    get_settings.cache_clear()
    yield r
    r.close()
    get_settings.cache_clear()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_run_sends_its_messages_over_connections_kept_alive(db, gateway, concurrency):
    """Apprise's plugins open a connection (and build a requests session) per message: most of a campaign sender's
    CPU. A run now reuses at most one connection per send in flight; every message still arrives once."""
    titles = [f"邀请 {i}" for i in range(30)]
    _enqueue(db, gateway.url, titles)
    run = outbox.deliver_due(db, settings=get_settings(), origin="test.thing", batch=10, concurrency=concurrency)
    assert run.sent == len(titles) and Counter(gateway.titles) == Counter(titles)
    assert gateway.connections <= concurrency  # 30 before


def test_a_gateways_cookie_is_not_sent_back_with_the_next_message(db, gateway):
    """A kept session would otherwise carry a cookie from one message to the next (or to another channel)."""
    gateway.cookie = "session=abc; Path=/"
    _enqueue(db, gateway.url, ["一", "二", "三"])
    outbox.deliver_due(db, settings=get_settings(), origin="test.thing", batch=3)
    assert gateway.cookies == [None, None, None] and gateway.connections == 1


def test_a_thread_outside_the_senders_keeps_requests_own_behaviour(gateway):
    """Only the threads a sender binds use its session: another thread's requests (a page testing a channel) open
    their own connections, as requests does."""
    url = gateway.url.replace("json://", "http://")
    with channels.keep_alive() as bind:
        for _ in range(2):
            requests.post(url, json={"title": "发送中"}, timeout=5)
        assert gateway.connections == 1
        other = threading.Thread(target=lambda: [requests.post(url, json={"title": "测试"}, timeout=5)
                                                 for _ in range(2)])
        other.start()
        other.join()
        assert gateway.connections == 3
        helper = threading.Thread(target=lambda: (bind(), requests.post(url, json={"title": "发送中"}, timeout=5)))
        helper.start()
        helper.join()
        assert gateway.connections == 3  # a bound thread shares the session's connection
    requests.post(url, json={"title": "之后"}, timeout=5)
    assert gateway.connections == 4  # outside the block: requests' own, again


def test_two_sender_processes_deliver_each_message_exactly_once(db, gateway):
    """`chunfeng push deliver --processes 2`: two sender processes claim from one queue at once (SKIP LOCKED on
    PostgreSQL, the one writer on SQLite); both send, and every message reaches the gateway once."""
    titles = [f"邀请 {i}" for i in range(240)]
    _enqueue(db, gateway.url, titles, origin="push.message")
    gateway.delay = 0.1  # one process alone would need 6 s: the second, started a moment later, finds work
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "CHUNFENG_CHANNEL_HOSTS_ALLOWED": '["127.0.0.1"]',
           "CHUNFENG_PUSH_SEND_BATCH": "5", "CHUNFENG_PUSH_SEND_CONCURRENCY": "4"}
    done = subprocess.run([sys.executable, "-m", "chunfeng", "push", "deliver", "--processes", "2", "--limit", "1000"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert Counter(gateway.titles) == Counter(titles)  # every one, none twice
    assert "发送成功 240," in done.stdout
    shares = [int(n) for n in done.stdout.split("各发送:")[1].split()[0].split("、")]
    assert len(shares) == 2 and sum(shares) == 240 and all(shares)
    with db.read() as s:
        assert Counter(s.scalars(select(outbox.Delivery.state))) == {"sent": len(titles)}
        assert s.scalar(select(outbox.Delivery.attempts).distinct()) == 1
