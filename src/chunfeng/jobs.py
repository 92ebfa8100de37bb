"""Scheduled work and long work started from a page: one registry, one table of runs, one lease per job.

Each domain registers its periodic jobs from its own `jobs.py` (imported by the entry points, never from here):
`register("ledger.warnings", every=..., run=fn, title="台账预警灯")`, where `fn(db, settings, now)` does the work
and returns a summary. `Runner` runs what is due, each job isolated: one that raises is recorded as failed with
its error and the others still run.

Once per period across every process and replica on one database: a job runs only under its lease, a row of
`job_lease` claimed by a conditional UPDATE in a short transaction (free or expired, and due). The holder renews
it while the job runs; a killed worker stops renewing, the lease lapses after `LEASE`, and the next runner takes
the job over (its `due_at` was never moved on, so it is still due). Works alike on SQLite and PostgreSQL.

Long work started from a page (an import, a campaign run) is a run too, of kind "task": `start_task` runs it on a
thread of the serving process, with its progress (done of total, a message) written to the run for the page to
poll. A process that dies leaves its runs 'running'; `reap` marks them failed at the next start-up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import DateTime, Index, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from chunfeng import files
from chunfeng.db import Base, Database, insert_unless_present, utcnow
from chunfeng.settings import Settings

log = logging.getLogger("chunfeng.jobs")

LEASE = timedelta(minutes=5)  # a killed worker's job is taken over this long after its last renewal
HEARTBEAT_SECONDS = 30.0  # renew the lease and the run's heartbeat this often (well inside LEASE)
PROGRESS_SECONDS = 1.0  # progress is written at most this often: the page polls once a second
IDLE_SECONDS = 60.0  # a worker with nothing due looks again at least this often (another may have run a job)
STATES = {"running": "进行中", "ok": "成功", "failed": "失败"}


class JobRun(Base):
    """One run of a periodic job or of a task started from a page."""

    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_name_started", "name", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16), default="periodic")  # periodic | task
    title: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default="running", index=True)  # running | ok | failed
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    host: Mapped[str] = mapped_column(String(100), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_by: Mapped[str] = mapped_column(String(100), default="")  # a user name for a task; the worker's id else
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[int] = mapped_column(Integer, default=0)  # a failed task's HTTP status (400, 403…) for its page
    link: Mapped[str] = mapped_column(String(300), default="")  # where a finished task's result is shown

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.done / self.total)) if self.total else (100 if self.state == "ok" else 0)


class JobLease(Base):
    """Who may run a periodic job now, until when, and when it is next due."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


# --- the registry ---------------------------------------------------------------------------------------------

Summary = str | dict | None
JobFunction = Callable[[Database, Settings, datetime], Summary]
Period = timedelta | Callable[[Settings], timedelta | None]


class JobFailed(Exception):
    """A job that did its work but has something to report as a failure (e.g. a calendar year not covered):
    its message is recorded and shown as the run's error."""


@dataclass(frozen=True)
class Job:
    name: str
    title: str
    every: Period
    run: JobFunction

    def period(self, settings: Settings) -> timedelta | None:
        """How often the job runs under these settings; None: not scheduled."""
        return self.every(settings) if callable(self.every) else self.every


_registry: dict[str, Job] = {}


def register(name: str, *, every: Period, run: JobFunction, title: str) -> Job:
    job = Job(name=name, title=title, every=every, run=run)
    known = _registry.get(name)
    if known is not None and known.run is not run:
        raise ValueError(f"job {name!r} is registered twice")
    _registry[name] = job
    return job


def registered() -> list[Job]:
    """In the order they were registered: a domain registers planning before delivering."""
    return list(_registry.values())


def get_job(name: str) -> Job | None:
    return _registry.get(name)


def scan_period(settings: Settings) -> timedelta | None:
    """The scans' period: CHUNFENG_SCAN_INTERVAL_MINUTES, 0 turning the scheduled work off."""
    return timedelta(minutes=settings.scan_interval_minutes) if settings.scan_interval_minutes else None


