"""The one way out: every message that leaves the system (unit inbox channels, push messages) is a row here.

A domain enqueues a delivery in its own transaction (so a rolled-back change sends nothing); `deliver_due` sends
what is due in three steps, each its own transaction or none:

- claim: a short committed transaction marks the next due delivery `sending` with a conditional update (on
  PostgreSQL it is picked with FOR UPDATE SKIP LOCKED; SQLite has one writer), so two overlapping runs, or two
  replicas, never hold the same row;
- send: outside any transaction, through Apprise (the channel URL checked again right before), up to
  `concurrency` of a claimed batch in flight at once;
- record: the outcomes of a batch committed together, `sent` or `failed` with the next attempt after a doubling
  wait, each conditional on the attempt claimed.

A delivery left `sending` past its lease (its process was killed between send and record) becomes `uncertain`:
it may have gone out, so it is never sent again automatically (at most once); an official who has checked with
the gateway may requeue it. The base layer: it imports no domain.

States: pending → sending → sent | failed (retried while attempts remain) | uncertain ; cancelled by its domain.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import DateTime, Index, Integer, String, Text, case, func, literal, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import Select

from chunfeng import channels
from chunfeng.crypto import Encrypted
from chunfeng.db import Base, Database, utcnow
from chunfeng.paging import Page, paginate
from chunfeng.settings import Settings

STATES = {"pending": "待发送", "sending": "发送中", "sent": "已送达", "failed": "发送失败",
          "uncertain": "结果不明(未重发)", "cancelled": "已取消"}
URL = "url"  # the channel of a delivery whose target is the whole Apprise URL (a unit's inbox channel)
LEASE = timedelta(minutes=10)
# Claimed at a time unless the caller says otherwise. One: a sender killed mid-send then leaves only the delivery it
# was sending in doubt, and the next run picks up the rest; a claimed batch leaves every claimed row uncertain, sent
# or not. A campaign's sender trades that for fewer transactions (push_send_batch).
BATCH = 1
UNCERTAIN = "发送过程中断,消息可能已送出,为免重复不再自动重发"
log = logging.getLogger(__name__)


class Delivery(Base):
    """One message to one recipient through one channel, and what became of it: the outbox and the delivery log."""

    __tablename__ = "outbox_delivery"
    __table_args__ = (Index("ix_outbox_delivery_due", "state", "next_attempt_at"),
                      Index("ix_outbox_delivery_origin", "origin", "origin_id"),
                      # The claim's fresh rows of one origin in id order, read off the index without a sort: a
                      # campaign's million pending rows otherwise made every claim read and sort all of them.
                      Index("ix_outbox_delivery_queue", "origin", "state", "next_attempt_at", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(40), doc="what enqueued it: inbox.message, push.message …")
    origin_id: Mapped[int] = mapped_column(Integer, doc="the id of that object in its domain")
    scope: Mapped[str] = mapped_column(String(400), default="", index=True,
                                       doc="the path of the unit it belongs to: that unit's subtree may see it")
    channel: Mapped[str] = mapped_column(String(40), doc="'url', or a named channel (sms, email) whose URL template "
                                                        "the settings hold (push_channels)")
    target: Mapped[str] = mapped_column(Encrypted, doc="the Apprise URL ('url'), or the address the template is "
                                                       "filled with; SM4: it holds a token or a contact")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Encrypted, default="")  # SM4: a push greets its contact by name
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime, doc="pending/failed: not before; sending: the lease ends (then uncertain)")
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


def enqueue(session: Session, *, origin: str, origin_id: int, scope: str, channel: str, target: str, title: str,
            body: str = "") -> Delivery:
    """One delivery, in the caller's transaction: it is sent only if that transaction commits."""
    delivery = Delivery(origin=origin, origin_id=origin_id, scope=scope, channel=channel, target=target,
                        title=title[:200], body=body, state="pending", attempts=0, created_at=utcnow())
    session.add(delivery)
    return delivery


ENQUEUED = ("origin", "origin_id", "scope", "channel", "target", "title", "body")


