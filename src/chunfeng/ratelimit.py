"""Rate limits every server process shares: per client address, and a ceiling per public endpoint.

Each (bucket, key) is one row holding its *theoretical arrival time* (GCRA, the generic cell rate algorithm): a limit
of N requests per period admits a request when the row's time is at most `period - period/N` ahead of now, and moves
it on by `period/N`. One upsert per request decides and counts, on SQLite (≥ 3.35) and PostgreSQL alike, with no
window boundary at which a client gets twice its limit and an exact time at which it may come back.

Two modes:
- a per-address limit does not count what it refuses: a client retrying too fast gets in again at its rate;
- a ceiling counts refused arrivals too, up to `backlog` seconds ahead, so that in an overload the time each refused
  client is told to come back grows with the queue in front of it and the retries spread out instead of all
  returning in the same second.

The counting has its own small engine: on PostgreSQL its commits do not wait for the disk (`synchronous_commit`
off: a crash forgets at most the last fraction of a second of counts) and it waits at most `wait_seconds` for a
lock; on SQLite the same wait bounds the write lock. A store that does not answer in time never holds a request:
the process counts in its own memory until the store answers again (limits then hold per process, as before).
On SQLite the counts queue on the process's write lock with its other writers (`Database.write_lock`).

A ceiling high enough to admit several requests in `LEASE_SECONDS` is not written once a request: a process takes
that many slots from the shared row in one statement (a lease, counted at once as so many admitted requests) and
admits from it in memory until it is spent or `LEASE_SECONDS` have passed. The fleet never admits more than the
ceiling (every slot handed out is in the row); at most one lease a process goes unused. A lease that does not fit
under the ceiling is not taken, and that request is counted alone, refusal and all, as before.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Boolean, Float, String, case, create_engine, delete, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from chunfeng.db import Base

log = logging.getLogger("chunfeng.ratelimit")

PRUNE_EVERY = 60.0  # seconds between removals of rows that say nothing any more (their time has passed)
# How much of a ceiling one process takes at a time: at 500 a second, 25 requests a database write, not one each
# (1–2 ms a request, issue 16); short enough that slots a process leases and then has no use for are few.
LEASE_SECONDS = 0.05


class LockNotTaken(SQLAlchemyError):
    """The store was not free within the wait: count in the process meanwhile."""


class RateState(Base):
    """One limit's state for one key: `tat`, the epoch second from which the next request is on schedule."""

    __tablename__ = "rate_limit"

    bucket: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # a client address, or "*" for a ceiling
    tat: Mapped[float] = mapped_column(Float, index=True)
    refused: Mapped[bool] = mapped_column(Boolean, default=False)  # whether the last request counted was refused


@dataclass(frozen=True)
class Rule:
    """At most `limit` requests per `period` seconds for (bucket, key); `backlog` > 0 makes it a ceiling."""

    bucket: str
    key: str
    limit: int
    period: float
    backlog: float = 0.0

    @property
    def interval(self) -> float:
        return self.period / self.limit

    @property
    def tolerance(self) -> float:
        return self.period - self.interval

    @property
    def lease(self) -> int:
        """Slots a process takes from the shared row at once: more than one only for a ceiling."""
        return max(1, int(self.limit * LEASE_SECONDS / self.period)) if self.backlog else 1


@dataclass(frozen=True)
class Refusal:
    rule: Rule
    retry_after: float  # seconds until this client may come back

    @property
    def seconds(self) -> int:
        """Retry-After as HTTP states it: whole seconds, at least one."""
        return max(1, math.ceil(self.retry_after - 1e-6))


EPSILON = 1e-6  # float comparisons of epoch seconds: a request exactly on schedule is admitted


def advance(tat: float | None, now: float, rule: Rule) -> tuple[float, bool]:
    """The next state and whether this request is refused: the rule the SQL statement below applies, in Python."""
    base = max(tat or now, now)
    if base - now <= rule.tolerance + EPSILON:
        return base + rule.interval, False
    if rule.backlog:
        return min(tat + rule.interval, now + rule.tolerance + rule.backlog), True
    return tat, True


def _retry_after(tat: float, now: float, rule: Rule) -> float:
    # When the row's time is back within tolerance; for a ceiling that time already includes this refusal.
    return max(0.0, tat - now - rule.tolerance)


