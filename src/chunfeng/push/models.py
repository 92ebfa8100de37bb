"""Tables of policy push: policies with their rules, campaigns and their stages, and the outbox of messages.

Taxpayer data itself is not here: it lives in the DuckDB store (`push.store`), where it is analysed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.crypto import Encrypted
from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit


class Policy(Base):
    """A preferential policy: who it is for (the rule), on what basis, for how long, and what to tell whom."""

    __tablename__ = "push_policy"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tax_type: Mapped[str] = mapped_column(String(100), index=True)
    topic: Mapped[str] = mapped_column(String(100), default="")
    industries: Mapped[list] = mapped_column(JSON, default=list)
    sizes: Mapped[list] = mapped_column(JSON, default=list)
    regions: Mapped[list] = mapped_column(JSON, default=list)
    basis: Mapped[str] = mapped_column(String(200))
    basis_title: Mapped[str] = mapped_column(String(300), default="")
    effective_from: Mapped[date] = mapped_column(Date)
    effective_until: Mapped[date | None] = mapped_column(Date)
    period_kind: Mapped[str] = mapped_column(String(8), doc="month, quarter or year: the period a claim is for")
    kind: Mapped[str] = mapped_column(String(16), default="reduction", server_default="reduction",
                                      doc="reduction (tax saved), deferral (paid later) or timing (a deduction moved "
                                          "forward): only reductions add up to what a bill says was saved")
    filing: Mapped[str] = mapped_column(String(40), doc="the return the policy is claimed on")
    summary: Mapped[str] = mapped_column(Text, default="")
    rule: Mapped[str] = mapped_column(Text)
    roles: Mapped[list] = mapped_column(JSON, default=list)
    templates: Mapped[dict] = mapped_column(JSON, default=dict)
    shipped: Mapped[bool] = mapped_column(Boolean, default=False)
    review: Mapped[str] = mapped_column(Text, default="", server_default="",
                                        doc="why the policy awaits review (a fact not confirmed); empty when confirmed")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


CAMPAIGN_STATES = {"active": "进行中", "paused": "已暂停", "failed": "执行失败", "cancelled": "已取消",
                   "finished": "已结束"}


class Campaign(Base):
    """A push of some policies to the eligible taxpayers of a region, staged along one filing period."""

    __tablename__ = "push_campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="policy", doc="policy (staged reminders) or bill (dividend bills)")
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="owner; the audience is its region")
    policies: Mapped[list] = mapped_column(JSON, default=list)
    audience: Mapped[str] = mapped_column(Text, default="", doc="an extra rule narrowing the audience; empty for all")
    channels: Mapped[list] = mapped_column(JSON, default=list)
    year: Mapped[int] = mapped_column(Integer)
    month: Mapped[int] = mapped_column(Integer, doc="the filing month the stages run in (a bill: unused)")
    reminder_day: Mapped[int] = mapped_column(Integer, default=10)
    last_days: Mapped[int] = mapped_column(Integer, default=2, doc="last reminder this many working days before the deadline")
    state: Mapped[str] = mapped_column(String(16), default="active",
                                       doc="active, paused, failed (a scheduled run failed: see last_error) or cancelled")
    last_error: Mapped[str] = mapped_column(Text, default="", doc="why the last scheduled run of a stage failed")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    unit: Mapped[Unit] = relationship(viewonly=True)  # the owner, for the policy's rules (push.policy)


class CampaignStage(Base):
    """One stage of a campaign (first notice, reminder, last reminder, bill) and what it produced."""

    __tablename__ = "push_stage"
    __table_args__ = (UniqueConstraint("campaign_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("push_campaign.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    due: Mapped[date] = mapped_column(Date)
    planned_at: Mapped[datetime | None] = mapped_column(DateTime)
    audience: Mapped[int] = mapped_column(Integer, default=0, doc="taxpayers selected")
    messages: Mapped[int] = mapped_column(Integer, default=0)
    capped: Mapped[int] = mapped_column(Integer, default=0, doc="pushes held back by the frequency cap")
    opted_out: Mapped[int] = mapped_column(Integer, default=0, doc="contacts left out because they unsubscribed")
    # The schedule sends a stage only if an official approved it after seeing its preview (push.schedule).
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    approved_by: Mapped[str] = mapped_column(String(64), default="", server_default="")
    approved_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"), doc="the approver's unit: told of a hold")
    approved_taxpayers: Mapped[int | None] = mapped_column(Integer, doc="taxpayers the preview reached at approval")
    approved_messages: Mapped[int | None] = mapped_column(Integer, doc="messages the preview held at approval")
    held_at: Mapped[datetime | None] = mapped_column(DateTime, doc="the schedule held the approved stage on its day")
    held_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    overdue_notified_at: Mapped[datetime | None] = mapped_column(
        DateTime, doc="its day came without an approval and the campaign's unit was told (once)")

    def clear_approval(self) -> dict:
        """Forget the approval (withdrawn, or the campaign changed under it); returns what it was, for the audit."""
        before = {"approved_by": self.approved_by, "approved_at": str(self.approved_at),
                  "taxpayers": self.approved_taxpayers, "messages": self.approved_messages}
        self.approved_at, self.approved_by, self.approved_unit_id = None, "", None
        self.approved_taxpayers = self.approved_messages = None
        return before


class PushMessage(Base):
    """One message to one contact on one channel: what was said to whom (the cap counts these, the unique key
    keeps a stage from repeating). An in-app message is delivered by being written; one on any other channel
    has its delivery in the outbox (`chunfeng.outbox`, origin push.message), which holds its state.
    """

    __tablename__ = "push_message"
    __table_args__ = (UniqueConstraint("campaign_id", "stage", "policy_id", "credit_code", "role", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("push_campaign.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    policy_id: Mapped[str] = mapped_column(String(40), default="")
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    taxpayer_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    person: Mapped[str] = mapped_column(Encrypted, default="")  # SM4, as in the taxpayer store
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(Encrypted, default="")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Encrypted)  # SM4: it greets the contact by name
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)