def enqueue_from(session: Session, query: Select) -> int:
    """Deliveries for every row of `query`, which selects the columns of ENQUEUED in that order, in one statement
    (a campaign stage enqueues hundreds of thousands). Encrypted values are copied as they are stored."""
    table = Delivery.__table__
    query = query.add_columns(literal("pending", String), literal(0, Integer), literal("", Text),
                              literal(utcnow(), DateTime))
    columns = [table.c[name] for name in (*ENQUEUED, "state", "attempts", "last_error", "created_at")]
    result = session.execute(table.insert().from_select(columns, query))
    return result.rowcount or 0


# --- claim → send → record ----------------------------------------------------------------------------


@dataclass
class DeliveryRun:
    sent: int = 0
    failed: int = 0
    uncertain: int = 0


@dataclass
class Claimed:
    id: int
    channel: str
    target: str
    title: str
    body: str
    attempts: int


def _origin_filter(origin: str | None):
    return Delivery.origin.startswith(origin, autoescape=True) if origin else Delivery.id.is_not(None)


def expire_leases(db: Database, *, now: datetime, origin: str | None = None) -> int:
    """Deliveries left `sending` past their lease become `uncertain`: they may have gone out."""
    with db.write() as session:
        return session.execute(
            update(Delivery).where(Delivery.state == "sending", Delivery.next_attempt_at <= now, _origin_filter(origin))
            .values(state="uncertain", last_error=UNCERTAIN)).rowcount


def claim(db: Database, *, now: datetime, limit: int, max_attempts: int, lease: timedelta = LEASE,
          origin: str | None = None) -> list[Claimed]:
    """Mark up to `limit` due deliveries `sending` in one committed transaction and return them; a row another
    run claimed first is not returned (the update is conditional on the state it was picked in).

    Rows never tried come first, oldest first, read in id order straight off an index (ix_outbox_delivery_queue;
    ix_outbox_delivery_due without an origin); the retries due are looked for only when none is left, so a queue
    of a million costs a claim what a queue of ten does."""
    fresh = [Delivery.state == "pending", Delivery.next_attempt_at.is_(None), Delivery.attempts < max_attempts,
             Delivery.origin == origin if origin else Delivery.id.is_not(None)]
    retries = [Delivery.state.in_(["pending", "failed"]), Delivery.attempts < max_attempts, _origin_filter(origin),
               (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now)]
    # The lease runs from the claim on the clock, not from the run's `now`: a long run's later batches would
    # otherwise be claimed with leases already over, and another run would take them for abandoned.
    claimed_at = max(now, utcnow())
    with db.write() as session:
        ids: list[int] = []
        for where in (fresh, retries):
            due = select(Delivery.id).where(*where).order_by(Delivery.id).limit(limit - len(ids))
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)  # a second replica takes the next rows instead of waiting
            ids += [i for i in session.scalars(due) if i not in ids]
            if len(ids) >= limit:
                break
        if not ids:
            return []
        taken = list(session.scalars(
            update(Delivery).where(Delivery.id.in_(ids), Delivery.state.in_(["pending", "failed"]))
            .values(state="sending", attempts=Delivery.attempts + 1, claimed_at=claimed_at,
                    next_attempt_at=claimed_at + lease)
            .returning(Delivery.id)))
        rows = session.scalars(select(Delivery).where(Delivery.id.in_(taken)).order_by(Delivery.id))
        return [Claimed(d.id, d.channel, d.target, d.title, d.body, d.attempts) for d in rows]


def resolve(channel: str, target: str, delivery_id: int, templates: dict[str, str]) -> str | None:
    """The Apprise URL of a delivery: its target, or its channel's template with {address} the target and
    {message} the delivery id (a gateway can use it, e.g. as `+Idempotency-Key={message}`, to drop a repeat)."""
    if channel == URL:
        return target
    template = templates.get(channel)
    if not template:
        return None
    return template.replace("{address}", quote(target, safe="@")).replace("{message}", str(delivery_id))


