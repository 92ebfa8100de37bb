"""The shared rate limits on the test database (SQLite, or PostgreSQL when CHUNFENG_DATABASE_URL is set): the count
is exact without a window edge, a ceiling spreads the times it gives, and a store held by a long write never holds
a request — the process counts on its own meanwhile. Across real processes: tests/test_replicas.py."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import event, text

from chunfeng.ratelimit import RateLimiter, RateState, Rule, advance
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, serving


@pytest.fixture
def limiter(db):
    made = RateLimiter(db.url, write_lock=db.write_lock)  # as the app makes it
    yield made
    made.dispose()


def test_a_limit_admits_n_a_period_without_a_window_edge(limiter):
    rule = Rule("login", "203.0.113.9", 3, 60)
    at = 1_800_000_000.0
    assert [limiter.take([rule], now=at + n) for n in range(3)] == [None] * 3
    refused = limiter.take([rule], now=at + 3)
    assert refused.rule is rule and refused.seconds == 17  # back on schedule at +20 (one slot per 20 s)
    assert limiter.take([rule], now=at + 19.9) is not None  # refusals are not counted against the client
    assert limiter.take([rule], now=at + 20) is None
    assert limiter.take([rule], now=at + 20.5) is not None
    assert limiter.take([Rule("login", "203.0.113.10", 3, 60)], now=at + 20.5) is None  # another address


def test_a_ceiling_counts_refusals_so_the_times_it_gives_spread_out(limiter):
    ceiling = Rule("appeals", "*", 4, 1.0, backlog=60)
    at = 1_800_000_000.0
    answers = [limiter.take([ceiling], now=at) for _ in range(12)]
    assert answers[:4] == [None] * 4
    waits = [a.retry_after for a in answers[4:]]
    assert waits == sorted(waits) and waits[-1] - waits[0] == pytest.approx(7 * 0.25)  # one slot further each
    assert limiter.take([ceiling], now=at + 100) is None  # the backlog is bounded: later, admitted again


def test_a_high_ceiling_is_leased_in_slots_and_the_fleet_never_exceeds_it(db, limiter):
    """Two processes' counters on one database under a ceiling of 1,000 a second: each takes slots by the lease
    (one write for many requests), and together they admit no more than the ceiling, nor much less."""
    other = RateLimiter(db.url, write_lock=db.write_lock)
    ceiling, at = Rule("consult", "*", 1000, 1.0, backlog=60), 1_800_000_000.0
    statements = []
    for counter in (limiter, other):
        event.listen(counter.engine, "before_cursor_execute", lambda *args: statements.append(1))
    try:
        answers = [(limiter, other)[n % 2].take([ceiling], now=at) for n in range(900)]
        assert answers == [None] * 900
        assert len(statements) <= 3 * 900 // ceiling.lease  # was 900 and more: one write a request
        answers = [(limiter, other)[n % 2].take([ceiling], now=at + 0.01) for n in range(400)]
        admitted = 900 + answers.count(None)
        allowed = 1000 + 10  # the ceiling's burst, and the 10 slots that 10 ms at 1,000 a second free
        assert allowed - 2 * ceiling.lease <= admitted <= allowed  # never over; at most a lease each unused
        refused = [a for a in answers if a is not None]
        assert refused and all(a.retry_after > 0 for a in refused)
        assert limiter.take([ceiling], now=at + 10) is None  # later, admitted again
        assert limiter.take([Rule("consult", "*", 4, 1.0, backlog=60)], now=at).rule.limit == 4  # low: no lease
    finally:
        other.dispose()


@pytest.mark.parametrize("backlog", [0, 5])
def test_the_statement_and_the_fallback_in_memory_apply_one_rule(limiter, backlog):
    rule, at = Rule("consult", "*", 2, 1.0, backlog=backlog), 100.0
    state, in_memory, in_store = None, [], []
    for step in (0, 0, 0, 0.1, 0.6, 3, 3, 3, 3, 3.2, 9):
        state, refused = advance(state, at + step, rule)
        in_memory.append(refused)
        in_store.append(limiter.take([rule], now=at + step) is not None)
    assert in_store == in_memory and True in in_memory and in_memory[-1] is False


def test_a_locked_store_never_holds_the_request(db, limiter):
    rule = Rule("consult", "198.51.100.7", 2, 60)
    # A long write in another process (an import) holding what the counter needs: SQLite's write lock, or the table.
    with db.engine.execution_options(sqlite_immediate=True).connect() as other:
        other.begin()
        if not db.is_sqlite:
            other.execute(text("LOCK TABLE rate_limit IN EXCLUSIVE MODE"))
        began = time.monotonic()
        answers = [limiter.take([rule]) for _ in range(3)]
        waited = time.monotonic() - began
        other.rollback()
    assert answers[:2] == [None, None] and answers[2] is not None  # counted in the process meanwhile
    assert waited < 3 * (limiter.wait_seconds + 0.5)
    with db.read() as s:
        assert s.query(RateState).count() == 0
    assert limiter.take([Rule("consult", "198.51.100.8", 2, 60)]) is None  # the store answers again
    with db.read() as s:
        assert s.query(RateState).count() == 1


def test_the_message_centre_has_its_ceiling_and_a_page_saying_when_to_come_back(db, _database, server_files,
                                                                               add_users):
    from tests.conftest import login

    add_users({"taxpayer1": ("110000", ["taxpayer"])})
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files),
                        push_store=str(server_files / "taxpayers.duckdb"), totp_required_roles=[], rate_limits={},
                        rate_ceilings={"inbox": 1})
    with serving(_database, settings) as url:
        citizen = login(url, "taxpayer1")
        codes = [citizen.get(path).status_code for path in ("/push/inbox", "/push/inbox/1", "/push/bill")]
        assert 429 in codes
        busy = citizen.get("/push/inbox")
        assert busy.status_code == 429 and "访问人数较多" in busy.text and "北京时间" in busy.text
        assert int(busy.headers["retry-after"]) >= 1
        assert citizen.get("/sessions").status_code == 200  # other pages are not under the ceiling
        assert httpx.get(f"{url}/healthz").status_code == 200
