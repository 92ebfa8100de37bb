"""Fixtures on real parts: a real database (SQLite file, or PostgreSQL when CHUNFENG_DATABASE_URL is set)
and a real HTTP server (uvicorn on a loopback port) for web and browser tests."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select, text

from chunfeng import runtime
from chunfeng.db import Database
from chunfeng.models import Base
from chunfeng.org import services as org
from chunfeng.org import unit_import
from chunfeng.org.access import SystemActor
from chunfeng.org.models import User
from chunfeng.plan import services as plan
from chunfeng.settings import Settings

# Fixtures of wider scope write audit entries before any test's own head file is set (see _audit_head): never
# into the checkout's var/ nor a real deployment's head file.
os.environ["CHUNFENG_AUDIT_HEAD_FILE"] = str(Path(tempfile.mkdtemp(prefix="chunfeng-audit-")) / "audit-head.log")
runtime.configure(Settings())

HERE = Path(__file__).parent
SEED = HERE.parent.parent / "shared" / "seeds" / "000_7bfd59b3cf3bfc3d.txt"
PASSWORD = "Test-password-1"
# Any environment but 'local' must name its SM4 data key. In-process services, the test servers and the commands
# tests run as subprocesses share one: the subprocesses derive theirs from the environment, as a local run does.
TEST_DATA_KEY = Settings().effective_data_key


def database_url(tmp_dir: Path) -> str:
    return os.environ.get("CHUNFENG_DATABASE_URL") or f"sqlite:///{tmp_dir / 'test.db'}"


@pytest.fixture(scope="session")
def _database(tmp_path_factory) -> Database:
    url = Settings(database_url=database_url(tmp_path_factory.mktemp("db"))).sqlalchemy_url
    db = Database(url)
    if not db.is_sqlite:
        if "test" not in (db.engine.url.database or ""):
            pytest.exit(f"refusing to empty {db.engine.url.database!r}: the test database's name must contain 'test'", 2)
        # A clean schema for this run: the PostgreSQL database may hold a previous run's tables.
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture(autouse=True)
def _audit_head(tmp_path_factory, monkeypatch) -> Path:
    """Each test its own signed audit head (the chain's anchor outside the database), as each test empties the
    database: a head left by another test would rightly read as a truncated log. Commands run by the test inherit it.
    Configured as an entry point configures a process: the data key, the holidays file and this head."""
    path = tmp_path_factory.mktemp("audit") / "audit-head.log"  # not in tmp_path, which tests may list
    monkeypatch.setenv("CHUNFENG_AUDIT_HEAD_FILE", str(path))
    runtime.configure(Settings())
    yield path


@pytest.fixture
def db(_database) -> Database:
    """The test database, emptied before each test and holding only the built-in units."""
    with _database.write() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
        org.ensure_builtin_units(session=session)
    return _database


@pytest.fixture
def system() -> SystemActor:
    return SystemActor(username="tester")


@pytest.fixture(scope="session")
def seed_bytes() -> bytes:
    """The notice as scraped: from ../shared when the checkout sits beside it, else the shipped copy."""
    return SEED.read_bytes() if SEED.exists() else plan.shipped_notice()


@pytest.fixture
def with_plan(db, system, seed_bytes):
    with db.write() as session:
        plan.import_notice(session=session, actor=system, data=seed_bytes, source_name="seed")
    return db


@pytest.fixture
def make_user(db, system):
    """make_user("name", "110000", ["viewer"]) -> username; the password is PASSWORD."""

    def make(username: str, unit_code: str, roles: list[str]) -> str:
        with db.write() as session:
            user = org.add_user(session=session, actor=system, username=username, display_name=username,
                                unit_code=unit_code, roles=roles, password=PASSWORD)
            user.must_change_password = False  # as if already changed: the forced change has its own test
        return username

    return make


@pytest.fixture(scope="session")
def _password_hash() -> str:
    from chunfeng.org.passwords import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def add_users(db, _password_hash):
    """Many users at once, for tests about something else: rows written directly with one shared
    Argon2 hash of PASSWORD (hashing is what makes make_user slow, and it is tested there)."""
    from chunfeng.org.models import Unit, User

    def add(people: dict[str, tuple[str, list[str]]]) -> None:
        with db.write() as session:
            units = {u.code: u for u in session.query(Unit).filter(Unit.code.in_({u for u, _ in people.values()}))}
            for username, (unit, roles) in people.items():
                session.add(User(username=username, display_name=username, unit=units[unit], roles=",".join(roles),
                                 password_hash=_password_hash))

    return add


@pytest.fixture
def county(db, system, tmp_path):
    """A municipal and a county bureau under 北京 (110000): codes 110100 and 110101."""
    csv = tmp_path / "units.csv"
    csv.write_text("代码,上级代码,名称,层级\n110100,110000,北京测试市税务局,市级\n110101,110100,北京测试县税务局,县级\n",
                   encoding="utf-8")
    with db.write() as session:
        unit_import.import_units(session=session, actor=system, path=csv)
    return "110101"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_files(tmp_path_factory) -> Path:
    """The test server's data directory; its taxpayer store is `server_files / "taxpayers.duckdb"`."""
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="session")
def server(_database, server_files) -> str:
    """The web application on a real loopback HTTP server; its base URL."""
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production",
                        environment="test", data_key=TEST_DATA_KEY, session_idle_minutes=30, session_max_hours=12,
                        scan_interval_minutes=0,  # tests scan when they mean to
                        data_dir=str(server_files), evidence_max_mb=1,
                        push_store=str(server_files / "taxpayers.duckdb"),
                        rate_limits={},  # tests log in many times from one address; limits have their own test
                        rate_ceilings={},  # nor do bursts of filings meet a ceiling: tests/test_ratelimit.py
                        totp_required_roles=[],  # so do administrators; the second factor has its own test
                        index_stale_seconds=0)  # a test asks right after changing the knowledge base: tests/test_preload.py
    with serving(_database, settings) as url:
        yield url


