"""The TOTP second factor over real HTTP, on a server that requires it of administrators (the shared test
server does not): enrolment before anything else, then no login without the right code."""

from __future__ import annotations

import re

import httpx
import pyotp
import pytest
from sqlalchemy import select, text

from chunfeng.org.models import AuditEntry, User
from chunfeng.settings import Settings
from tests.conftest import PASSWORD, csrf_from, serving


@pytest.fixture(scope="module")
def strict_server(_database, server_files):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        scan_interval_minutes=0, data_dir=str(server_files), rate_limits={},
                        totp_required_roles=["admin"])
    with serving(_database, settings) as url:
        yield url


def sign_in(server, username, code=""):
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "code": code,
                                           "csrf_token": token, "next": "/"})
    return client, response


def test_administrators_enrol_then_need_the_code(db, add_users, strict_server):
    add_users({"root": ("000000", ["admin"]), "reader": ("000000", ["viewer"])})
    client, first = sign_in(strict_server, "root")
    assert first.status_code == 303
    assert client.get("/org").headers["location"] == "/totp"  # nothing else until enrolled
    page = client.get("/totp").text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)[1]
    wrong = client.post("/totp", data={"secret": secret, "code": "000000", "csrf_token": csrf_from(page)})
    assert wrong.status_code == 400 and "动态口令不正确" in wrong.text
    done = client.post("/totp", data={"secret": secret, "code": pyotp.TOTP(secret).now(), "csrf_token": csrf_from(page)})
    assert done.status_code == 303 and client.get("/org").headers.get("location", "") != "/totp"
    _, without = sign_in(strict_server, "root")
    assert without.status_code == 401 and "动态口令不正确" in without.text
    _, bad = sign_in(strict_server, "root", "123456" if pyotp.TOTP(secret).now() != "123456" else "654321")
    assert bad.status_code == 401
    _, good = sign_in(strict_server, "root", pyotp.TOTP(secret).now())
    assert good.status_code == 303
    reader, ok = sign_in(strict_server, "reader")  # other roles are not asked
    assert ok.status_code == 303 and reader.get("/org").headers.get("location", "") != "/totp"
    with db.read() as s:
        assert s.scalar(select(User.totp_secret).where(User.username == "root")) == secret
        stored = s.scalar(text("SELECT totp_secret FROM org_user WHERE username = 'root'"))
        assert stored.startswith("sm4gcm:") and secret not in stored  # at rest under SM4
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "org.totp.enrolled")) == "root"
        failed = list(s.scalars(select(AuditEntry.after).where(AuditEntry.action == "org.login.failed")))
        assert len(failed) == 2 and all('"second_factor":true' in f.replace(" ", "") for f in failed)
