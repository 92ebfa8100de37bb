"""The `chunfeng` command: one sub-command group per domain, plus serve and demo."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from chunfeng import __version__, jobs
from chunfeng.appeals import jobs as _appeals_jobs  # noqa: F401 (each domain registers its periodic jobs)
from chunfeng.appeals.cli import app as appeals_app
from chunfeng.calendar.cli import app as calendar_app
from chunfeng.cli_support import DomainErrors, actor, console, database, fail, settings, state
from chunfeng.consult.cli import app as consult_app
from chunfeng.consult.cli import ask as ask_command
from chunfeng.credit import jobs as _credit_jobs  # noqa: F401
from chunfeng.credit.cli import app as credit_app
from chunfeng.inbox import jobs as _inbox_jobs  # noqa: F401
from chunfeng.inbox.cli import app as inbox_app
from chunfeng.ledger import jobs as _ledger_jobs  # noqa: F401
from chunfeng.ledger.cli import app as ledger_app
from chunfeng.org.cli import audit_app, org_app, user_app
from chunfeng.plan.cli import app as plan_app
from chunfeng.push import jobs as _push_jobs  # noqa: F401
from chunfeng.push.cli import app as push_app
from chunfeng.survey import jobs as _survey_jobs  # noqa: F401
from chunfeng.survey.cli import app as survey_app

app = typer.Typer(cls=DomainErrors, help="春风 — 便民办税春风行动管理平台", no_args_is_help=True, add_completion=False)
app.add_typer(plan_app, name="plan")
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")
app.add_typer(inbox_app, name="inbox")
app.add_typer(consult_app, name="consult")
app.add_typer(push_app, name="push")
app.add_typer(appeals_app, name="appeals")
app.add_typer(credit_app, name="credit")
app.add_typer(calendar_app, name="calendar")
app.add_typer(survey_app, name="survey")
app.command("ask")(ask_command)

db_app = typer.Typer(help="数据库", no_args_is_help=True)
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(help="定时任务", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def print_version(value: bool) -> None:
    if value:
        console.print(f"chunfeng {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    acting_as: Optional[str] = typer.Option(None, "--as", help="act as this user, with that user's rights"),
    # Eager: Click demands a sub-command before it calls this function, so a plain flag never got here (exit 2).
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                 help="print the version and exit"),
):
    state.acting_as = acting_as
    # Read once here, configuring the process (data key, calendar file, audit head) for whatever the command calls.
    # Settings that do not validate are reported by the first command that needs them, as before: --help still works.
    with suppress(ValidationError):
        settings()


@db_app.command("upgrade")
def db_upgrade():
    """Create or upgrade the schema to the newest version."""
    db = database()
    console.print(f"数据库已是最新版本 {db.schema_version()}:{db.engine.url.render_as_string(hide_password=True)}")


@app.command("backup")
def backup_command(file: Path = typer.Argument(..., help="the archive to write, e.g. chunfeng-2022-07-01.tar.gz")):
    """Back up every table and the file store (evidence, attachments) into one archive."""
    from chunfeng import backup

    db = database()
    with db.read() as session:
        who = actor(session)
    with console.status("正在备份…"):
        info = backup.backup(db, files=Path(settings().data_dir), out=file, actor=who)
    console.print(f"已备份 {sum(info.rows.values()):,} 行、{info.files} 个文件(数据库版本 {info.schema}):{info.path}")


@app.command("restore")
def restore_command(file: Path, yes: bool = typer.Option(False, "--yes", help="replace the current data without asking")):
    """Replace all data and files with an archive's, after checking its MAC, its members and every checksum."""
    from chunfeng import backup

    if not yes and not typer.confirm("恢复将以备份替换当前全部数据,继续吗?"):
        raise typer.Exit(1)
    db = database()
    with db.read() as session:
        who = actor(session)
    with console.status("正在恢复…"):
        info = backup.restore(db, files=Path(settings().data_dir), archive=file, actor=who)
    console.print(f"已恢复 {sum(info.rows.values()):,} 行、{info.files} 个文件。")


@app.command("collect-files")
def collect_files(hours: float = typer.Option(1.0, min=0.1, help="only files older than this many hours")):
    """Remove stored files no evidence or attachment references (left by refused or rolled-back uploads)."""
    from chunfeng.files import collect_orphans
    from chunfeng.models import referenced_files

    with database().read() as session:
        referenced = referenced_files(session)
    removed = collect_orphans(Path(settings().data_dir), referenced, older_than=timedelta(hours=hours))
    console.print(f"已删除 {len(removed)} 个无引用的文件。")