def delivery_period(settings: Settings) -> timedelta | None:
    """Deliveries go out every 5 minutes (or as often as the scans, if that is more often); off with the scans."""
    return timedelta(minutes=min(5, settings.scan_interval_minutes)) if settings.scan_interval_minutes else None


def local_day(now: datetime) -> date:
    """The calendar day of the server's time zone at `now` (naive UTC): the day limits and deadlines are counted in."""
    return now.replace(tzinfo=UTC).astimezone().date()


def _summary_text(summary: Summary) -> str:
    if summary is None:
        return ""
    if isinstance(summary, dict):
        return ",".join(f"{k} {v}" for k, v in summary.items())
    return str(summary)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Heartbeat:
    """Renews a run (and its lease, for a periodic job) while the work goes on, and writes its progress.

    Writes happen on this thread only: the work may be inside its own write transaction (on SQLite the database's
    one write lock), and a progress write from the same thread would wait on itself."""

    def __init__(self, db: Database, run_id: int, lease: tuple[str, str] | None = None):
        self.db, self.run_id, self.lease = db, run_id, lease
        self._lock = threading.Lock()
        self._progress: tuple[int, int, str] | None = None
        # The last progress reported, written or not: work done within one PROGRESS_SECONDS never reaches the loop's
        # write, and its run must not end showing 0 of 0.
        self.latest: tuple[int, int, str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"job-heartbeat-{run_id}", daemon=True)
        self._last_beat = 0.0

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_SECONDS)

    def progress(self, done: int, total: int, message: str = "") -> None:
        with self._lock:
            self._progress = self.latest = (int(done), int(total), str(message)[:500])

    def _loop(self) -> None:
        import time

        while not self._stop.wait(PROGRESS_SECONDS):
            with self._lock:
                progress, self._progress = self._progress, None
            beat = time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS
            if progress is None and not beat:
                continue
            try:
                self._write(progress)
                self._last_beat = time.monotonic()
            except Exception:  # a missed beat is retried; the work itself must go on
                log.warning("job run %s: heartbeat not written", self.run_id, exc_info=True)

    def _write(self, progress: tuple[int, int, str] | None) -> None:
        now = utcnow()
        values: dict = {"heartbeat_at": now}
        if progress is not None:
            values.update(done=progress[0], total=progress[1], message=progress[2])
        with self.db.write() as session:
            session.execute(update(JobRun).where(JobRun.id == self.run_id, JobRun.state == "running").values(**values))
            if self.lease:
                name, holder = self.lease
                session.execute(update(JobLease).where(JobLease.name == name, JobLease.holder == holder)
                                .values(expires_at=now + LEASE))


def _finish(db: Database, run_id: int, *, ok: bool, summary: str = "", error: str = "", status: int = 0,
            link: str = "", lease: tuple[str, str] | None = None, due_at: datetime | None = None,
            progress: tuple[int, int, str] | None = None) -> None:
    now = utcnow()
    with db.write() as session:
        run = session.get(JobRun, run_id)
        run.state, run.finished_at, run.heartbeat_at = ("ok" if ok else "failed"), now, now
        run.summary, run.error, run.status, run.link = summary, error[:20000], status, link[:300]
        if progress is not None:
            run.done, run.total, run.message = progress
        if ok and run.total:
            run.done = run.total
        if lease:
            name, holder = lease
            session.execute(update(JobLease).where(JobLease.name == name, JobLease.holder == holder)
                            .values(holder="", expires_at=None, due_at=due_at))


# --- periodic jobs --------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    name: str
    state: str  # ok | failed | busy (another runner holds it) | not due
    summary: str = ""
    error: str = ""


