"""Login failure handling: too many wrong passwords for a user name from one address lock that address out of
that user name for a while (the combination lock of OWASP's Authentication Cheat Sheet and django-axes).

Locking per (user name, address) instead of per account means an attacker who types wrong passwords for an
official's name locks only themselves out; the official signs in from their own desk. Guessing one account from
many addresses is slowed by the per-address rate limit on /login, the password policy and, for administrators,
the second factor. The user name is kept as typed, so a name that does not exist locks exactly like one that
does: the answers and their timing do not tell which names exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from chunfeng.db import insert_unless_present
from chunfeng.org.models import LoginFailure


@dataclass(frozen=True)
class Policy:
    max_failures: int = 5
    minutes: int = 15

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.minutes)


def _row(session: Session, username: str, source: str, *, for_update: bool = False) -> LoginFailure | None:
    query = select(LoginFailure).where(LoginFailure.username == username[:64], LoginFailure.source == source[:64])
    # populate_existing: the row may already be in this session from the lock check, with a count now stale.
    return session.scalar(query.with_for_update().execution_options(populate_existing=True) if for_update else query)


def locked_until(session: Session, *, username: str, source: str, now: datetime) -> datetime | None:
    """Until when `source` may not sign in as `username`, or None."""
    row = _row(session, username, source)
    return row.locked_until if row is not None and row.locked_until and row.locked_until > now else None


def record_failure(session: Session, *, username: str, source: str, policy: Policy, now: datetime) -> datetime | None:
    """Count a wrong password; when it is the last one allowed, lock and return until when. Failures further
    apart than the lock's length are not consecutive: the count starts again."""
    # Forget what has run its course, so names typed once by anybody do not pile up.
    session.execute(delete(LoginFailure).where(LoginFailure.last_failure_at <= now - policy.window,
                                               (LoginFailure.locked_until.is_(None)) | (LoginFailure.locked_until <= now)))
    # Concurrent wrong passwords for one name and address must all count: create the row if missing without
    # racing on its unique key, then count under a row lock (PostgreSQL; SQLite's write lock already serialises).
    insert_unless_present(session, LoginFailure, username=username[:64], source=source[:64], failures=0,
                          last_failure_at=now)
    row = _row(session, username, source, for_update=True)
    row.failures, row.last_failure_at = row.failures + 1, now
    if row.failures < policy.max_failures:
        session.flush()
        return None
    row.failures, row.locked_until = 0, now + policy.window
    session.flush()
    return row.locked_until


def clear(session: Session, *, username: str, source: str | None = None) -> None:
    """Forget the failures of a user name — from one address after a good login there, or from all (unlock)."""
    where = [LoginFailure.username == username[:64]]
    if source is not None:
        where.append(LoginFailure.source == source[:64])
    session.execute(delete(LoginFailure).where(*where))


@dataclass
class State:
    failures: int = 0  # wrong passwords since the last lock or good login, over all addresses
    locked_until: datetime | None = None  # the latest running lock of any address
    addresses: int = 0  # how many addresses are locked


def states(session: Session, *, usernames: list[str], now: datetime) -> dict[str, State]:
    """What the security administrator sees per account: failures, running locks."""
    found: dict[str, State] = {}
    for row in session.scalars(select(LoginFailure).where(LoginFailure.username.in_(usernames))):
        state = found.setdefault(row.username, State())
        if row.locked_until and row.locked_until > now:
            state.addresses += 1
            state.locked_until = max(state.locked_until or row.locked_until, row.locked_until)
        else:
            state.failures += row.failures
    return found
