"""Several replicas against one database: real `chunfeng` processes (the command line an installer runs), on the
test database of this run — PostgreSQL when CHUNFENG_DATABASE_URL is set (the second pass of .ci/run), else a SQLite
file that the processes share. A session opened on one replica is honoured and ended on the other, rate limits
and ceilings are counted once for the fleet, and 20 officials approving at the same moment on both lose nothing.

`fleet.start(*args)` starts any `chunfeng` command line with the fleet's environment (a worker: `fleet.start("worker")`),
`fleet.serve(n)` n web replicas; every process is stopped at the end of the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from chunfeng.ledger import reporting
from chunfeng.ledger import services as ledger
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.org import unit_import
from tests.conftest import TEST_DATA_KEY, _free_port, csrf_from, login, person

LIMITS = {"consult": 6}  # a minute per address
CEILINGS = {"appeals": 2}  # a second, the whole fleet


@dataclass
class Fleet:
    env: dict[str, str]
    logs: Path
    processes: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """`chunfeng ARGS` as a child process with the fleet's settings (plus `env`); its output goes to a log file."""
        log = self.logs / f"{len(self.processes)}-{args[0]}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "chunfeng", *args], env={**self.env, **(env or {})},
                                       stdout=out, stderr=subprocess.STDOUT)
        self.processes.append((process, log))
        return process

    def serve(self, n: int, env: dict[str, str] | None = None) -> list[str]:
        """n web replicas on loopback ports, each answering /healthz; their base URLs."""
        started = []
        for _ in range(n):
            port = _free_port()
            started.append((self.start("serve", "--port", str(port), env=env), f"http://127.0.0.1:{port}"))
        for process, url in started:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chunfeng serve did not start:\n{self.output(process)}")
                time.sleep(0.2)
        return [url for _, url in started]

    def output(self, process: subprocess.Popen) -> str:
        return next(log for p, log in self.processes if p is process).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, _ in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def fleet(_database, tmp_path_factory):
    files = tmp_path_factory.mktemp("fleet")
    env = {**os.environ, "CHUNFENG_DATABASE_URL": _database.url, "CHUNFENG_ENVIRONMENT": "test",
           "CHUNFENG_SECRET_KEY": "fleet-secret-shared-by-every-replica", "CHUNFENG_DATA_KEY": TEST_DATA_KEY,
           "CHUNFENG_SCAN_INTERVAL_MINUTES": "0", "CHUNFENG_DATA_DIR": str(files / "files"),
           "CHUNFENG_PUSH_STORE": str(files / "taxpayers.duckdb"), "CHUNFENG_AUDIT_HEAD_FILE": str(files / "head.log"),
           "CHUNFENG_TOTP_REQUIRED_ROLES": "[]", "CHUNFENG_RATE_LIMITS": json.dumps(LIMITS),
           "CHUNFENG_RATE_CEILINGS": json.dumps(CEILINGS)}
    running = Fleet(env, files)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def replicas(fleet) -> list[str]:
    return fleet.serve(2)


def test_a_session_opened_on_one_replica_is_honoured_and_ended_on_the_other(db, add_users, replicas):
    a, b = replicas
    add_users({"alice": ("110000", ["viewer"])})
    on_a = login(a, "alice")
    on_b = httpx.Client(base_url=b, cookies=on_a.cookies, follow_redirects=False, timeout=30)
    page = on_b.get("/sessions")
    assert page.status_code == 200 and "当前会话" in page.text
    token_from_a = csrf_from(on_a.get("/sessions").text)  # one secret for the fleet: A's form posts to B
    assert on_b.post("/logout", data={"csrf_token": token_from_a}).status_code == 303
    assert on_a.get("/sessions").status_code == 303  # ended on B, so ended on A


