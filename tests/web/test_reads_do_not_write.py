"""A signed-in page that only reads does not write: it answers while another process holds the write lock,
and the session's last-seen time is refreshed at most once a minute (issue 13)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from chunfeng.org.models import UserSession
from tests.conftest import login


def _last_seen(db):
    with db.read() as s:
        return s.scalar(select(UserSession.last_seen_at))


def test_ledger_answers_while_the_database_is_write_locked(db, server, with_plan, make_user):
    if not db.is_sqlite:
        pytest.skip("the one write lock is SQLite's; PostgreSQL's row locks are covered by the last-seen test")
    import sqlite3

    make_user("reader", "110000", ["viewer"])
    client = login(server, "reader")
    assert client.get("/ledger").status_code == 200  # warm: the first page builds what it caches
    # Another process's import or scan: the database's one write lock, held for the whole check.
    blocker = sqlite3.connect(db.engine.url.database, timeout=1, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        for path in ("/ledger", "/plan"):
            # The timeout only stops a hang (a writer waits up to 30 s for the lock); it is not a timing assertion.
            response = client.get(path, timeout=10)
            assert response.status_code == 200, path
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_last_seen_is_written_at_most_once_a_minute(db, server, with_plan, make_user):
    make_user("watcher", "110000", ["viewer"])
    client = login(server, "watcher")
    signed_in = _last_seen(db)
    assert client.get("/ledger").status_code == 200
    assert client.get("/ledger").status_code == 200
    assert _last_seen(db) == signed_in  # two pages within a minute: no write

    with db.write() as s:  # a minute and a half later, still well inside the 30-minute idle limit
        s.scalar(select(UserSession)).last_seen_at -= timedelta(seconds=90)
    earlier = _last_seen(db)
    assert client.get("/ledger").status_code == 200
    deadline = time.monotonic() + 10  # refreshed just after the page answered
    while _last_seen(db) == earlier and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _last_seen(db) > earlier + timedelta(seconds=60)  # kept, and its idle clock reset


def test_an_idle_session_is_still_refused(db, server, with_plan, make_user):
    make_user("sleeper", "110000", ["viewer"])
    client = login(server, "sleeper")
    with db.write() as s:
        s.scalar(select(UserSession)).last_seen_at -= timedelta(minutes=31)
    response = client.get("/ledger")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert _last_seen(db) is None  # and removed
    with httpx.Client(base_url=server) as anonymous:
        assert anonymous.get("/ledger").status_code == 303
