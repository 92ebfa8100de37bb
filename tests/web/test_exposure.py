"""What the server gives away besides the page asked for: headers, caching, error pages, the health check, the
session cookie's lifetime, SQL parameters in error messages and the access log (over real HTTP)."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.exc import IntegrityError

from chunfeng.org.models import Unit
from chunfeng.web.server import ACCESS_LOG_FILTER, redact
from tests.conftest import login


def test_no_software_names_and_no_api_pages_from_a_cdn(server):
    health = httpx.get(f"{server}/healthz")
    assert health.status_code == 200 and "server" not in health.headers and set(health.json()) == {"status", "schema", "builds"}
    assert httpx.get(f"{server}/api/docs").status_code == 404 and httpx.get(f"{server}/api/redoc").status_code == 404
    assert httpx.get(f"{server}/api/openapi.json").json()["paths"]  # the schema itself stays for API clients


def test_every_response_but_static_assets_is_not_stored_and_refuses_device_features(db, add_users, server):
    add_users({"viewer": ("110000", ["viewer"])})
    client = login(server, "viewer")
    for path in ("/login", "/plan", "/plan/export.xlsx", "/appeals/track/no-such-token", "/healthz", "/nope"):
        response = client.get(path)
        assert response.headers["cache-control"] == "no-store", path
        assert "camera=()" in response.headers["permissions-policy"] and "geolocation=()" in \
            response.headers["permissions-policy"], path
    static = client.get("/static/app.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


def test_the_session_cookie_lasts_as_long_as_the_session_may(db, add_users, server):
    add_users({"viewer": ("110000", ["viewer"])})
    client = httpx.Client(base_url=server, follow_redirects=False)
    from tests.conftest import PASSWORD, csrf_from

    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": token})
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("cf_session="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert f"Max-Age={12 * 3600}" in cookie and {"httponly", "samesite"} <= attributes  # the server's 12 hours


@pytest.mark.parametrize("path", ["/no/such/page", "/plan/no-such-route/deeper"])
def test_unknown_paths_are_a_chinese_page_for_browsers_and_json_for_the_api(server, path):
    page = httpx.get(f"{server}{path}", headers={"accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text and "Not Found" not in page.text
    api = httpx.get(f"{server}/api/no-such-thing")
    assert api.status_code == 404 and api.json() == {"detail": "页面不存在"}


def test_a_wrong_method_is_a_chinese_405_naming_the_allowed_ones(server):
    page = httpx.put(f"{server}/login", headers={"accept": "text/html"})
    assert page.status_code == 405 and "不支持" in page.text and "GET" in page.headers["allow"]
    api = httpx.delete(f"{server}/api/consult", headers={"content-type": "application/json"})
    assert api.status_code == 405 and "不支持" in api.json()["detail"]


def test_sql_errors_do_not_carry_the_values_bound_to_them(db):
    with pytest.raises(IntegrityError) as caught, db.write() as session:
        session.add(Unit(code="110000", name="身份证110101199003071234的重复单位", level="province", path="x"))
        session.flush()
    assert "110101199003071234" not in str(caught.value) and "hide_parameters" in str(caught.value)


def test_the_access_log_names_no_tracking_token_and_no_question(server):
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger, handler = logging.getLogger("uvicorn.access"), Keep()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert ACCESS_LOG_FILTER in logger.filters
        httpx.get(f"{server}/appeals/track/SECRET-TRACKING-TOKEN/more?new=1")
        httpx.get(f"{server}/ask", params={"q": "我的身份证110101199003071234", "page": "1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    text = "\n".join(records)
    assert "/appeals/track/***/more?new=1" in text and "/ask?q=***&page=1" in text
    assert "SECRET-TRACKING-TOKEN" not in text and "110101199003071234" not in text


def test_redaction_keeps_only_harmless_parameters():
    assert redact("/login?next=/appeals/track/abc&page=2") == "/login?next=***&page=2"
    assert redact("/ask?13900001111") == "/ask?***"
    assert redact("/plan") == "/plan"
