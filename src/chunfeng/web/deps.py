"""Dependencies every route uses: the database, the current user, permission checks, rendering."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import BackgroundTasks, Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from chunfeng import documents
from chunfeng.channels import ChannelRules
from chunfeng.db import Database
from chunfeng.inbox.services import unread_count
from chunfeng.org.access import allowed, authorize
from chunfeng.org.models import User
from chunfeng.org.roles import LEVELS, ROLES
from chunfeng.org.services import password_expired
from chunfeng.org.sessions import drop_session, find_session, is_expired, needs_refresh, touch_session
from chunfeng.push.campaigns import inbox_unread
from chunfeng.settings import Settings
from chunfeng.tabular import TableLimits
from chunfeng.web.pickers import region_options
from chunfeng.web.security import CSRF_FIELD, SESSION_COOKIE, csrf_token

# The one Jinja environment (chunfeng.documents), with the site's pages added: a page can include a document's body.
documents.add_templates(Path(__file__).with_name("templates"))
templates = Jinja2Templates(env=documents.environment)
templates.env.globals.update(ROLES=ROLES, LEVELS=LEVELS, CSRF_FIELD=CSRF_FIELD, allowed=allowed)
templates.env.globals.update(region_options=region_options)


class LoginRequired(Exception):
    """No live session: pages redirect to the login form, API calls answer 401."""


# Async, though nothing here waits: FastAPI runs a plain `def` dependency on the thread pool, a hop to a thread and
# back (≈ 0.1 ms of CPU and two wake-ups) for an attribute read (issue 18: the answer page at 50 respondents).
async def get_db(request: Request) -> Database:
    return request.app.state.db


async def app_settings(request: Request) -> Settings:
    return request.app.state.settings


DatabaseDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(app_settings)]


def import_limits(request: Request) -> TableLimits:
    """The caps an uploaded CSV/xlsx is read under (settings import_max_*)."""
    return TableLimits.from_settings(request.app.state.settings)


ImportLimitsDep = Annotated[TableLimits, Depends(import_limits)]


def channel_rules(request: Request) -> ChannelRules:
    """Where a notification channel may point (settings channel_schemes, channel_hosts_allowed)."""
    return ChannelRules.from_settings(request.app.state.settings)


ChannelRulesDep = Annotated[ChannelRules, Depends(channel_rules)]


def read_session(db: DatabaseDep) -> Iterator[Session]:
    with db.read() as session:
        yield session


SessionDep = Annotated[Session, Depends(read_session)]


def optional_user(request: Request, db: DatabaseDep, settings: SettingsDep,
                  background: BackgroundTasks = None) -> User | None:  # None when called by hand: refreshed at once
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    # Read, not write: a signed-in page must not wait for the write lock an import or a scan holds.
    with db.read() as session:
        row = find_session(session, token=token)
        user = row.user if row is not None else None
        if user is not None:
            _ = user.unit.path  # loaded now: the user object outlives this session
        expired = row is not None and is_expired(row, idle_minutes=settings.session_idle_minutes)
    if row is None:
        user = None
    elif expired:
        with db.write() as session:
            drop_session(session, session_id=row.id)
        user = None
    elif needs_refresh(row):  # at most once a minute, after the page has answered
        if background is None:
            _refresh_last_seen(db, row.id)
        else:
            background.add_task(_refresh_last_seen, db, row.id)
    request.state.user = user
    return user


def _refresh_last_seen(db: Database, session_id: int) -> None:
    try:
        with db.write() as session:
            touch_session(session, session_id=session_id)
    except Exception:  # a missed refresh is retried by the next request; the page has already answered
        logging.getLogger("chunfeng").exception("could not refresh a session's last-seen time")


class SecondFactorRequired(Exception):
    """An administrator without a TOTP second factor: nothing but enrolling until it is set up."""


class PasswordChangeRequired(Exception):
    """The user's password is an initial, reset or expired one: nothing but changing it until it is changed."""


def current_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise LoginRequired()
    settings = request.app.state.settings
    if user.must_change_password or password_expired(user, max_age_days=settings.password_max_age_days):
        raise PasswordChangeRequired()
    if not user.totp_secret and user.role_set & set(settings.totp_required_roles):
        raise SecondFactorRequired()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*permissions: str):
    """A route's own permission, declared on the route and checked before its body is read into parameters:
    the user must hold one of `permissions` at all. The services check the unit subtree of what they touch."""

    def check(user: CurrentUser) -> User:
        if not any(allowed(user, permission) for permission in permissions):
            authorize(user, permissions[0])  # raises Forbidden naming the permission
        return user

    return Depends(check)


def render(request: Request, template: str, context: dict, *, status_code: int = 200, user: User | None = None):
    settings = request.app.state.settings
    unread = 0
    if user is not None:
        with request.app.state.db.read() as session:
            if "taxpayer" in user.role_set:
                unread = inbox_unread(session=session, actor=user)
            elif allowed(user, "inbox.read"):
                unread = unread_count(session=session, actor=user)
    context = {"request": request, "user": user, "csrf_token": csrf_token(settings.secret_key, request),
               "unread_count": unread, **context}
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target)}"