class RateLimiter:
    """The shared counters of one database, with the process's own memory as the fallback."""

    def __init__(self, url: str, *, wait_seconds: float = 0.25, write_lock: threading.RLock | None = None):
        self.wait_seconds = wait_seconds
        # SQLite: the lock the process's other writers queue on. Meeting them in SQLite's busy handler instead,
        # which sleeps in growing steps, held an ordinary write up to seconds behind a stream of counts.
        self.write_lock = write_lock
        self.engine = _counting_engine(url, wait_seconds)
        self._memory: dict[tuple[str, str], float] = {}
        self._memory_lock = threading.Lock()
        self._pruned = 0.0
        self._warned = 0.0
        self._leases: dict[Rule, tuple[int, float]] = {}  # a ceiling → slots left in this process, until when
        self._lease_lock = threading.Lock()

    def take(self, rules: list[Rule], *, now: float | None = None) -> Refusal | None:
        """Count one request against each rule in turn; the first refusal stops the counting and is returned."""
        now = time.time() if now is None else now
        rules = [rule for rule in rules if not self._spend_lease(rule, now)]
        if not rules:
            return None
        try:
            return self._take_shared(rules, now)
        except SQLAlchemyError as exc:  # locked, unreachable, timed out: count here rather than hold the request
            if now - self._warned > 60:
                self._warned = now
                log.warning("rate limits counted in this process only: the database did not answer (%s)",
                            type(exc.__cause__ or exc).__name__)
            return self._take_local(rules, now)

    def _spend_lease(self, rule: Rule, now: float) -> bool:
        if rule.lease == 1:
            return False
        with self._lease_lock:
            left, until = self._leases.get(rule, (0, 0.0))
            if left <= 0 or now >= until:
                return False
            self._leases[rule] = (left - 1, until)
            return True

    def _take_shared(self, rules: list[Rule], now: float) -> Refusal | None:
        if self.write_lock is None:
            return self._count(rules, now)
        if not self.write_lock.acquire(timeout=self.wait_seconds):
            raise LockNotTaken("the process's write lock")
        try:
            return self._count(rules, now)
        finally:
            self.write_lock.release()

    def _count(self, rules: list[Rule], now: float) -> Refusal | None:
        refusal, leased = None, []
        with self.engine.begin() as conn:
            for rule in rules:
                if rule.lease > 1:
                    _tat, refused = conn.execute(_statement(conn.dialect.name, rule, now, rule.lease)).one()
                    if not refused:  # this request and the lease's others counted
                        leased.append(rule)
                        continue
                tat, refused = conn.execute(_statement(conn.dialect.name, rule, now)).one()
                if refused:
                    refusal = Refusal(rule, _retry_after(tat, now, rule))
                    break
            if now - self._pruned > PRUNE_EVERY:
                self._pruned = now
                conn.execute(delete(RateState).where(RateState.tat < now - 1))
        with self._lease_lock:  # only once the row holding them is committed
            for rule in leased:
                self._leases[rule] = (rule.lease - 1, now + LEASE_SECONDS)
        return refusal

    def _take_local(self, rules: list[Rule], now: float) -> Refusal | None:
        with self._memory_lock:
            for rule in rules:
                tat, refused = advance(self._memory.get((rule.bucket, rule.key)), now, rule)
                self._memory[(rule.bucket, rule.key)] = tat
                if refused:
                    return Refusal(rule, _retry_after(tat, now, rule))
            if len(self._memory) > 100_000:  # addresses seen once must not grow the process without end
                self._memory = {k: v for k, v in self._memory.items() if v > now}
        return None

    def dispose(self) -> None:
        self.engine.dispose()


def _statement(dialect: str, rule: Rule, now: float, slots: int = 1):
    """Count one request (`slots` = 1), refused or not, as `advance` does; or take `slots` at once if all of them
    fit, else change nothing (the request is then counted alone)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    tat = RateState.__table__.c.tat
    base = case((tat > now, tat), else_=now)
    admitted = base + (slots - 1) * rule.interval - now <= rule.tolerance + EPSILON
    if slots > 1:
        when_refused = tat
    elif rule.backlog:
        horizon = now + rule.tolerance + rule.backlog
        when_refused = case((tat + rule.interval < horizon, tat + rule.interval), else_=horizon)
    else:
        when_refused = tat
    return (insert(RateState).values(bucket=rule.bucket, key=rule.key, tat=now + slots * rule.interval, refused=False)
            .on_conflict_do_update(index_elements=["bucket", "key"],
                                   set_={"tat": case((admitted, base + slots * rule.interval), else_=when_refused),
                                         "refused": case((admitted, False), else_=True)})
            .returning(RateState.tat, RateState.refused))


def _counting_engine(url: str, wait_seconds: float):
    if url.startswith("sqlite"):
        engine = create_engine(url, hide_parameters=True, pool_size=4, max_overflow=0, pool_timeout=wait_seconds,
                               connect_args={"check_same_thread": False, "timeout": wait_seconds})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # A count lost to a power cut is harmless; a disk flush per public request is not.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock at once, or the busy wait, bounded

        return engine
    engine = create_engine(url, hide_parameters=True, pool_size=4, max_overflow=0, pool_timeout=wait_seconds,
                           connect_args={"connect_timeout": max(1, math.ceil(wait_seconds * 4))})
    wait_ms = int(wait_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {wait_ms}")
            cursor.execute(f"SET statement_timeout = {wait_ms * 4}")
            cursor.execute("SET synchronous_commit = off")
        dbapi_connection.commit()

    return engine