@app.command()
def worker():
    """Run the periodic jobs as they come due, once per period across every worker and server on this database;
    SIGTERM or Ctrl+C stops it after the job under way."""
    import logging
    import signal
    import threading

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db = database()
    jobs.reap(db)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    jobs.Runner(db, settings()).serve(stop)


@jobs_app.command("run")
def jobs_run(name: Optional[str] = typer.Argument(None, help="the job to run now, due or not; default: every job "
                                                              "that is due")):
    """Run the periodic jobs that are due (or the one named) once, now, and report each."""
    db = database()
    runner = jobs.Runner(db, settings())
    if name is None:
        outcomes = runner.run_due()
    else:
        job = jobs.get_job(name)
        if job is None:
            fail(f"没有定时任务“{name}”;可用:{'、'.join(j.name for j in jobs.registered())}")
        outcomes = [runner.run(job, force=True)]
    if not outcomes:
        console.print("没有到期的定时任务。")
    for outcome in outcomes:
        if outcome.state == "ok":
            console.print(f"[green]成功[/] {outcome.name}:{outcome.summary}", highlight=False, soft_wrap=True)
        elif outcome.state == "busy":
            console.print(f"[yellow]跳过[/] {outcome.name}:另一个进程正在运行它", highlight=False)
        else:
            console.print(f"[red]失败[/] {outcome.name}:{outcome.error}", highlight=False, soft_wrap=True)
    if any(o.state == "failed" for o in outcomes):
        raise typer.Exit(1)


@jobs_app.command("list")
def jobs_list():
    """Every periodic job with its period, last run, outcome and when it is next due."""
    from rich.table import Table

    with database().read() as session:
        found = jobs.status(session, settings())
    table = Table("任务", "名称", "周期", "上次运行", "结果", "下次")
    for s in found:
        last = s.last
        outcome = "" if last is None else jobs.STATES[last.state] + (f":{last.error[:60]}" if last.error else "")
        table.add_row(s.job.name, s.job.title, f"{s.period.total_seconds() / 60:g} 分钟" if s.period else "停用",
                      f"{last.started_at:%Y-%m-%d %H:%M} UTC" if last else "从未", outcome,
                      "运行中" if s.running else "停用" if not s.period else
                      f"{s.due_at:%Y-%m-%d %H:%M} UTC" if s.due_at else "即刻")
    console.print(table)


@app.command()
def serve(host: Optional[str] = None, port: Optional[int] = None):
    """Start the web application."""
    from chunfeng.web.app import create_app
    from chunfeng.web.server import run

    config = settings()
    db = database()
    run(create_app(db, config), config, host=host, port=port)


@app.command()
def demo(serve_after: bool = typer.Option(True, "--serve/--no-serve", help="start the web application afterwards"),
         host: Optional[str] = None, port: Optional[int] = None):
    """Fill the database with the notice, a synthetic organisation and demo users, then serve."""
    from chunfeng import demo as demo_data

    config = settings()
    if not config.is_local:  # demo accounts share a documented password: never outside a local machine
        fail(f"演示数据只能在本地环境中创建(CHUNFENG_ENVIRONMENT=local),当前为“{config.environment}”")
    db = database()
    with console.status("正在导入通知和演示数据…"), db.write() as session:
        logins = demo_data.fill(session=session, store_file=Path(config.push_store), settings=config)
    url = f"http://{host or config.host}:{port or config.port}/"
    console.print(f"[bold]春风演示已就绪[/]  数据库:{db.engine.url.render_as_string(hide_password=True)}")
    console.print("演示账号(密码均为 [bold]" + demo_data.DEMO_PASSWORD + "[/],仅供本地演示):")
    for login in logins:
        console.print(f"  {login.username:<12} {login.unit}:{login.purpose}", highlight=False, soft_wrap=True)
    if serve_after:
        console.print(f"打开 [bold]{url}[/] 登录。按 Ctrl+C 结束。")
        from chunfeng.web.app import create_app
        from chunfeng.web.server import run

        # One process for the whole demo: the periodic jobs (lights, deliveries…) run in it, no worker needed.
        config = config.model_copy(update={"run_jobs_in_web": True})
        run(create_app(db, config), config, host=host, port=port)
