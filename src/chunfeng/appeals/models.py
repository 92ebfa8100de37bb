"""Tables of demands and complaints: the item, its history, and its attachments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.crypto import Encrypted
from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit

KINDS = {"demand": "诉求", "complaint": "投诉", "suggestion": "意见建议", "opinion": "舆情"}
CHANNELS = {"web": "网页", "api": "接口", "hotline": "12366热线", "consult": "12366智能咨询转人工", "official": "工作人员录入"}
STATES = {"received": "已接收", "accepted": "已受理", "in_progress": "办理中", "replied": "已答复", "closed": "已办结",
          "reopened": "重新办理"}
MOVES = {  # an official's action: (states it may start from, state it leads to)
    "accept": ({"received"}, "accepted"),
    "start": ({"accepted", "reopened"}, "in_progress"),
    "reply": ({"in_progress"}, "replied"),
    "close": ({"replied"}, "closed"),
}
ACTION_NAMES = {"accept": "受理", "start": "开始办理", "reply": "答复", "close": "办结", "rate": "评价", "reopen": "申请重新办理",
                "override": "改派或改分类", "remind": "临期提醒", "escalate": "超期升级", "received": "接收",
                "erase": "删除个人信息"}


class Appeal(Base):
    """A demand, complaint, suggestion or public-opinion item, from intake to closing.

    The classification and routing the system chose are kept beside the ones in force, so an official's
    override never erases what the machine proposed.
    """

    __tablename__ = "appeal"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(String(12), default="", doc="the submitter's region code, as given")
    topic: Mapped[str] = mapped_column(String(40), default="", index=True)
    # Personal data: SM4-encrypted at rest (chunfeng.crypto); the phone is found by its keyed SM3 digest.
    submitter: Mapped[str] = mapped_column(Encrypted, default="")
    phone: Mapped[str] = mapped_column(Encrypted, default="")
    email: Mapped[str] = mapped_column(Encrypted, default="")
    phone_digest: Mapped[str] = mapped_column(String(64), default="", index=True)
    taxpayer_code: Mapped[str] = mapped_column(String(18), default="")
    token_digest: Mapped[str] = mapped_column(String(64), unique=True, doc="the submitter's tracking link, hashed")
    # Classification: category, item and closest measures of the plan; auto_* is what retrieval proposed.
    category_no: Mapped[int | None] = mapped_column(Integer)
    item_no: Mapped[int | None] = mapped_column(Integer)
    measures: Mapped[list] = mapped_column(JSON, default=list)
    auto_category_no: Mapped[int | None] = mapped_column(Integer)
    auto_item_no: Mapped[int | None] = mapped_column(Integer)
    auto_measures: Mapped[list] = mapped_column(JSON, default=list)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="responsible unit now")
    auto_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), doc="the unit routing chose")
    overridden_by: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="received", index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    replied_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    due_accept: Mapped[date] = mapped_column(Date)
    due_reply: Mapped[date] = mapped_column(Date)
    due_close: Mapped[date] = mapped_column(Date)
    reply: Mapped[str] = mapped_column(Text, default="")
    rating: Mapped[int | None] = mapped_column(Integer)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    reminded: Mapped[list] = mapped_column(JSON, default=list, doc="limits already reminded of: accept, reply, close")
    escalated: Mapped[list] = mapped_column(JSON, default=list, doc="limits already escalated for")
    handoff_id: Mapped[int | None] = mapped_column(Integer, doc="the 12366 hand-off it came from")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    # The responsible unit, for the policy's rules (appeals.policy); routing and escalation set unit_id.
    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id], viewonly=True)

    @property
    def number(self) -> str:
        return f"{self.received_at:%Y%m%d}{self.id:06d}"


class AppealEvent(Base):
    """One step in an item's life: who did what, when, with what note."""

    __tablename__ = "appeal_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")


class AppealAttachment(Base):
    """A file the submitter attached: checked by content, stored once by SHA-256."""

    __tablename__ = "appeal_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class AppealMeasure(Base):
    """An item linked to a measure of the plan (the ones in force): what a measure's page lists."""

    __tablename__ = "appeal_measure"

    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id", ondelete="CASCADE"), primary_key=True)
    measure_no: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