def test_rate_limits_and_ceilings_are_counted_once_for_the_fleet(db, replicas):
    a, b = replicas
    clients = [httpx.Client(base_url=url, timeout=30) for url in (a, b)]
    codes = [clients[n % 2].get("/api/consult", params={"q": "个税怎么交"}).status_code for n in range(7)]
    assert codes[:6] == [200] * 6 and codes[6] == 429  # 3 + 3 + 1 of a limit of 6: one count, not one per replica
    refused = clients[1].get("/api/consult", params={"q": "个税怎么交"})
    assert refused.status_code == 429 and "请求过于频繁" in refused.json()["detail"]
    assert 0 < int(refused.headers["retry-after"]) <= 60

    # The ceiling: 12 citizens filing at the same moment, half on each replica, against 2 a second for the fleet.
    body = {"kind": "demand", "text": "希望延长办税服务厅的服务时间", "phone": "13900001111"}
    results: list[httpx.Response] = []
    gate = threading.Barrier(12)

    def file(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            gate.wait()
            results.append(client.post("/api/appeals", json=body))

    began = time.monotonic()
    threads = [threading.Thread(target=file, args=(replicas[n % 2],)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    accepted = [r for r in results if r.status_code == 201]
    busy = [r for r in results if r.status_code == 429]
    assert len(accepted) + len(busy) == 12
    # At most the fleet's 2 a second (each replica alone would take 2 and more). At least one: each request reads
    # its clock before it reaches the shared row, so under this burst a later-read clock can take the row first and
    # the full burst of 2 is not promised (seen once on PostgreSQL under load); the ceiling is never exceeded.
    assert 1 <= len(accepted) <= 2 + 2 * elapsed + 1, (len(accepted), elapsed)
    assert all("访问人数较多" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1 for r in busy)
    # The form gets a page, not JSON (posts the ceiling lets through are refused for want of a CSRF token).
    pages = [httpx.post(f"{a}/appeals/new", data={"kind": "demand", "text": "希望延长服务时间"}) for _ in range(4)]
    page = next(p for p in pages if p.status_code == 429)
    assert "访问人数较多" in page.text and "北京时间" in page.text and "返回上一页" in page.text
    assert page.headers["content-security-policy"] and int(page.headers["retry-after"]) >= 1


REVIEWERS = 20


@pytest.fixture
def twenty_reports(bureau, system, add_users, tmp_path):
    """Measure 1 under 北京 (110000), a city under it per reviewer, a county under each city: each county has
    reported i × 5 %, and each city's office approves its county's report. The province's progress, rolled up,
    is then the mean of 5 … 100 %."""
    rows = ["代码,上级代码,名称,层级"]
    for i in range(1, REVIEWERS + 1):
        rows += [f"11{i + 20:02d}00,110000,测试{i}市税务局,市级", f"11{i + 20:02d}01,11{i + 20:02d}00,测试{i}县税务局,县级"]
    (tmp_path / "units.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with bureau.write() as s:
        unit_import.import_units(session=s, actor=system, path=tmp_path / "units.csv")
    add_users({f"office{i}": (f"11{i + 20:02d}00", ["action_office"]) for i in range(1, REVIEWERS + 1)}
              | {f"reporter{i}": (f"11{i + 20:02d}01", ["unit_reporter"]) for i in range(1, REVIEWERS + 1)})
    terms = ledger.Terms(ongoing=True, cycle="monthly")
    reports = {}
    with bureau.write() as s:
        province = ledger.assign(session=s, actor=system, measure_no=1, unit_code="110000", terms=ledger.Terms(**vars(terms)))
        for i in range(1, REVIEWERS + 1):
            ledger.assign(session=s, actor=system, measure_no=1, unit_code=f"11{i + 20:02d}00", terms=ledger.Terms(**vars(terms)))
            county = ledger.assign(session=s, actor=system, measure_no=1, unit_code=f"11{i + 20:02d}01",
                                   terms=ledger.Terms(**vars(terms)))
            report = reporting.submit_report(session=s, actor=person(s, f"reporter{i}"), assignment_id=county.id,
                                          status="in_progress", percent=i * 5.0)
            reports[f"office{i}"] = (report.id, report.version)
    return province.id, reports


def _approve_at_once(posts: list[tuple[httpx.Client, int, dict]]) -> list[int]:
    """Each (client, report id, form) posted as a review in its own thread, all released together; the statuses."""
    gate = threading.Barrier(len(posts))
    codes: list[int] = []

    def approve(client: httpx.Client, report_id: int, form: dict) -> None:
        gate.wait()
        codes.append(client.post(f"/ledger/reports/{report_id}/review", data=form).status_code)

    threads = [threading.Thread(target=approve, args=post) for post in posts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes

def test_twenty_officials_approving_at_once_on_two_replicas_lose_no_update(twenty_reports, bureau, replicas):
    province, reports = twenty_reports
    posts = []
    for n, (reviewer, (report_id, version)) in enumerate(sorted(reports.items())):
        client = login(replicas[n % 2], reviewer)
        posts.append((client, report_id, {"csrf_token": csrf_from(client.get("/ledger/review").text),
                                          "decision": "approve", "version": version}))
    codes = _approve_at_once(posts)
    assert codes == [303] * REVIEWERS
    with bureau.read() as s:
        assert set(s.scalars(select(ProgressReport.state))) == {"approved"}
        root = s.get(Assignment, province)
        # What approving them one after another gives: every city at its county's percent, the province their mean.
        assert (root.progress, root.status) == (52.5, "in_progress")
        national = s.scalar(select(Assignment).where(Assignment.id == root.parent_id)) if root.parent_id else None
        assert national is None or national.progress == 52.5


def test_a_worker_beside_the_replicas_sends_each_message_once_and_one_killed_mid_send_repeats_none(db, system, fleet,
                                                                                                  replicas):
    """The fleet's worker (`chunfeng worker`) sends the units' notices through the outbox. Killed (SIGKILL) while
    the receiving webhook holds its first message, it never recorded that send: once its lease on the delivery job
    has lapsed, the next worker takes the job over, sends the two messages the first never reached, and leaves the
    interrupted one in doubt instead of sending it a second time."""
    import signal
    from datetime import datetime

    from sqlalchemy import update

    from chunfeng import jobs, outbox
    from chunfeng.channels import ChannelRules
    from chunfeng.inbox import services as inbox
    from chunfeng.org.services import find_unit
    from tests.conftest import Webhook

    receiver = Webhook()
    worker_env = {"CHUNFENG_SCAN_INTERVAL_MINUTES": "1", "CHUNFENG_CHANNEL_HOSTS_ALLOWED": '["127.0.0.1"]'}
    with db.write() as s:
        inbox.add_channel(session=s, actor=system, unit_code="110000", url=receiver.url,
                          channel_rules=ChannelRules(hosts_allowed=("127.0.0.1",)))
        for title in ("督办单", "催办一", "催办二"):
            inbox.post(s, unit=find_unit(session=s, code="110000"), kind="reminder", title=title)
    first = fleet.start("worker", env=worker_env)
    receiver.on_receive = lambda: os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=180)
    assert first.returncode == -signal.SIGKILL and receiver.titles == ["督办单"], fleet.output(first)
    receiver.on_receive = None

    with db.write() as s:  # five minutes on: the dead worker no longer renews its leases
        s.execute(update(jobs.JobLease).values(expires_at=datetime(2000, 1, 1)))
    second = fleet.start("worker", env=worker_env)
    deadline = time.monotonic() + 180
    while len(receiver.titles) < 3 and time.monotonic() < deadline and second.poll() is None:
        time.sleep(0.5)
    second.terminate()
    second.wait(timeout=60)
    receiver.close()
    assert sorted(receiver.titles) == sorted(["督办单", "催办一", "催办二"]), fleet.output(second)
    with db.read() as s:
        states = dict(s.execute(select(outbox.Delivery.title, outbox.Delivery.state)).all())
        runs = s.execute(select(jobs.JobRun.name, jobs.JobRun.state).where(jobs.JobRun.name == "inbox.deliveries")
                         .order_by(jobs.JobRun.id)).all()
    assert states == {"督办单": "sending", "催办一": "sent", "催办二": "sent"}  # in doubt, not sent again
    assert [state for _, state in runs][:1] == ["failed"]  # the killed worker's run, found dead by the next one
    assert second.returncode == 0  # SIGTERM: the job under way finishes, then the worker stops


def test_two_officials_deciding_the_same_report_at_once_get_one_decision_and_one_refusal(twenty_reports, bureau,
                                                                                          add_users, replicas):
    """Two officials of one city approve the same county report at the same moment, one on each replica: one
    approval is recorded and the other is told the report is already decided (before: a 500 on PostgreSQL)."""
    from chunfeng.org.models import AuditEntry

    _, reports = twenty_reports
    report_id, version = reports["office1"]
    add_users({"office1b": ("112100", ["action_office"])})
    posts = []
    for n, reviewer in enumerate(("office1", "office1b")):
        client = login(replicas[n], reviewer)
        posts.append((client, report_id, {"csrf_token": csrf_from(client.get("/ledger/review").text),
                                          "decision": "approve", "version": version}))
    codes = _approve_at_once(posts)
    assert sorted(codes) == [303, 400], codes
    with bureau.read() as s:
        assert s.get(ProgressReport, report_id).state == "approved"
        approvals = s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.report.approved",
                                                       AuditEntry.object_id == str(report_id))).all()
        assert len(approvals) == 1