@contextmanager
def serving(database: Database, settings: Settings, *, ready: bool = True) -> Iterator[str]:
    """The application for `settings` on a real loopback HTTP server, for as long as the block runs; its URL. Once
    it is `ready` (its indexes loaded, /healthz 200), unless told not to wait for that."""
    from chunfeng.web.app import create_app
    from chunfeng.web.server import uvicorn_config

    port = _free_port()
    srv = uvicorn.Server(uvicorn_config(create_app(database, settings), settings, host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    while ready and httpx.get(f"{url}/healthz").status_code != 200:  # ready: its indexes are loaded (web/readiness.py)
        if time.monotonic() > deadline + 40:
            raise RuntimeError("test server did not load its indexes")
        time.sleep(0.05)
    try:
        yield url
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def csrf_from(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def login(base_url: str, username: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client logged in through the real login form."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/"})
    assert response.status_code == 303, response.text
    return client


def finished(client: httpx.Client, response: httpx.Response, timeout: float = 120) -> httpx.Response:
    """Follow work a page started as a job (a 303 to its progress page) until it is over; its result page, which
    answers with the status a refusal would have had (400, 403…) when the work failed."""
    assert response.status_code == 303 and response.headers["location"].startswith("/jobs/runs/"), \
        (response.status_code, response.headers.get("location"), response.text[:300])
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(response.headers["location"])
        if 'data-state="running"' not in page.text or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def exported(client: httpx.Client, response: httpx.Response) -> tuple[httpx.Response, httpx.Response]:
    """Follow an export started as a job to its result page and fetch the file it links to: (page, download)."""
    page = finished(client, response)
    assert page.status_code == 200, page.text[:500]
    link = re.search(r'href="(/jobs/runs/\d+/download)"', page.text)
    assert link, page.text[:1000]
    return page, client.get(link[1])


# A small bureau tree with a plan and people at each level:
# 000000 国家税务总局 ── 110000 北京 ──┬─ 110100 市 ──┬─ 110101 县
#                                      │               └─ 110102 县
#                                      └─ 110200 市
#                     └─ 440000 广东

TODAY = date(2022, 5, 17)

PEOPLE = {
    "nat_office": ("000000", ["action_office"]),
    "bj_office": ("110000", ["action_office"]),
    "bj_reporter": ("110000", ["unit_reporter"]),
    "city_office": ("110100", ["action_office"]),
    "city_reporter": ("110100", ["unit_reporter"]),
    "city2_reporter": ("110200", ["unit_reporter"]),
    "county_reporter": ("110101", ["unit_reporter"]),
    "county2_reporter": ("110102", ["unit_reporter"]),
    "gd_office": ("440000", ["action_office"]),
    "viewer": ("110000", ["viewer"]),
    "nat_admin": ("000000", ["admin"]),
}


@pytest.fixture
def bureau(with_plan, system, add_users, tmp_path):
    csv = tmp_path / "units.csv"
    csv.write_text("代码,上级代码,名称,层级\n110100,110000,北京甲市税务局,市级\n110200,110000,北京乙市税务局,市级\n"
                   "110101,110100,甲市一县税务局,县级\n110102,110100,甲市二县税务局,县级\n", encoding="utf-8")
    with with_plan.write() as s:
        unit_import.import_units(session=s, actor=system, path=csv)
    add_users(PEOPLE)
    return with_plan


def person(session, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


class Webhook:
    """A channel's far end on a loopback port (a robot's webhook, an SMS gateway): a threaded HTTP server that
    records each JSON body it is sent, with the request's path and idempotency key, answers `status` (500 while
    `failing`, or for a title in `refused`: not recorded) after `delay` seconds, and calls `on_receive` while still
    holding the request when it is set.
    `url` is the Apprise address of it, `path` appended."""

    def __init__(self, path: str = "/hook", *, keep_alive: bool = False):
        """`keep_alive`: answer in HTTP/1.1 and keep each connection open for the next request, as a real gateway
        does; `connections` counts the connections opened, `cookies` the Cookie header of each request, and a
        `cookie` set is handed out with every answer."""
        self.received: list[dict] = []
        self.status, self.delay, self.on_receive, self.failing = 200, 0.0, None, False
        self.refused: set[str] = set()
        self.lock = threading.Lock()
        self.connections, self.cookies, self.cookie = 0, [], ""
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self):
                super().setup()
                with webhook.lock:
                    webhook.connections += 1

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                failing = webhook.failing or body.get("title") in webhook.refused
                if not failing:
                    with webhook.lock:
                        webhook.received.append({"path": self.path, "key": self.headers.get("Idempotency-Key"),
                                                 **body})
                        webhook.cookies.append(self.headers.get("Cookie"))
                if webhook.on_receive:
                    webhook.on_receive()
                time.sleep(webhook.delay)
                self.send_response(500 if failing else webhook.status)
                if webhook.cookie:
                    self.send_header("Set-Cookie", webhook.cookie)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_port}{path}"

    @property
    def titles(self) -> list[str]:
        with self.lock:
            return [body["title"] for body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