class Runner:
    """Runs registered periodic jobs under their leases. One per worker process (or per web process, when
    CHUNFENG_RUN_JOBS_IN_WEB is on)."""

    def __init__(self, db: Database, settings: Settings, *, jobs: list[Job] | None = None, holder: str | None = None):
        self.db, self.settings = db, settings
        self.jobs = jobs if jobs is not None else registered()
        self.holder = holder or _holder()

    def scheduled(self) -> list[tuple[Job, timedelta]]:
        return [(job, period) for job in self.jobs if (period := job.period(self.settings))]

    def run_due(self, now: datetime | None = None) -> list[Outcome]:
        """Every scheduled job that is due and not held elsewhere, one after another, each isolated."""
        return [outcome for job, _ in self.scheduled()
                if (outcome := self.run(job, now=now)).state not in ("not due", "busy")]

    def run(self, job: Job, *, now: datetime | None = None, force: bool = False) -> Outcome:
        """Run `job` if it is due (or, forced, whenever no one else holds it)."""
        now = now or utcnow()
        period = job.period(self.settings) or timedelta(0)
        claimed = self._claim(job, now, force)
        if claimed is None:
            return Outcome(job.name, "busy" if self._held(job, now) else "not due")
        lease = (job.name, self.holder)
        try:
            with _Heartbeat(self.db, claimed, lease):
                summary = _summary_text(job.run(self.db, self.settings, now))
        except Exception as exc:  # noqa: BLE001 (isolation is the point: record it, the other jobs still run)
            error = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, JobFailed):
                log.exception("job %s failed", job.name)
            _finish(self.db, claimed, ok=False, error=error, lease=lease, due_at=now + period)
            return Outcome(job.name, "failed", error=error)
        _finish(self.db, claimed, ok=True, summary=summary, lease=lease, due_at=now + period)
        log.info("job %s: %s", job.name, summary)
        return Outcome(job.name, "ok", summary=summary)

    def _claim(self, job: Job, now: datetime, force: bool) -> int | None:
        with self.db.write() as session:
            insert_unless_present(session, JobLease, name=job.name)
            free = JobLease.expires_at.is_(None) | (JobLease.expires_at < now)
            due = JobLease.due_at.is_(None) | (JobLease.due_at <= now)
            claimed = session.execute(update(JobLease).where(JobLease.name == job.name, free if force else free & due)
                                      .values(holder=self.holder, expires_at=now + LEASE)).rowcount
            if not claimed:
                return None
            run = JobRun(name=job.name, kind="periodic", title=job.title, started_at=now, heartbeat_at=now,
                         host=socket.gethostname()[:100], pid=os.getpid(), started_by=self.holder[:100])
            session.add(run)
            session.flush()
            return run.id

    def _held(self, job: Job, now: datetime) -> bool:
        with self.db.read() as session:
            lease = session.get(JobLease, job.name)
            return bool(lease and lease.expires_at and lease.expires_at >= now)

    def seconds_to_next(self, now: datetime | None = None) -> float:
        """How long until the earliest scheduled job is due (at most IDLE_SECONDS)."""
        now = now or utcnow()
        names = [job.name for job, _ in self.scheduled()]
        if not names:
            return IDLE_SECONDS
        with self.db.read() as session:
            leases = {lease.name: lease for lease in session.scalars(select(JobLease).where(JobLease.name.in_(names)))}
        wait = IDLE_SECONDS
        for name in names:
            lease = leases.get(name)
            if lease is None or lease.due_at is None:
                return 0.0
            wait = min(wait, (lease.due_at - now).total_seconds())
        return max(wait, 1.0)

    def serve(self, stop: threading.Event) -> None:
        """Run due jobs until `stop` is set; a job under way is finished first."""
        log.info("worker %s: %d scheduled jobs", self.holder, len(self.scheduled()))
        while not stop.is_set():
            try:
                self.run_due()
                wait = self.seconds_to_next()
            except Exception:  # the database may be away for a moment: try again later, never exit
                log.exception("worker: could not run the schedule")
                wait = IDLE_SECONDS
            stop.wait(wait)
        log.info("worker %s stopped", self.holder)


@dataclass
class JobStatus:
    job: Job
    period: timedelta | None
    last: JobRun | None
    due_at: datetime | None
    running: bool


def status(session, settings: Settings, jobs: list[Job] | None = None) -> list[JobStatus]:
    """Each registered job with its period, last run and next due time (None: now, or never if unscheduled)."""
    jobs = jobs if jobs is not None else registered()
    leases = {lease.name: lease for lease in session.scalars(select(JobLease))}
    now = utcnow()
    found = []
    for job in jobs:
        last = session.scalars(select(JobRun).where(JobRun.name == job.name, JobRun.kind == "periodic")
                               .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1)).first()
        lease = leases.get(job.name)
        found.append(JobStatus(job, job.period(settings), last, lease.due_at if lease else None,
                               bool(lease and lease.expires_at and lease.expires_at >= now)))
    return found


