"""Login sessions: a random token in an HttpOnly cookie, its SHA-256 digest in the database.

A session ends after `session_idle_minutes` without a request or `session_max_hours` after login,
whichever comes first; logging out deletes it.

Reading a page does not write: the last-seen time is refreshed at most once every `SEEN_REFRESH`, in a short
transaction of its own, so that signed-in pages never queue behind an import holding the write lock.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.org.models import User, UserSession

# How stale a session's last-seen time may get before a request refreshes it. The idle limit is counted in minutes,
# so a minute's slack costs nothing and spares a write on all but one request a minute.
SEEN_REFRESH = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, *, user: User, max_hours: int, source: str = "") -> str:
    """Create a session for `user` and return the token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(UserSession(
        token_digest=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
        expires_at=now + timedelta(hours=max_hours), source=source[:64],
    ))
    session.flush()
    return token


def resume_session(session: Session, *, token: str, idle_minutes: int) -> UserSession | None:
    """The live session for a token; None when unknown or expired (and then deleted).

    Its last-seen time is refreshed only when older than `SEEN_REFRESH`, so that within a minute of the last refresh
    this changes nothing and a read-only session may be used (`needs_refresh` then says whether to `touch_session`).
    """
    row = find_session(session, token=token)
    if row is None:
        return None
    if is_expired(row, idle_minutes=idle_minutes):
        session.delete(row)
        return None
    if needs_refresh(row):
        row.last_seen_at = utcnow()
    return row


def find_session(session: Session, *, token: str) -> UserSession | None:
    """The session row for a token, live or not, changing nothing (for a read-only session)."""
    if not token:
        return None
    return session.scalar(select(UserSession).where(UserSession.token_digest == _digest(token)))


def is_expired(row: UserSession, *, idle_minutes: int) -> bool:
    now = utcnow()
    return now >= row.expires_at or now - row.last_seen_at > timedelta(minutes=idle_minutes) or not row.user.active


def needs_refresh(row: UserSession) -> bool:
    return utcnow() - row.last_seen_at >= SEEN_REFRESH


def touch_session(session: Session, *, session_id: int) -> None:
    """Refresh a session's last-seen time unless another request did within `SEEN_REFRESH`."""
    now = utcnow()
    session.execute(update(UserSession).where(UserSession.id == session_id,
                                              UserSession.last_seen_at <= now - SEEN_REFRESH)
                    .values(last_seen_at=now))


def drop_session(session: Session, *, session_id: int) -> None:
    session.execute(delete(UserSession).where(UserSession.id == session_id))


def end_session(session: Session, *, token: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_digest == _digest(token)))


def own_sessions(session: Session, *, user: User) -> list[UserSession]:
    """The user's live sessions, newest first: where and when they signed in."""
    now = utcnow()
    return list(session.scalars(select(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at > now)
                                .order_by(UserSession.created_at.desc(), UserSession.id.desc())))


def is_current(row: UserSession, token: str) -> bool:
    return row.token_digest == _digest(token)


def end_own_session(session: Session, *, user: User, session_id: int) -> bool:
    """End one of the user's own sessions (another browser, a lost phone); False if it is not theirs."""
    done = session.execute(delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id))
    return bool(done.rowcount)


def end_other_sessions(session: Session, *, user: User, keep_token: str = "") -> int:
    """End every session of the user but the one with `keep_token` (none kept when empty): after a password
    change or reset, or a second-factor reset, whoever signed in with the old credentials is signed out."""
    where = [UserSession.user_id == user.id]
    if keep_token:
        where.append(UserSession.token_digest != _digest(keep_token))
    return session.execute(delete(UserSession).where(*where)).rowcount or 0
