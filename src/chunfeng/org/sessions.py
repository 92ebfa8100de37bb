"""Login sessions: a random token in an HttpOnly cookie, its SHA-256 digest in the database.

A session ends after `session_idle_minutes` without a request or `session_max_hours` after login,
whichever comes first; logging out deletes it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.org.models import User, UserSession


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
    """The live session for a token, its idle clock reset; None when unknown or expired (and then deleted)."""
    if not token:
        return None
    row = session.scalar(select(UserSession).where(UserSession.token_digest == _digest(token)))
    if row is None:
        return None
    now = utcnow()
    if now >= row.expires_at or now - row.last_seen_at > timedelta(minutes=idle_minutes) or not row.user.active:
        session.delete(row)
        return None
    row.last_seen_at = now
    return row


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
