"""The TOTP second factor over real HTTP, on a server that requires it of administrators (the shared test
server does not): enrolment before anything else, then no login without a fresh code; each code is good once
(RFC 6238 §5.2), the server alone chooses secrets, and replacing a secret needs the current factor."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pyotp
import pytest
from sqlalchemy import select, text

from chunfeng.org.models import AuditEntry, User
from chunfeng.org.services import LOGIN_FAILED
from chunfeng.settings import Settings
from tests.conftest import PASSWORD, TEST_DATA_KEY, csrf_from, serving


@pytest.fixture(scope="module")
def strict_server(_database, server_files):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files), rate_limits={},
                        totp_required_roles=["admin"])
    with serving(_database, settings) as url:
        yield url


def sign_in(server, username, code="", password=PASSWORD):
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": password, "code": code,
                                           "csrf_token": token, "next": "/"})
    return client, response


def issue(client) -> tuple[str, str]:
    """Ask the server for a new secret; the secret and the page showing it."""
    token = csrf_from(client.get("/totp").text)
    assert client.post("/totp/secret", data={"csrf_token": token}).status_code == 303
    page = client.get("/totp").text
    return re.search(r'id="totp-secret">([A-Z2-7]+)<', page)[1], page


def step_now() -> int:
    return int(time.time()) // 30


def error_of(html: str) -> str:
    return re.search(r'role="alert">([^<]*)<', html)[1]


def test_administrators_enrol_then_need_a_fresh_code(db, add_users, strict_server):
    add_users({"root": ("000000", ["admin"]), "reader": ("000000", ["viewer"])})
    client, first = sign_in(strict_server, "root")
    assert first.status_code == 303
    assert client.get("/org").headers["location"] == "/totp"  # nothing else until enrolled
    assert 'id="totp-secret"' not in client.get("/totp").text  # no secret until one is asked for (POST)
    secret, page = issue(client)
    assert 'name="secret"' not in page and 'name="current"' not in page  # first enrolment: no current factor yet
    totp = pyotp.TOTP(secret)
    wrong = client.post("/totp", data={"code": "000000" if totp.now() != "000000" else "111111",
                                       "csrf_token": csrf_from(page)})
    assert wrong.status_code == 400 and "动态口令不正确" in wrong.text
    step = step_now()
    done = client.post("/totp", data={"code": totp.generate_otp(step), "csrf_token": csrf_from(page)})
    assert done.status_code == 303 and client.get("/org").headers.get("location", "") != "/totp"

    _, without = sign_in(strict_server, "root")
    _, bad_password = sign_in(strict_server, "root", totp.generate_otp(step + 1), password="Wrong-password-1")
    _, enrolment_code = sign_in(strict_server, "root", totp.generate_otp(step))  # used once already, to enrol
    assert [r.status_code for r in (without, bad_password, enrolment_code)] == [401, 401, 401]
    # One message for a wrong password and a wrong or replayed code: which factor failed is not told.
    assert {error_of(r.text) for r in (without, bad_password, enrolment_code)} == {LOGIN_FAILED}

    _, good = sign_in(strict_server, "root", totp.generate_otp(step + 1))
    assert good.status_code == 303
    _, replayed = sign_in(strict_server, "root", totp.generate_otp(step + 1))  # the same code, still in its window
    _, earlier = sign_in(strict_server, "root", totp.generate_otp(step - 1))  # a step before the last accepted
    assert (replayed.status_code, earlier.status_code) == (401, 401) and error_of(replayed.text) == LOGIN_FAILED

    reader, ok = sign_in(strict_server, "reader")  # other roles are not asked
    assert ok.status_code == 303 and reader.get("/org").headers.get("location", "") != "/totp"
    with db.read() as s:
        root = s.scalar(select(User).where(User.username == "root"))
        assert (root.totp_secret, root.totp_last_step, root.totp_pending_secret) == (secret, step + 1, None)
        stored = s.scalar(text("SELECT totp_secret FROM org_user WHERE username = 'root'"))
        assert stored.startswith("sm4gcm:") and secret not in stored  # at rest under SM4
        assert s.scalar(select(AuditEntry.actor).where(AuditEntry.action == "org.totp.enrolled")) == "root"
        failed = list(s.scalars(select(AuditEntry.after).where(AuditEntry.action == "org.login.failed")))
        assert len(failed) == 5 and sum('"second_factor":true' in f.replace(" ", "") for f in failed) == 4


def test_one_code_opens_one_session_even_at_once(db, add_users, strict_server):
    """Two logins racing with the same code: the step is claimed in the database, so only one gets in."""
    add_users({"root": ("000000", ["admin"])})
    with db.write() as s:
        s.scalar(select(User).where(User.username == "root")).totp_secret = secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).generate_otp(step_now())
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: sign_in(strict_server, "root", code)[1].status_code, range(4)))
    assert codes == [303, 401, 401, 401]


def test_the_server_chooses_the_secret_and_a_change_needs_the_current_factor(db, add_users, strict_server):
    add_users({"root": ("000000", ["admin"]), "fresh": ("000000", ["admin"])})
    old = pyotp.random_base32()
    with db.write() as s:
        s.scalar(select(User).where(User.username == "root")).totp_secret = old

    # A secret chosen by the client (the form used to carry it back) is never taken.
    fresh, _ = sign_in(strict_server, "fresh")
    token = csrf_from(fresh.get("/totp").text)
    chosen = "A" * 32
    refused = fresh.post("/totp", data={"secret": chosen, "code": pyotp.TOTP(chosen).now(), "csrf_token": token})
    assert refused.status_code == 400 and "请先生成新的动态口令密钥" in refused.text
    issue(fresh)
    refused = fresh.post("/totp", data={"secret": chosen, "code": pyotp.TOTP(chosen).now(), "csrf_token": token})
    assert refused.status_code == 400

    # An open session alone cannot move the second factor to another phone.
    used = pyotp.TOTP(old).generate_otp(step_now() - 1)  # computed once: a step boundary may pass meanwhile
    client, _ = sign_in(strict_server, "root", used)
    new, page = issue(client)
    assert new != old and 'name="current"' in page
    attempts = [{}, {"current": "Wrong-password-1"}, {"current": used}]
    for extra in attempts:  # none, a wrong password, a code already used to log in
        response = client.post("/totp", data={"code": pyotp.TOTP(new).now(), "csrf_token": csrf_from(page), **extra})
        assert response.status_code == 400 and "当前动态口令或登录密码不正确" in response.text
    with db.read() as s:
        assert s.scalar(select(User.totp_secret).where(User.username == "root")) == old
        denied = s.scalars(select(AuditEntry.outcome).where(AuditEntry.action == "org.totp.change_refused"))
        assert list(denied) == ["denied"] * 3
    done = client.post("/totp", data={"code": pyotp.TOTP(new).now(), "current": PASSWORD, "csrf_token": csrf_from(page)})
    assert done.status_code == 303
    with db.read() as s:
        assert s.scalar(select(User.totp_secret).where(User.username == "fresh")) is None
        root = s.scalar(select(User).where(User.username == "root"))
        assert (root.totp_secret, root.totp_pending_secret) == (new, None)


def test_enrolment_shows_the_secret_as_an_offline_qr_code(db, add_users, strict_server):
    """Issue 14 item 10: the 32-character secret came without a QR code. The page now draws the otpauth URI as
    inline SVG (no image service, no inline style the CSP would block), the secret text kept as the fallback."""
    import html

    import segno
    add_users({"qr_root": ("000000", ["admin"])})
    client, _ = sign_in(strict_server, "qr_root")
    secret, page = issue(client)
    uri = html.unescape(re.search(r'id="totp-uri">([^<]+)<', page)[1])
    assert f"secret={secret}" in uri
    svg = re.search(r'id="totp-qr">\s*(<svg.*?</svg>)', page, re.S)[1]
    assert "style=" not in svg and "http" not in svg.replace("http://www.w3.org", "")
    assert svg == segno.make(uri, error="m").svg_inline(scale=5, light="#fff", title="动态口令二维码")
