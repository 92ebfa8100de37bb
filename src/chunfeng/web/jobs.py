"""Pages of the job runner: the periodic jobs for the system administrator, and the progress and result page of
long work a user started from a page (an import, a campaign run, a large export), which the page hands to `start`
(or, for a file, `start_export`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from chunfeng import files, jobs
from chunfeng.db import Database
from chunfeng.errors import ChunfengError, Forbidden, NotFound
from chunfeng.org import audit
from chunfeng.org.access import allowed
from chunfeng.org.models import User
from chunfeng.paging import clamp_page, paginate
from chunfeng.settings import Settings
from chunfeng.web import downloads
from chunfeng.web.contract import Id, PageNo
from chunfeng.web.deps import CurrentUser, SessionDep, SettingsDep, is_htmx, render, require

router = APIRouter(tags=["jobs"])

def start(db: Database, user: User, *, name: str, title: str, work: jobs.TaskWork) -> RedirectResponse:
    """Run `work(progress)` as a task of this process and send the browser to its progress page."""

    def explain(exc: Exception) -> tuple[int, str] | None:
        # The status the one error handler gives a request (web/app.py), for work that failed off the request.
        if not isinstance(exc, ChunfengError) or exc.status >= 500:
            return None
        if isinstance(exc, Forbidden):  # a refusal is a security event, as on a request
            audit.record_denied(db, actor=user, object_type="job", object_id=name, reason=str(exc))
        return exc.status, str(exc)

    run_id = jobs.start_task(db, name=name, title=title, started_by=user.username, work=work, explain=explain)
    return RedirectResponse(f"/jobs/runs/{run_id}", status_code=303)


def start_export(db: Database, user: User, settings: Settings, *, name: str, title: str, filename: str,
                 write: Callable[[Path, jobs.Progress], str]) -> RedirectResponse:
    """Write a large file as a task: `write(path, progress)` fills `path` and returns the summary. The run's result
    link is its download, which only its starter may fetch, once; files nobody fetched are swept by the
    `files.exports` job."""

    def work(progress: jobs.Progress) -> jobs.TaskResult:
        run_id = jobs.current_run()
        path = files.task_file_path(settings.data_dir, run_id, filename)
        try:
            summary = write(path, progress)
        except BaseException:  # a half-written file is never offered
            files.discard_task_file(settings.data_dir, run_id)
            raise
        return jobs.TaskResult(summary, f"/jobs/runs/{run_id}/download")

    return start(db, user, name=name, title=title, work=work)


def _visible_run(session, user: User, run_id: int) -> jobs.JobRun:
    """A task's run is its starter's alone (its result may name taxpayers); a periodic run the administrator's.
    Anyone else is told it does not exist."""
    run = jobs.get_run(session, run_id)
    mine = run is not None and run.kind == "task" and run.started_by == user.username
    if not (mine or (run is not None and run.kind == "periodic" and allowed(user, "jobs.view"))):
        raise NotFound(f"没有编号为 {run_id} 的任务")
    return run


@router.get("/jobs", dependencies=[require("jobs.view")])
def jobs_page(request: Request, session: SessionDep, user: CurrentUser, page: PageNo = 1):
    page, per_page = clamp_page(page, 50)
    periodic = select(jobs.JobRun).where(jobs.JobRun.kind == "periodic")
    result = paginate(session, periodic.order_by(jobs.JobRun.started_at.desc(), jobs.JobRun.id.desc()), page, per_page)
    return render(request, "jobs/index.html", {
        "found": jobs.status(session, request.app.state.settings), "result": result,
        "states": jobs.STATES}, user=user)


@router.get("/jobs/runs/{run_id}")
def run_page(request: Request, run_id: Id, session: SessionDep, user: CurrentUser):
    run = _visible_run(session, user, run_id)
    # A failed task's page answers with the status its refusal would have had on the request (400, 403…).
    status = run.status if run.state == "failed" and 400 <= run.status < 600 else 200
    return render(request, "jobs/run.html", {"run": run, "states": jobs.STATES}, user=user, status_code=status)


@router.get("/jobs/runs/{run_id}/progress")
def run_progress(request: Request, run_id: Id, session: SessionDep, user: CurrentUser):
    """The progress bar, polled by the page; once the run is over, htmx reloads the page to show the result."""
    run = _visible_run(session, user, run_id)
    if run.state != "running" and is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": f"/jobs/runs/{run_id}"})
    return render(request, "jobs/_progress.html", {"run": run, "states": jobs.STATES}, user=user)


@router.get("/jobs/runs/{run_id}/download")
def run_download(run_id: Id, session: SessionDep, user: CurrentUser, settings: SettingsDep):
    """The file a finished export wrote, for the user who started it (anyone else: no such run)."""
    run = _visible_run(session, user, run_id)
    if run.state != "ok" or not run.link.endswith("/download"):
        raise NotFound(f"任务 {run_id} 没有可下载的文件")
    return downloads.task_file(settings.data_dir, run_id)
