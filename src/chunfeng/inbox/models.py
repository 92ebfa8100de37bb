"""Tables of the inbox: messages to a unit and the channels a unit is reached through (what was delivered
through them is in the outbox, `chunfeng.outbox`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chunfeng.crypto import Encrypted
from chunfeng.db import Base, utcnow


class InboxMessage(Base):
    """A message to every user of a unit: a reminder, a supervision notice, an escalation."""

    __tablename__ = "inbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(200), default="")
    sender: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)


class Channel(Base):
    """An Apprise URL a unit is also reached through: mailto://, dingtalk://, wecombot://, feishu://, json:// …"""

    __tablename__ = "inbox_channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    url: Mapped[str] = mapped_column(Encrypted)  # SM4: the URL often holds a token or a password
    label: Mapped[str] = mapped_column(String(100), default="")

