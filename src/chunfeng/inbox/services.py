"""Post to a unit's inbox and deliver through its channels.

Delivery is an outbox: `post` writes the message and one pending delivery per channel in the caller's
transaction; `deliver_pending` sends them after commit, in transactions of their own, recording each
attempt. A crash between the two leaves deliveries pending, to be sent by the next run, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from chunfeng import channels
from chunfeng.db import Database, utcnow
from chunfeng.inbox.models import Channel, Delivery, InboxMessage
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.errors import Forbidden, NotFound, ValidationFailed
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from chunfeng.paging import Page

MAX_ATTEMPTS = 5


def post(session: Session, *, unit: Unit, kind: str, title: str, body: str = "", link: str = "",
         sender: str = "system") -> InboxMessage:
    message = InboxMessage(unit_id=unit.id, kind=kind, title=title[:200], body=body, link=link, sender=sender)
    session.add(message)
    session.flush()
    for channel_id in session.scalars(select(Channel.id).where(Channel.unit_id == unit.id)):
        session.add(Delivery(message_id=message.id, channel_id=channel_id))
    session.flush()
    return message


def _own_unit(actor: Actor) -> int:
    if isinstance(actor, SystemActor):
        raise Forbidden("收件箱属于具体单位")
    authorize(actor, "inbox.read", actor.unit)
    return actor.unit.id


def messages(*, session: Session, actor: Actor, unread_only: bool = False, page: int = 1,
             per_page: int = 30) -> Page[InboxMessage]:
    where = [InboxMessage.unit_id == _own_unit(actor)]
    if unread_only:
        where.append(InboxMessage.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(InboxMessage).where(*where)) or 0
    items = list(session.scalars(select(InboxMessage).where(*where).order_by(InboxMessage.created_at.desc(),
                                                                             InboxMessage.id.desc())
                                 .offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, per_page)


def unread_count(*, session: Session, actor: Actor) -> int:
    return session.scalar(select(func.count()).select_from(InboxMessage).where(
        InboxMessage.unit_id == _own_unit(actor), InboxMessage.read_at.is_(None))) or 0


def mark_read(*, session: Session, actor: Actor, message_id: int) -> InboxMessage:
    message = session.get(InboxMessage, message_id)
    if message is None or message.unit_id != _own_unit(actor):
        raise NotFound(f"没有编号为 {message_id} 的消息")
    if message.read_at is None:
        message.read_at = utcnow()
    return message


def add_channel(*, session: Session, actor: Actor, unit_code: str, url: str, label: str = "",
                channel_rules: channels.ChannelRules = channels.ChannelRules()) -> Channel:
    unit = find_unit(session=session, code=unit_code)
    authorize(actor, "inbox.channel", unit)
    try:
        channels.check(url, rules=channel_rules)
    except channels.ChannelRefused as exc:
        raise ValidationFailed(str(exc)) from None
    channel = Channel(unit_id=unit.id, url=url.strip(), label=label.strip())
    session.add(channel)
    session.flush()
    # The URL may hold a token: the audit keeps only its scheme.
    audit.record(session, actor=actor, action="inbox.channel.added", object_type="unit", object_id=unit.code,
                 after={"scheme": url.split("://", 1)[0], "label": channel.label})
    return channel


def list_channels(*, session: Session, actor: Actor, unit: Unit) -> list[tuple[str, str]]:
    """(label, masked URL) of the unit's channels: a page never shows the token a URL holds."""
    authorize(actor, "inbox.channel", unit)
    return [(c.label, channels.masked(c.url))
            for c in session.scalars(select(Channel).where(Channel.unit_id == unit.id).order_by(Channel.id))]


@dataclass
class DeliveryRun:
    sent: int = 0
    failed: int = 0


def deliver_pending(db: Database, *, channel_rules: channels.ChannelRules = channels.ChannelRules()) -> DeliveryRun:
    """Send every pending delivery that has attempts left; each result is committed as it happens."""
    run = DeliveryRun()
    with db.read() as session:
        pending = list(session.execute(
            select(Delivery.id, Channel.url, InboxMessage.title, InboxMessage.body)
            .join(Channel, Delivery.channel_id == Channel.id).join(InboxMessage, Delivery.message_id == InboxMessage.id)
            .where(Delivery.state.in_(["pending", "failed"]), Delivery.attempts < MAX_ATTEMPTS).order_by(Delivery.id)))
    for delivery_id, url, title, body in pending:
        try:
            # Checked again: the name may resolve elsewhere now, or the allow-list have changed.
            sender = channels.sender(url, rules=channel_rules)
            ok, error = bool(sender.notify(title=title, body=body or title)), ""
        except Exception as exc:  # a broken channel must not stop the others
            ok, error = False, str(exc)
        with db.write() as session:
            values = {"attempts": Delivery.attempts + 1, "state": "sent" if ok else "failed",
                      "last_error": "" if ok else (error or "通道未接受消息")[:500], "sent_at": utcnow() if ok else None}
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))
        run.sent += ok
        run.failed += not ok
    return run