def send(claimed: Claimed, settings: Settings, *,
         lookup: Callable[[str], list[channels.Address]] = channels.resolve) -> str:
    """Hand one delivery to its channel, outside any transaction; the error for people, or "" when accepted.
    `lookup` resolves the channel's host for the check (deliver_due: once per host and batch)."""
    url = resolve(claimed.channel, claimed.target, claimed.id, settings.push_channels)
    if url is None:
        return f"渠道“{claimed.channel}”未配置(CHUNFENG_PUSH_CHANNELS)"
    try:
        # Checked again: the name may resolve elsewhere now, or the allow-list have changed.
        sender = channels.sender(url, rules=channels.ChannelRules.from_settings(settings), resolver=lookup)
        ok = bool(sender.notify(title=claimed.title, body=claimed.body or claimed.title))
    except Exception as exc:  # noqa: BLE001 (a broken channel must not stop the others)
        return str(exc) or type(exc).__name__
    return "" if ok else "通道未接受消息"


def record(db: Database, claimed: Claimed, error: str, *, now: datetime, retry: timedelta) -> None:
    """Commit the outcome of the attempt that was claimed (a later claim of the row is not overwritten)."""
    record_all(db, [(claimed, error)], now=now, retry=retry)


def record_all(db: Database, outcomes: list[tuple[Claimed, str]], *, now: datetime, retry: timedelta) -> None:
    """Commit the outcomes of a claimed batch in one transaction, each conditional on the attempt claimed: one
    UPDATE per attempt number and outcome (a batch of fresh rows sent is one statement, not one per message)."""
    alike: dict[tuple[int, str], list[int]] = defaultdict(list)
    for claimed, error in outcomes:
        alike[(claimed.attempts, error[:500])].append(claimed.id)
    sent_at = utcnow()
    with db.write() as session:
        for (attempts, error), ids in alike.items():
            values = ({"state": "sent", "sent_at": sent_at, "last_error": "", "next_attempt_at": None} if not error
                      else {"state": "failed", "last_error": error,
                            "next_attempt_at": now + retry * 2 ** (attempts - 1)})
            session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.attempts == attempts)
                            .values(**values).execution_options(synchronize_session=False))


def deliver_due(db: Database, *, settings: Settings, now: datetime | None = None, limit: int = 10_000,
                origin: str | None = None, lease: timedelta = LEASE, batch: int = BATCH,
                concurrency: int = 1) -> DeliveryRun:
    """Send what is due (of one origin, e.g. "inbox.message", or all): claim `batch`, send each, record their
    outcomes, until `limit` are done or nothing is due. What the scheduler runs.

    A bigger batch costs two transactions per batch instead of per message (a campaign of a million), and a sender
    killed mid-batch leaves the whole batch uncertain instead of one message: never sent twice either way.
    `concurrency` sends of a batch are in flight at once (a gateway's round trip is most of a send); a failed one
    is recorded failed and retried alone, and the next batch is claimed once the whole batch is recorded."""
    now = now or utcnow()
    run = DeliveryRun(uncertain=expire_leases(db, now=now, origin=origin))
    retry = timedelta(minutes=settings.push_retry_minutes)
    done = 0
    # One keep-alive session for the run's sends (a connection per message was most of a message's CPU).
    with channels.keep_alive(concurrency) as bind, \
            ThreadPoolExecutor(concurrency, "outbox-send", initializer=bind) if concurrency > 1 else nullcontext() as pool:
        while done < limit:
            claimed = claim(db, now=now, limit=min(max(batch, 1), limit - done),
                            max_attempts=settings.push_max_attempts, lease=lease, origin=origin)
            if not claimed:
                break
            # A batch's messages share a handful of gateway hosts: each host is looked up once a batch (under a
            # second old at the send) instead of once per message.
            one = functools.partial(send, settings=settings, lookup=functools.cache(channels.resolve))
            outcomes = list(zip(claimed, pool.map(one, claimed) if pool else map(one, claimed), strict=True))
            record_all(db, outcomes, now=now, retry=retry)
            run.sent += sum(1 for _, error in outcomes if not error)
            run.failed += sum(1 for _, error in outcomes if error)
            done += len(claimed)
    return run


