"""What every domain's CLI shares: the database, the acting user, and turning domain errors into messages."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from chunfeng import runtime
from chunfeng.db import Database, get_database
from chunfeng.errors import ChunfengError, Forbidden
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor
from chunfeng.org.models import User
from chunfeng.settings import Settings, get_settings
from chunfeng.tabular import TableLimits

console = Console()
err_console = Console(stderr=True)


class State:
    acting_as: str | None = None
    settings: Settings | None = None


state = State()


def settings() -> Settings:
    """The settings, read once per command when it first needs them, with the process-wide state they decide."""
    if state.settings is None:
        state.settings = get_settings()
        runtime.configure(state.settings)
    return state.settings


def import_limits() -> TableLimits:
    """The caps a CSV/xlsx import reads under (settings import_max_*)."""
    return TableLimits.from_settings(settings())


def database() -> Database:
    config = settings()
    config.ensure_sqlite_dir()
    db = get_database(config.sqlalchemy_url)
    db.upgrade()
    return db


def actor(session: Session) -> Actor:
    """The CLI acts as the server operator, or as `--as USER` with that user's rights."""
    if state.acting_as is None:
        return SystemActor()
    user = session.scalar(select(User).where(User.username == state.acting_as))
    if user is None:
        fail(f"--as:没有用户“{state.acting_as}”")
    return user


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]错误:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class DomainErrors(TyperGroup):
    """The `chunfeng` command's group: whatever sub-command runs, a domain error becomes a red message and exit
    status 1, in this one place; nothing was changed (the transaction rolled back)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChunfengError as exc:
            if isinstance(exc, Forbidden):
                _record_refusal(exc)
            fail(exc.for_terminal())


def _record_refusal(exc: Forbidden) -> None:
    """A refused command is a security event, as a refused request is on the web: recorded as denied, in its own
    transaction (the command's was rolled back), with the command line but no password."""
    words, hide = ["chunfeng"], False
    for word in sys.argv[1:]:
        words.append("***" if hide else "--password=***" if word.startswith("--password=") else word)
        hide = word == "--password"
    with database().write() as session:
        audit.record(session, actor=actor(session), action="access.denied", object_type="command",
                     object_id=" ".join(words)[:100], after={"reason": str(exc), "command": " ".join(words)},
                     outcome="denied")
