"""Sessions end when idle too long, when too old, and at logout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from chunfeng.org.models import User, UserSession
from chunfeng.org.sessions import end_session, resume_session, start_session


def start(db, username) -> str:
    with db.write() as s:
        user = s.scalar(select(User).where(User.username == username))
        return start_session(s, user=user, max_hours=12)


def test_session_lifecycle(db, make_user):
    make_user("erin", "110000", ["viewer"])
    token = start(db, "erin")
    with db.write() as s:
        row = s.scalar(select(UserSession))
        assert row.token_digest != token and len(row.token_digest) == 64  # only a digest is stored
        assert resume_session(s, token=token, idle_minutes=30).user.username == "erin"
        assert resume_session(s, token="forged", idle_minutes=30) is None
    with db.write() as s:
        end_session(s, token=token)
    with db.write() as s:
        assert resume_session(s, token=token, idle_minutes=30) is None


def test_idle_session_expires(db, make_user):
    make_user("frank", "110000", ["viewer"])
    token = start(db, "frank")
    with db.write() as s:
        row = s.scalar(select(UserSession))
        row.last_seen_at -= timedelta(minutes=31)
    with db.write() as s:
        assert resume_session(s, token=token, idle_minutes=30) is None
        assert s.scalar(select(UserSession)) is None  # and is removed


def test_old_session_expires_even_when_used(db, make_user):
    make_user("grace", "110000", ["viewer"])
    token = start(db, "grace")
    with db.write() as s:
        row = s.scalar(select(UserSession))
        row.expires_at = row.created_at + timedelta(seconds=-1)
    with db.write() as s:
        assert resume_session(s, token=token, idle_minutes=30) is None
