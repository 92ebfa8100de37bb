"""Login controls over real HTTP: lockout after repeated wrong passwords, every attempt in the audit log with
its source address, and per-address rate limits on login and the public endpoints (their own server)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from chunfeng.db import utcnow
from chunfeng.org.models import AuditEntry, LoginFailure
from chunfeng.settings import Settings
from tests.conftest import PASSWORD, TEST_DATA_KEY, csrf_from, serving


def attempt(server, username, password):
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/"})


def test_five_wrong_passwords_lock_the_account_and_everything_is_logged(db, add_users, server):
    add_users({"alice": ("110000", ["viewer"])})
    for n in range(4):
        assert attempt(server, "alice", f"wrong-{n}").status_code == 401
    locked = attempt(server, "alice", "wrong-4")
    assert locked.status_code == 401 and "已锁定 15 分钟" in locked.text
    refused = attempt(server, "alice", PASSWORD)  # even the right password, while locked
    assert refused.status_code == 401 and "锁定" in refused.text
    assert attempt(server, "nobody", PASSWORD).status_code == 401
    with db.read() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("org.login.%"))
                                 .order_by(AuditEntry.seq)))
        assert actions == ["org.login.failed"] * 4 + ["org.login.locked", "org.login.refused_locked", "org.login.failed"]
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "org.login.locked"))
        assert (entry.actor, entry.actor_unit, entry.outcome, entry.source) == ("alice", "110000", "failure", "127.0.0.1")
    with db.write() as s:  # the lock runs out
        s.scalar(select(LoginFailure).where(LoginFailure.username == "alice")).locked_until = utcnow() - timedelta(seconds=1)
    assert attempt(server, "alice", PASSWORD).status_code == 303
    with db.read() as s:
        assert s.scalar(select(LoginFailure).where(LoginFailure.username == "alice")) is None  # a good login forgets
        last = s.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert (last.action, last.outcome, last.source) == ("org.login.succeeded", "success", "127.0.0.1")


@pytest.fixture(scope="module")
def limited_server(_database, server_files):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test", data_key=TEST_DATA_KEY,
                        scan_interval_minutes=0, data_dir=str(server_files), rate_limits={"login": 3, "consult": 4,
                                                                                           "appeals": 2})
    with serving(_database, settings) as url:
        yield url


def test_rate_limits_per_address_and_bucket(db, add_users, limited_server):
    add_users({"bob": ("110000", ["viewer"])})
    codes = [attempt(limited_server, "bob", "wrong").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    with httpx.Client(base_url=limited_server) as client:
        asks = [client.get("/api/consult", params={"q": "个税怎么交"}).status_code for _ in range(5)]
        assert 429 not in asks[:4] and asks[4] == 429
        refused = client.get("/api/consult", params={"q": "个税"})
        assert refused.status_code == 429 and "请求过于频繁" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 0
        body = {"kind": "demand", "text": "希望延长服务时间", "phone": "13900001111"}
        assert [client.post("/api/appeals", json=body).status_code for _ in range(3)] == [201, 201, 429]
        assert client.get("/healthz").status_code == 200  # other pages are not limited


def test_users_see_and_end_their_own_sessions(db, add_users, server):
    from tests.conftest import login

    add_users({"erin": ("110000", ["viewer"]), "frank": ("110000", ["viewer"])})
    laptop, phone = login(server, "erin"), login(server, "erin")
    page = laptop.get("/sessions").text
    assert page.count("<tr><td>") == 2 and "当前会话" in page and "127.0.0.1" in page
    other = re.search(r'action="/sessions/(\d+)/end"', page)[1]
    stranger = login(server, "frank")
    assert stranger.post(f"/sessions/{other}/end", data={"csrf_token": csrf_from(stranger.get("/sessions").text)}
                         ).status_code == 404  # not theirs
    assert laptop.post(f"/sessions/{other}/end", data={"csrf_token": csrf_from(page)}).status_code == 303
    assert phone.get("/sessions").status_code in (303, 401)  # that browser is signed out
    assert laptop.get("/sessions").status_code == 200
    with db.read() as s:
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "org.session.ended")) == "erin"
