"""Post to a unit's inbox and deliver through its channels.

`post` writes the message (the in-app inbox: delivered by being written) and enqueues one delivery per channel
in the outbox, in the caller's transaction; the outbox sends them after commit, at most once (`chunfeng.outbox`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chunfeng import channels, outbox
from chunfeng.db import Database, utcnow
from chunfeng.inbox.models import Channel, InboxMessage
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.errors import Forbidden, NotFound, ValidationFailed
from chunfeng.org.models import Unit, User
from chunfeng.org.services import find_unit
from chunfeng.paging import Page, paginate
from chunfeng.settings import Settings

ORIGIN = "inbox.message"


def post(session: Session, *, unit: Unit, kind: str, title: str, body: str = "", link: str = "",
         sender: str = "system") -> InboxMessage:
    message = InboxMessage(unit_id=unit.id, kind=kind, title=title[:200], body=body, link=link, sender=sender)
    session.add(message)
    session.flush()
    for channel in session.scalars(select(Channel).where(Channel.unit_id == unit.id).order_by(Channel.id)):
        outbox.enqueue(session, origin=ORIGIN, origin_id=message.id, scope=unit.path, channel=outbox.URL,
                       target=channel.url, title=message.title, body=body)
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
    return paginate(session, select(InboxMessage).where(*where).order_by(InboxMessage.created_at.desc(),
                                                                         InboxMessage.id.desc()), page, per_page)


SYSTEM_SENDER = "系统通知"


def sender_names(session: Session, messages: list[InboxMessage]) -> dict[str, str]:
    """Who sent each message, as an official reads it: the sending official's unit, or 系统通知 for what the system
    sent itself (reminders, escalations, deliveries). A sender's account since removed reads as its user name."""
    usernames = {m.sender for m in messages} - {"system"}
    units = dict(session.execute(select(User.username, Unit.name).join(Unit, User.unit_id == Unit.id)
                                 .where(User.username.in_(usernames))).all()) if usernames else {}
    return {"system": SYSTEM_SENDER} | {name: units.get(name, name) for name in usernames}


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


def deliver_pending(db: Database, *, settings: Settings, now: datetime | None = None,
                    limit: int = 10_000) -> outbox.DeliveryRun:
    """Send the inbox's due deliveries through the outbox (claim → send → record: never twice)."""
    return outbox.deliver_due(db, settings=settings, now=now, limit=limit, origin=ORIGIN)
