"""The jobs pages over a real HTTP server: the administrator's list of periodic jobs with their errors, refused to
every other role; a hotline import started from its page runs as a task, its progress polled, then its result."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chunfeng import files, jobs
from chunfeng.appeals.models import Appeal
from chunfeng.errors import NotFound
from chunfeng.jobs import Job, JobRun, Runner
from chunfeng.org.models import AuditEntry
from chunfeng.settings import Settings
from chunfeng.web import downloads
from chunfeng.web.jobs import start_export
from tests.conftest import csrf_from, finished, login, person


@pytest.fixture
def people(with_plan, county, add_users):
    add_users({"sysadmin": ("000000", ["admin"]), "office": ("000000", ["action_office"]),
               "auditor": ("000000", ["audit_admin"]), "agent": ("110000", ["agent"]),
               "agent2": ("110000", ["agent"])})
    return with_plan


def test_the_administrator_sees_each_periodic_job_its_runs_and_errors(people, server):
    def broken(db, settings, now):
        raise RuntimeError("DuckDB 文件损坏")

    Runner(people, Settings(_env_file=None), jobs=[
        Job("t.broken", "坏任务", timedelta(hours=1), broken),
        Job("t.fine", "好任务", timedelta(hours=1), lambda db, settings, now: {"处理": 7})]).run_due()
    admin = login(server, "sysadmin")
    page = admin.get("/jobs")
    assert page.status_code == 200
    for name in ("ledger.warnings", "appeals.limits", "push.stages", "inbox.deliveries"):
        assert name in page.text  # every registered job, run or not
    assert "RuntimeError: DuckDB 文件损坏" in page.text and "处理 7" in page.text
    assert 'href="/jobs"' in admin.get("/plan").text  # in the administrator's navigation
    with people.read() as s:
        broken_run = s.scalar(select(JobRun.id).where(JobRun.name == "t.broken"))
    assert "DuckDB 文件损坏" in admin.get(f"/jobs/runs/{broken_run}").text
    for role_user in ("office", "auditor", "agent"):
        client = login(server, role_user)
        assert client.get("/jobs").status_code == 403
        assert client.get(f"/jobs/runs/{broken_run}").status_code == 404  # a periodic run is the administrator's
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied", AuditEntry.object_id == "GET /jobs")) == 3


def test_a_hotline_import_runs_as_a_task_with_progress_then_its_result(people, server):
    agent = login(server, "agent")
    token = csrf_from(agent.get("/appeals/enter").text)
    rows = 3000  # long enough to be seen running (the import is fast now): classified, then written in one transaction
    calls = "类型,内容,地区代码,电话\n" + "".join(f"诉求,第{n}位来电:发票开不出来,110101,1380013{n:04d}\n"
                                                 for n in range(rows))
    started = agent.post("/appeals/import", data={"csrf_token": token},
                         files={"file": ("calls.csv", calls.encode(), "text/csv")})
    assert started.status_code == 303  # answered at once, not after the import
    run_url = started.headers["location"]
    seen = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        bar = agent.get(run_url + "/progress")
        assert bar.status_code == 200 and "<progress" in bar.text and "<script" not in bar.text
        seen.append(bar.text)
        if 'data-state="running"' not in bar.text:
            break
        time.sleep(0.2)
    assert 'data-state="running"' in seen[0] and 'hx-trigger="every 1s"' in seen[0]  # the page polls while it runs
    # while polled by htmx, a finished run sends the browser to the result page
    done = agent.get(run_url + "/progress", headers={"HX-Request": "true"})
    assert done.headers.get("hx-redirect") == run_url
    result = agent.get(run_url)
    assert result.status_code == 200 and f"已导入 {rows} 件热线记录" in result.text
    assert f'href="/appeals?imported={rows}"' in result.text
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == rows
        run = s.get(JobRun, int(run_url.rsplit("/", 1)[1]))
        assert (run.state, run.done, run.total, run.started_by, run.kind) == ("ok", rows, rows, "agent", "task")
    # the run is its starter's: another agent of the same unit, and the administrator, are told it does not exist
    assert login(server, "agent2").get(run_url).status_code == 404
    assert login(server, "sysadmin").get(run_url).status_code == 404


def test_a_refused_import_changes_nothing_and_its_page_names_every_problem(people, server):
    agent = login(server, "agent")
    token = csrf_from(agent.get("/appeals/enter").text)
    calls = "类型,内容,地区代码,电话\n诉求,,110101,13800138000\n投诉,好的,110101,13800138001\n诉求,,110101,1\n"
    page = finished(agent, agent.post("/appeals/import", data={"csrf_token": token},
                                      files={"file": ("calls.csv", calls.encode(), "text/csv")}))
    assert page.status_code == 400 and "共 3 处问题" in page.text and "第 2 行:请填写内容" in page.text
    assert "第 4 行:电话“1”格式不对" in page.text
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0


def test_a_task_refused_for_another_province_is_a_403_and_audited_as_denied(people, server):
    agent = login(server, "agent")  # of 北京 (110000)
    token = csrf_from(agent.get("/appeals/enter").text)
    calls = "类型,内容,地区代码,电话\n诉求,北京来电,110101,13800138000\n投诉,广东来电,440000,13800138001\n"
    page = finished(agent, agent.post("/appeals/import", data={"csrf_token": token},
                                      files={"file": ("calls.csv", calls.encode(), "text/csv")}))
    assert page.status_code == 403 and "管辖范围" in page.text
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 0
        denied = s.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied")).all()
        assert [(e.actor, e.object_type, e.object_id, e.outcome) for e in denied] == [
            ("agent", "job", "appeals.import", "denied")]
        assert denied[0].source == "127.0.0.1"  # the request's address went with the work


def test_an_export_file_nobody_fetched_is_swept_after_a_day_and_a_failed_one_is_never_offered(db, tmp_path):
    old = files.task_file_path(tmp_path, 7, "a/b.xlsx")
    old.write_bytes(b"x")
    stale = time.time() - files.EXPORT_KEEP.total_seconds() - 60
    os.utime(old.parent, (stale, stale))
    fresh = files.task_file_path(tmp_path, 8, "c.xlsx")
    fresh.write_bytes(b"y")
    assert old.name == "a_b.xlsx" and old.parent.name == "7"  # a slash in a name cannot leave the run's folder
    # The registered periodic job sweeps it, whether or not anyone starts another export.
    runner = jobs.Runner(db, Settings(data_dir=str(tmp_path), scan_interval_minutes=60),
                         jobs=[jobs.get_job("files.exports")])
    [outcome] = runner.run_due()
    assert outcome.state == "ok" and "删除无人下载的导出文件 1" in outcome.summary
    assert not old.parent.exists() and fresh.exists()
    with pytest.raises(NotFound):
        downloads.task_file(tmp_path, 7)


def test_an_export_that_fails_leaves_no_file_and_no_link(people, server, server_files, db):
    def write(path, progress):
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    with db.read() as session:
        user = person(session, "office")
        session.expunge(user)
    started = start_export(db, user, Settings(data_dir=str(server_files)), name="test.export", title="导出",
                           filename="x.xlsx", write=write)
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.read() as session:
            run = session.get(JobRun, run_id)
            if run.state != "running":
                break
        time.sleep(0.1)
    assert run.state == "failed" and run.link == ""
    assert not (server_files / "exports" / str(run_id)).exists()
    assert login(server, "office").get(f"/jobs/runs/{run_id}/download").status_code == 404
