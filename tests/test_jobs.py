"""The job runner on a real database: each job isolated, once per period across runners, a killed runner's job
taken over, `chunfeng jobs run` and `chunfeng worker` as an operator runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

from sqlalchemy import select

from chunfeng import jobs
from chunfeng.db import utcnow
from chunfeng.jobs import Job, JobLease, JobRun, Runner
from chunfeng.settings import Settings

SETTINGS = Settings(_env_file=None)
HOURLY = timedelta(hours=1)
JOBS = {"ledger.warnings", "ledger.escalation", "appeals.limits", "appeals.retention", "push.stages",
        "push.deliveries", "inbox.deliveries", "files.exports", "credit.violators.expire", "survey.direct_reports",
        "survey.reminders",
        "credit.levels.publish", "credit.risk.compute"}


def _runs(db, name=None) -> list[JobRun]:
    with db.read() as s:
        query = select(JobRun).order_by(JobRun.id)
        return list(s.scalars(query.where(JobRun.name == name) if name else query))


def test_a_failing_job_is_recorded_and_the_others_still_run(db):
    done = []

    def broken(db, settings, now):
        raise RuntimeError("store unreadable")

    def counted(db, settings, now):
        done.append(now)
        return {"处理": 3}

    runner = Runner(db, SETTINGS, jobs=[Job("t.first", "一", HOURLY, counted), Job("t.broken", "坏", HOURLY, broken),
                                        Job("t.last", "末", HOURLY, counted)])
    outcomes = runner.run_due()
    assert [(o.name, o.state) for o in outcomes] == [("t.first", "ok"), ("t.broken", "failed"), ("t.last", "ok")]
    assert len(done) == 2
    runs = {r.name: r for r in _runs(db)}
    assert runs["t.broken"].state == "failed" and "RuntimeError: store unreadable" in runs["t.broken"].error
    assert runs["t.first"].state == "ok" and runs["t.first"].summary == "处理 3" and runs["t.first"].finished_at
    # once per period: nothing is due again within the hour, the failed one included (it is shown, not hammered)
    assert runner.run_due() == []
    assert [o.state for o in runner.run_due(now=utcnow() + HOURLY + timedelta(seconds=1))] == ["ok", "failed", "ok"]


def test_two_runners_at_once_run_a_job_once(db):
    calls, started = [], threading.Barrier(2)

    def slow(db, settings, now):
        calls.append(threading.current_thread().name)
        time.sleep(1)
        return "done"

    job = Job("t.slow", "慢", HOURLY, slow)
    outcomes = {}

    def run(name):
        runner = Runner(db, SETTINGS, jobs=[job], holder=name)
        started.wait()
        outcomes[name] = runner.run(job)

    threads = [threading.Thread(target=run, args=(f"runner-{i}",), name=f"runner-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(calls) == 1
    assert sorted(o.state for o in outcomes.values()) in (["busy", "ok"], ["not due", "ok"])
    assert len(_runs(db, "t.slow")) == 1


def test_a_killed_runners_lease_lapses_and_the_next_runner_takes_the_job_over(db):
    calls = []
    job = Job("t.job", "任务", HOURLY, lambda db, settings, now: calls.append(now) or "ok")
    killed = Runner(db, SETTINGS, jobs=[job], holder="host:1:killed")
    now = utcnow()
    assert killed._claim(job, now, force=False) is not None  # claimed, then the process died mid-job
    other = Runner(db, SETTINGS, jobs=[job], holder="host:2:next")
    assert other.run(job, now=now + timedelta(minutes=1)).state == "busy"  # still held: not run twice
    assert other.run(job, now=now + jobs.LEASE + timedelta(seconds=1)).state == "ok"  # lapsed: taken over
    assert len(calls) == 1
    with db.read() as s:
        lease = s.get(JobLease, "t.job")
        assert lease.holder == "" and lease.expires_at is None and lease.due_at > now + HOURLY


def test_a_forced_run_waits_for_no_period_but_for_the_lease(db):
    calls = []
    job = Job("t.job", "任务", HOURLY, lambda db, settings, now: calls.append(now) or "ok")
    runner = Runner(db, SETTINGS, jobs=[job])
    assert runner.run(job).state == "ok" and runner.run(job).state == "not due"
    assert runner.run(job, force=True).state == "ok"
    assert len(calls) == 2


def test_runs_left_running_by_a_dead_process_are_marked_failed(db):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = utcnow()
    with db.write() as s:
        for pid, beat in ((gone.pid, now), (os.getpid(), now), (os.getpid(), now - 3 * jobs.LEASE)):
            s.add(JobRun(name="t.task", kind="task", title="导入", started_at=beat, heartbeat_at=beat,
                         host=jobs.socket.gethostname(), pid=pid))
    assert jobs.reap(db) == 2  # the dead process's, and the one whose heartbeat stopped long ago
    states = [(r.state, r.pid) for r in _runs(db)]
    assert states == [("failed", gone.pid), ("running", os.getpid()), ("failed", os.getpid())]
    assert "进程已退出" in _runs(db)[0].error


def _command(db, *args, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "chunfeng", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "CHUNFENG_DATABASE_URL": db.url, "COLUMNS": "200", **env})


def test_jobs_run_and_list_from_the_command_line(db, tmp_path):
    store = str(tmp_path / "none.duckdb")
    out, err = _command(db, "jobs", "run", "ledger.warnings", CHUNFENG_PUSH_STORE=store).communicate(timeout=120)
    assert "成功 ledger.warnings" in out, err
    assert [r.state for r in _runs(db, "ledger.warnings")] == ["ok"]
    proc = _command(db, "jobs", "run", "no.such", CHUNFENG_PUSH_STORE=store)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "没有定时任务“no.such”" in err and "push.stages" in err
    proc = _command(db, "jobs", "run", CHUNFENG_PUSH_STORE=store)  # every due job; ledger.warnings is not due
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "ledger.warnings" not in out and "成功 push.stages" in out and "成功 appeals.limits" in out
    out, _ = _command(db, "jobs", "list", CHUNFENG_PUSH_STORE=store).communicate(timeout=120)
    for name in JOBS:
        assert name in out


def test_the_worker_runs_what_is_due_and_stops_on_sigterm(db, tmp_path):
    worker = _command(db, "worker", CHUNFENG_PUSH_STORE=str(tmp_path / "none.duckdb"))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            finished = {r.name for r in _runs(db) if r.state != "running"}
            if {"ledger.warnings", "push.deliveries", "inbox.deliveries"} <= finished:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the worker ran nothing: {worker.stderr.read() if worker.poll() else ''}")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert "stopped" in worker.stderr.read()
    with db.read() as s:
        assert all(lease.holder == "" for lease in s.scalars(select(JobLease)))
    assert all(r.state == "ok" for r in _runs(db)), [(r.name, r.error) for r in _runs(db)]


def test_two_workers_on_one_database_run_each_job_once(db, tmp_path):
    """Issue 13 §3: several processes on one database (two workers here; web processes run no jobs): each
    periodic job runs once in its period across all of them."""
    env = {"CHUNFENG_PUSH_STORE": str(tmp_path / "none.duckdb")}
    workers = [_command(db, "worker", **env) for _ in range(2)]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not JOBS <= {r.name for r in _runs(db) if r.state != "running"}:
            time.sleep(0.3)
        time.sleep(2)  # a second worker that had not yet looked now finds nothing due
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    runs = _runs(db)
    assert sorted(r.name for r in runs) == sorted(JOBS), [(r.name, r.started_by) for r in runs]
    assert len({r.pid for r in runs}) in (1, 2)


def test_web_processes_run_no_periodic_job_unless_told_to(db):
    from tests.conftest import serving

    settings = Settings(_env_file=None, database_url=db.url, scan_interval_minutes=60)
    assert not settings.run_jobs_in_web
    with serving(db, settings):
        time.sleep(2)  # before: the first scan ran at start-up, in every web process
    assert _runs(db) == []
    with serving(db, settings.model_copy(update={"run_jobs_in_web": True})):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(r.name == "ledger.warnings" and r.state == "ok"
                                                      for r in _runs(db)):
            time.sleep(0.2)
    assert any(r.name == "ledger.warnings" and r.state == "ok" for r in _runs(db))


def test_a_task_done_before_its_progress_is_written_still_ends_showing_what_it_did(db):
    # Progress is written by the heartbeat's thread at most once a PROGRESS_SECONDS; work finishing sooner must
    # not leave its run at 0 of 0 (seen in CI: a fast hotline import ended "ok" with nothing counted).
    def work(progress):
        progress(1200, 3000, "正在分类")
        progress(3000, 3000, "正在写入")
        return jobs.TaskResult(summary="已导入 3000 件")

    def failing(progress):
        progress(40, 100, "正在写入")
        raise ValueError("第41行:地区代码不存在")

    done, failed = (jobs.start_task(db, name=name, title=name, started_by="agent", work=w)
                    for name, w in (("fast", work), ("fails", failing)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(r.state == "running" for r in _runs(db)):
        time.sleep(0.05)
    with db.read() as s:
        ok, bad = s.get(JobRun, done), s.get(JobRun, failed)
        assert (ok.state, ok.done, ok.total, ok.percent) == ("ok", 3000, 3000, 100)
        assert (bad.state, bad.done, bad.total, bad.message) == ("failed", 40, 100, "正在写入")