def requeue(session: Session, where) -> int:
    """Uncertain deliveries matching `where` go back to pending: an official checked that they did not go out, so
    the interrupted attempt does not count (one interrupted on its last attempt would otherwise never go)."""
    return session.execute(update(Delivery).where(Delivery.state == "uncertain", where)
                           .values(state="pending", next_attempt_at=None, attempts=Delivery.attempts - 1)).rowcount


@dataclass
class FailureGroup:
    reason: str  # the last error, as the channel gave it
    channel: str
    count: int
    exhausted: int  # of those, how many used every attempt and will not be tried again by themselves


def failures(session: Session, where, *, max_attempts: int) -> list[FailureGroup]:
    """Failed deliveries matching `where`, grouped by their last error and channel, the largest group first."""
    exhausted = func.sum(case((Delivery.attempts >= max_attempts, 1), else_=0))
    rows = session.execute(select(Delivery.last_error, Delivery.channel, func.count(), exhausted)
                           .where(Delivery.state == "failed", where)
                           .group_by(Delivery.last_error, Delivery.channel)
                           .order_by(func.count().desc(), Delivery.channel, Delivery.last_error))
    return [FailureGroup(reason or "", channel, n, int(out or 0)) for reason, channel, n, out in rows]


def retry_failed(session: Session, where) -> int:
    """Failed deliveries matching `where` are tried again at the next run, with all their attempts: someone fixed
    what made them fail (a gateway, a quota), so the earlier attempts do not count against them."""
    return session.execute(update(Delivery).where(Delivery.state == "failed", where)
                           .values(state="pending", next_attempt_at=None, attempts=0)).rowcount


def cancel(session: Session, where) -> int:
    """Deliveries matching `where` that are still waiting are withdrawn; returns how many."""
    return session.execute(update(Delivery).where(Delivery.state.in_(["pending", "failed"]), where)
                           .values(state="cancelled", next_attempt_at=None)).rowcount


# --- the delivery log -----------------------------------------------------------------------------------


def masked_target(channel: str, target: str) -> str:
    """What the log shows of where a delivery went: never a whole address, token or password."""
    if channel == URL:
        return channels.masked(target or "")
    target = target or ""
    if "@" in target:
        name, domain = target.split("@", 1)
        return f"{name[:1]}***@{domain}"
    digits = re.sub(r"\D", "", target)
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****" if target else ""


@dataclass
class LogFilter:
    """Which part of the log: the subtree of the unit at path `within`, the origins one may see (None: all),
    and the state, channel and origin asked for (empty: any)."""

    within: str
    origins: tuple[str, ...] | None = None
    state: str = ""
    channel: str = ""
    origin: str = ""

    def conditions(self) -> list:
        where = [Delivery.scope.startswith(self.within, autoescape=True)]
        if self.origins is not None:
            where.append(Delivery.origin.in_(self.origins))
        for column, value in ((Delivery.state, self.state), (Delivery.channel, self.channel),
                              (Delivery.origin, self.origin)):
            if value:
                where.append(column == value)
        return where


def deliveries(session: Session, filters: LogFilter, *, page: int = 1, per_page: int = 50) -> Page[Delivery]:
    """A page of the log, newest first."""
    return paginate(session, select(Delivery).where(*filters.conditions()).order_by(Delivery.id.desc()), page, per_page)


def each_delivery(session: Session, filters: LogFilter, *, chunk: int = 1000) -> Iterator[Delivery]:
    """Every delivery of the filtered log, newest first, read a chunk at a time (for the export)."""
    where = filters.conditions()
    last = None
    while True:
        query = select(Delivery).where(*where).order_by(Delivery.id.desc()).limit(chunk)
        if last is not None:
            query = query.where(Delivery.id < last)
        rows = list(session.scalars(query))
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def channels_in(session: Session, filters: LogFilter) -> list[str]:
    """The channels the visible log holds: the filter's options."""
    visible = LogFilter(filters.within, filters.origins).conditions()
    return list(session.scalars(select(Delivery.channel).where(*visible).distinct().order_by(Delivery.channel)))
