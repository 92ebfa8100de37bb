"""Tables of the ledger: assignments, indicators, progress reports, indicator values, evidence."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit
from chunfeng.plan.models import PlanMeasure

CYCLES = {"weekly": "每周", "monthly": "每月", "quarterly": "每季度"}
STATUSES = {"not_started": "未开始", "in_progress": "推进中", "done": "已完成", "ongoing": "长期坚持"}
ROLES = {"lead": "牵头单位", "supporting": "配合单位"}
REPORT_STATES = {"submitted": "待审核", "approved": "已通过", "returned": "已退回"}


class Assignment(Base):
    """任务分解: one measure given to one unit, with an owner and a deadline (or ongoing, with a cycle).

    `parent_id` is the assignment it was broken down from. The columns after the blank line are kept
    current by the services (roll-up, warnings) so that national dashboards are one aggregate query.
    """

    __tablename__ = "ledger_assignment"
    __table_args__ = (
        UniqueConstraint("measure_id", "unit_id"),
        Index("ix_ledger_assignment_province_category", "province_code", "category_no"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("plan_measure.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_assignment.id"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="lead")
    owner: Mapped[str] = mapped_column(String(100), default="")
    start_date: Mapped[date] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    ongoing: Mapped[bool] = mapped_column(Boolean, default=False)
    cycle: Mapped[str] = mapped_column(String(16), default="monthly")
    assigned_by: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    province_code: Mapped[str] = mapped_column(String(32))
    category_no: Mapped[int] = mapped_column(Integer)
    measure_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="not_started")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    last_period: Mapped[str | None] = mapped_column(String(16))
    light: Mapped[str] = mapped_column(String(8), default="green")
    light_reason: Mapped[str] = mapped_column(String(200), default="")

    unit: Mapped[Unit] = relationship(lazy="joined")
    measure: Mapped[PlanMeasure] = relationship(lazy="joined")
    parent: Mapped[Assignment | None] = relationship(remote_side=[id])


class Indicator(Base):
    """A quantitative indicator of a measure: e.g. measure 54, average export-refund days, 7 → at most 6."""

    __tablename__ = "ledger_indicator"
    __table_args__ = (UniqueConstraint("measure_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    measure_id: Mapped[int] = mapped_column(ForeignKey("plan_measure.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    unit_label: Mapped[str] = mapped_column(String(20), default="")
    baseline: Mapped[float | None] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(String(8), doc="'up': at least the target; 'down': at most")

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.target if self.direction == "up" else value <= self.target


class ProgressReport(Base):
    """进展报告: one unit's report on one assignment for one period, and its review by the direct parent."""

    __tablename__ = "ledger_report"
    __table_args__ = (UniqueConstraint("assignment_id", "period"), Index("ix_ledger_report_period", "period"))

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("ledger_assignment.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    percent: Mapped[float] = mapped_column(Float)
    narrative: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="submitted", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    review_comment: Mapped[str] = mapped_column(Text, default="")
    # For the league table: whether the first submission came within the period's grace, and how
    # often the report was sent back.
    on_time: Mapped[bool] = mapped_column(Boolean, default=True)
    returned_count: Mapped[int] = mapped_column(Integer, default=0)

    assignment: Mapped[Assignment] = relationship(lazy="joined")
    values: Mapped[list[IndicatorValue]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    evidence: Mapped[list[Evidence]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    __mapper_args__ = {"version_id_col": version}


class IndicatorValue(Base):
    __tablename__ = "ledger_indicator_value"
    __table_args__ = (UniqueConstraint("report_id", "indicator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("ledger_report.id", ondelete="CASCADE"), index=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("ledger_indicator.id"), index=True)
    value: Mapped[float] = mapped_column(Float)

    indicator: Mapped[Indicator] = relationship(lazy="joined")


class Evidence(Base):
    """A file attached to a report, stored once by its SHA-256 (see chunfeng.files)."""

    __tablename__ = "ledger_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("ledger_report.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


NOTICE_STATES = {"open": "待答复", "answered": "已答复", "escalated": "已升级督办", "closed": "已办结"}


class SupervisionNotice(Base):
    """督办单: an upper unit asks the unit holding an assignment to answer by a date.

    Unanswered past its date, it escalates: the supervising unit becomes the next unit up, with a new date.
    """

    __tablename__ = "ledger_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("ledger_assignment.id"), index=True)
    issued_by_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    supervising_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    respond_by: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    issued_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)

    assignment: Mapped[Assignment] = relationship(lazy="joined")
    to_unit: Mapped[Unit] = relationship(foreign_keys=[to_unit_id], lazy="joined")
    supervising_unit: Mapped[Unit] = relationship(foreign_keys=[supervising_unit_id], lazy="joined")
    messages: Mapped[list[NoticeMessage]] = relationship(order_by="NoticeMessage.id", lazy="selectin",
                                                         cascade="all, delete-orphan")


class NoticeMessage(Base):
    """One entry of a notice's thread: the request, an answer, an escalation, the closing word."""

    __tablename__ = "ledger_notice_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("ledger_notice.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), doc="request, answer, escalation, close")
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    author_unit: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
