"""Password policy over real HTTP and on the database: strength, history, forced change of an initial or reset
password, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from chunfeng.db import utcnow
from chunfeng.org import services
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import AuditEntry, User
from chunfeng.org.passwords import password_problem
from tests.conftest import PASSWORD, csrf_from, login


@pytest.mark.parametrize("password, words", [
    ("Short-1", "至少需要 10 位"), ("alllowercase1", "至少三类"), ("NoDigitsOrSymbols", "至少三类"),
    ("Carol-2022-pass", "不能包含用户名"),
])
def test_weak_passwords_are_refused(password, words):
    assert words in password_problem(password, username="carol")


def test_an_initial_password_must_be_changed_first_and_history_is_kept(db, system, server):
    with db.write() as s:
        services.add_user(session=s, actor=system, username="carol", display_name="carol", unit_code="110000",
                          roles=["viewer"], password=PASSWORD)
    client = login(server, "carol")
    assert client.get("/inbox").headers["location"] == "/password"  # nothing else until it is changed
    form = client.get("/password").text
    assert "初始或重置的密码" in form
    token = csrf_from(form)
    same = client.post("/password", data={"current": PASSWORD, "new": PASSWORD, "again": PASSWORD, "csrf_token": token})
    assert same.status_code == 400 and "最近 5 次" in same.text
    weak = client.post("/password", data={"current": PASSWORD, "new": "weakweak", "again": "weakweak", "csrf_token": token})
    assert weak.status_code == 400 and "至少需要" in weak.text
    wrong = client.post("/password", data={"current": "Not-the-pass-1", "new": "Brand-new-pass-1", "again": "Brand-new-pass-1",
                                           "csrf_token": token})
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.text
    done = client.post("/password", data={"current": PASSWORD, "new": "Brand-new-pass-1", "again": "Brand-new-pass-1",
                                          "csrf_token": token})
    assert done.status_code == 303
    assert client.get("/inbox").status_code == 200
    with db.read() as s:
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "org.password.changed")) == "carol"
    # An administrator's reset forces a change again; an old password cannot come back.
    with db.write() as s:
        services.reset_password(session=s, actor=system, username="carol", new="Temporary-pass-9")
    again = login(server, "carol", "Temporary-pass-9")
    assert again.get("/inbox").headers["location"] == "/password"
    with db.write() as s, pytest.raises(ValidationFailed, match="最近 5 次"):
        user = s.scalar(select(User).where(User.username == "carol"))
        services.change_password(session=s, user=user, current="Temporary-pass-9", new=PASSWORD)


def test_an_expired_password_must_be_changed(db, add_users, server):
    add_users({"dave": ("110000", ["viewer"])})
    with db.write() as s:
        s.scalar(select(User).where(User.username == "dave")).password_changed_at = utcnow() - timedelta(days=91)
    client = login(server, "dave")
    assert client.get("/inbox").headers["location"] == "/password"
    assert client.get("/api/consult", params={"q": "个税"}).status_code == 200  # public pages stay open
