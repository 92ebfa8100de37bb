"""Forwarded headers are believed only from the proxies CHUNFENG_TRUSTED_PROXIES names (none by default): a client
cannot choose the address the rate limits count and the audit log records, on the test server as under `chunfeng
serve`, both started through chunfeng.web.server."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from chunfeng.org.models import AuditEntry
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, _free_port, csrf_from, serving


def failed_login(server: str, forwarded_for: str) -> int:
    client = httpx.Client(base_url=server, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/login").text)
    return client.post("/login", data={"username": "mallory", "password": "wrong", "csrf_token": token},
                       headers={"X-Forwarded-For": forwarded_for}).status_code


def sources(db) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(AuditEntry.source).where(AuditEntry.action == "org.login.failed")
                              .order_by(AuditEntry.seq)))


def server_for(_database, server_files, **overrides):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(server_files),
                        rate_limits={"login": 2}, **overrides)
    return serving(_database, settings)


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(db, _database, server_files):
    with server_for(_database, server_files) as url:
        codes = [failed_login(url, f"198.51.100.{n}") for n in range(3)]  # a new "address" each time
    assert codes == [401, 401, 429]  # the limit counts the connection's address, not the claimed one
    assert sources(db) == ["127.0.0.1", "127.0.0.1"]


def test_a_trusted_proxy_names_the_client(db, _database, server_files):
    with server_for(_database, server_files, trusted_proxies="127.0.0.1") as url:
        codes = [failed_login(url, "203.0.113.7") for _ in range(3)] + [failed_login(url, "203.0.113.8")]
    assert codes == [401, 401, 429, 401]  # per client behind the proxy
    assert sources(db) == ["203.0.113.7", "203.0.113.7", "203.0.113.8"]


@pytest.mark.parametrize("value", ["*", "proxy.example.com", "10.0.0.0/33"])
def test_trusted_proxies_are_addresses_or_networks(value):
    with pytest.raises(ValueError, match="CHUNFENG_TRUSTED_PROXIES"):
        Settings(trusted_proxies=value)
    assert Settings(trusted_proxies="10.0.0.5, 192.168.0.0/24").trusted_proxies


def test_chunfeng_serve_trusts_no_forwarded_header_names_no_server_and_logs_no_secret(db, _database, server_files):
    port = _free_port()
    env = {**os.environ, "CHUNFENG_DATABASE_URL": _database.url, "CHUNFENG_SCAN_INTERVAL_MINUTES": "0",
           "CHUNFENG_DATA_DIR": str(server_files), "CHUNFENG_RATE_LIMITS": '{"login": 2}',
           "CHUNFENG_PUSH_STORE": str(server_files / "serve.duckdb")}
    process = subprocess.Popen([sys.executable, "-m", "chunfeng", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "chunfeng serve did not start"
                time.sleep(0.2)
        assert "server" not in health.headers and "version" not in health.json()
        codes = [failed_login(url, f"198.51.100.{n}") for n in range(3)]
        assert codes == [401, 401, 429]
        assert sources(db) == ["127.0.0.1", "127.0.0.1"]
        httpx.get(f"{url}/appeals/track/SECRET-TRACKING-TOKEN")
        httpx.get(f"{url}/api/consult", params={"q": "手机13900001111怎么报税", "page": "2"})
    finally:
        process.terminate()
        log, _ = process.communicate(timeout=20)
    # The access log is on, but keeps neither a tracking token nor what was typed into a query string.
    log = log.decode()
    assert '"GET /appeals/track/*** HTTP/1.1" 404' in log and '"GET /api/consult?q=***&page=2 HTTP/1.1"' in log
    assert "SECRET-TRACKING-TOKEN" not in log and "13900001111" not in log


def test_the_server_parses_http_in_c_when_httptools_is_installed(_database):
    """httptools and uvloop are main dependencies (issue 16: h11's pure-Python parsing was a share of every public
    request's CPU); the one uvicorn configuration takes them when they are there."""
    pytest.importorskip("httptools", reason="not yet installed in this environment (pip install -e .)")
    from fastapi import FastAPI

    from chunfeng.web.server import uvicorn_config

    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY)
    config = uvicorn_config(FastAPI(), settings, port=_free_port())
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"
