"""Login, logout, CSRF, session expiry and security headers over a real HTTP server."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from chunfeng.org.models import UserSession
from tests.conftest import PASSWORD, csrf_from, login


def test_pages_need_a_login(db, server):
    with httpx.Client(base_url=server) as client:
        response = client.get("/plan/measures/1")
        assert response.status_code == 303 and response.headers["location"] == "/login?next=/plan/measures/1"
        assert client.get("/plan", headers={"HX-Request": "true"}).status_code == 401


def test_login_wrong_password_and_unknown_user(db, server, make_user):
    make_user("hank", "110000", ["viewer"])
    with httpx.Client(base_url=server) as client:
        token = csrf_from(client.get("/login").text)
        for username, password in (("hank", "Wrong-password-1"), ("nobody", PASSWORD)):
            response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
            assert response.status_code == 401 and "用户名、密码或动态口令错误" in response.text
            assert "cf_session" not in response.cookies


def test_login_sets_a_safe_cookie_and_redirects_only_inside(db, server, make_user, with_plan):
    make_user("ivy", "110000", ["viewer"])
    with httpx.Client(base_url=server) as client:
        token = csrf_from(client.get("/login").text)
        response = client.post("/login", data={"username": "ivy", "password": PASSWORD, "csrf_token": token,
                                                "next": "//evil.example/phish"})
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert client.get("/plan").status_code == 200


def test_post_without_csrf_token_is_refused(db, server, make_user):
    make_user("jack", "110000", ["viewer"])
    with httpx.Client(base_url=server) as client:
        client.get("/login")
        response = client.post("/login", data={"username": "jack", "password": PASSWORD})
        assert response.status_code == 403 and "CSRF" in response.text
        assert "cf_session" not in response.cookies
    client = login(server, "jack")
    assert client.post("/logout").status_code == 403  # no token: still logged in
    assert client.post("/logout", data={"csrf_token": "0" * 64}).status_code == 403
    token = csrf_from(client.get("/login").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/plan").status_code == 303  # logged out
    with db.read() as s:
        assert s.scalar(select(UserSession)) is None


def test_expired_session_goes_back_to_login(db, server, make_user, with_plan):
    make_user("kate", "110000", ["viewer"])
    client = login(server, "kate")
    assert client.get("/plan").status_code == 200
    with db.write() as s:
        for row in s.scalars(select(UserSession)):
            row.last_seen_at -= timedelta(minutes=31)
    response = client.get("/plan")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_security_headers(db, server):
    response = httpx.get(f"{server}/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in response.text and "onclick" not in response.text


def test_static_assets_are_served_locally(db, server):
    page = httpx.get(f"{server}/login").text
    assert "http://" not in page.replace(server, "") and "https://" not in page
    assert httpx.get(f"{server}/static/htmx.min.js").status_code == 200


def test_each_role_lands_on_its_work(db, server, add_users, county, with_plan):
    """Issue 14.11: everyone landed on the notice's text. A reporter starts on the to-do list, the action office on
    the review queue, an agent on the hand-off queue, a service officer on the appeals; the page answers 200."""
    add_users({"rep": (county, ["unit_reporter"]), "office1": ("110000", ["action_office"]), "agent1": ("110000", ["agent"]),
               "officer1": ("110000", ["service_officer"]), "view1": ("110000", ["viewer"]),
               "admin1": ("110000", ["admin"]), "both": ("110000", ["viewer", "unit_reporter"])})
    expected = {"rep": "/ledger/todo", "office1": "/ledger/review", "agent1": "/consult/queue", "officer1": "/appeals",
                "view1": "/ledger", "admin1": "/org/units/110000", "both": "/ledger/todo"}
    for username, page in expected.items():
        client = login(server, username)
        home = client.get("/", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == page, username
        assert client.get(page).status_code == 200, username