# --- tasks started from a page -------------------------------------------------------------------------------

Progress = Callable[[int, int, str], None]  # (done, total, what is being done): what a service tells a progress bar


def no_progress(done: int, total: int, message: str) -> None:
    """The progress callback of a caller that shows none."""


@dataclass
class TaskResult:
    summary: str = ""
    link: str = ""  # where the result is shown (the imported items, the campaign)


TaskWork = Callable[[Progress], TaskResult]
_current_run: ContextVar[int | None] = ContextVar("chunfeng_task_run", default=None)


def current_run() -> int | None:
    """The id of the task run this thread is doing (a task that writes a file names it by its run), else None."""
    return _current_run.get()
# Turns an exception into (HTTP status, message for people), or None for one that is not for people.
Explain = Callable[[Exception], tuple[int, str] | None]


def start_task(db: Database, *, name: str, title: str, started_by: str, work: TaskWork,
               explain: Explain = lambda exc: None) -> int:
    """Record a run and do `work(progress)` on a thread of this process; returns the run's id at once."""
    now = utcnow()
    with db.write() as session:
        run = JobRun(name=name, kind="task", title=title[:200], started_at=now, heartbeat_at=now,
                     host=socket.gethostname()[:100], pid=os.getpid(), started_by=started_by[:100])
        session.add(run)
        session.flush()
        run_id = run.id
    context = copy_context()  # the request's audit source address goes with the work
    thread = threading.Thread(target=context.run, args=(_do_task, db, run_id, work, explain),
                              name=f"task-{name}-{run_id}", daemon=True)
    thread.start()
    return run_id


def _do_task(db: Database, run_id: int, work: TaskWork, explain: Explain) -> None:
    _current_run.set(run_id)  # inside the task's own copied context: no other thread sees it
    beat = _Heartbeat(db, run_id)
    try:
        with beat:
            result = work(beat.progress)
    except Exception as exc:  # noqa: BLE001 (the run records every outcome; nothing is left 'running')
        explained = explain(exc)
        if explained is None:
            log.exception("task %s failed", run_id)
            explained = (500, f"执行出错({type(exc).__name__}),详见服务器日志")
        try:
            _finish(db, run_id, ok=False, status=explained[0], error=explained[1], progress=beat.latest)
        except Exception:
            log.exception("task %s: outcome not recorded", run_id)
        return
    _finish(db, run_id, ok=True, summary=result.summary, link=result.link, progress=beat.latest)


def get_run(session, run_id: int) -> JobRun | None:
    return session.get(JobRun, run_id)


def reap(db: Database, *, now: datetime | None = None) -> int:
    """Mark failed the runs no process is doing any more: on this host, those of a process that has exited; on
    any host, those whose heartbeat stopped more than two leases ago. Returns how many."""
    now = now or utcnow()
    host = socket.gethostname()[:100]
    with db.read() as session:
        running = list(session.execute(select(JobRun.id, JobRun.host, JobRun.pid, JobRun.heartbeat_at)
                                       .where(JobRun.state == "running")))
    dead = [run_id for run_id, run_host, pid, beat in running
            if (run_host == host and pid != os.getpid() and not _alive(pid)) or beat < now - 2 * LEASE]
    if dead:
        with db.write() as session:
            session.execute(update(JobRun).where(JobRun.id.in_(dead), JobRun.state == "running").values(
                state="failed", finished_at=now, status=500, error="执行中断:运行它的进程已退出(例如服务重启),请重新发起"))
    return len(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_exports(db: Database, settings: Settings, now: datetime) -> dict:
    """The base layer's own periodic job: a task's export (a taxpayer list is personal data) nobody fetched is
    removed a day after it was written, whether or not anyone exports again."""
    return {"删除无人下载的导出文件": files.sweep_task_files(settings.data_dir)}


register("files.exports", every=scan_period, run=sweep_exports, title="过期导出文件清理")
