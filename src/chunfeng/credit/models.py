"""Tables of the credit domain: each taxpayer's level per year, and the published major violators."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit

LEVELS = ("A", "B", "M", "C", "D")
REMOVAL_REASONS = {"expired": "公布期满", "repaired": "信用修复", "paid": "缴清税款、滞纳金和罚款"}


class CreditRating(Base):
    """One taxpayer's credit level for one evaluation year, as the bureau evaluated it; one row per year, so the
    taxpayer's page shows the history."""

    __tablename__ = "credit_rating"
    # Each taxpayer's latest level (evaluation.publish_levels) is read from this index alone, in credit-code order,
    # never visiting the table: 10 million taxpayers in seconds. It also serves every lookup by credit code.
    # The annual evaluation compares a year's stored levels and scores read from ix_credit_rating_year_levels alone
    # (7.4 M rows at 10 M taxpayers: 24.8 s through an index on the year, which visits the table for each row).
    __table_args__ = (UniqueConstraint("credit_code", "year"),
                      Index("ix_credit_rating_latest", "credit_code", "year", "level"),
                      Index("ix_credit_rating_year_levels", "year", "credit_code", "level", "score"))

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(1), index=True)
    deductions: Mapped[dict] = mapped_column(JSON, default=dict, doc="indicator → points deducted")
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the competent tax unit")
    imported_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()


class Violator(Base):
    """A major tax violator (重大税收违法失信主体) as published: on the public list from `published_on` until it
    comes off — on `off_on`, or earlier when an official removes it on repair or payment."""

    __tablename__ = "credit_violator"
    # The entries still listed (a partial index: PostgreSQL orders by an index only past equalities, not IS NULL)
    # in the public list's order, newest first: a page after any cursor is read from it at any depth.
    __table_args__ = (Index("ix_credit_violator_public_order", "published_on", "id",
                            sqlite_where=sql("removed_on IS NULL"), postgresql_where=sql("removed_on IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the unit that published it")
    case_nature: Mapped[str] = mapped_column(String(100))
    facts: Mapped[str] = mapped_column(Text, default="")
    amount_unpaid: Mapped[Decimal] = mapped_column(Numeric(18, 2), doc="tax not paid or refunds obtained, yuan")
    amount_penalty: Mapped[Decimal] = mapped_column(Numeric(18, 2), doc="fines and late fees imposed, yuan")
    published_on: Mapped[date] = mapped_column(Date, index=True, doc="its index orders the officials' pages")
    off_on: Mapped[date] = mapped_column(Date, index=True, doc="the day it comes off the list")
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(String(16))
    removal_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()


REPAIR_PATHS = {"correction": "纠正失信行为后修复", "bankruptcy": "破产重整企业修复"}
REPAIR_STATES = {"pending": "待核定", "approved": "已修复", "refused": "不予修复"}
EVIDENCE_KINDS = {"correction": "纠正佐证", "ruling": "法院裁定书"}


class CreditRepair(Base):
    """An application to repair one failure (one indicator's deduction) of a year's rating, and its decision.
    An approved one is the register's history row for that change: the rating before and after, who decided and
    why; the rating row itself then holds the restored values, which every reader of the register sees."""

    __tablename__ = "credit_repair"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rating_id: Mapped[int] = mapped_column(ForeignKey("credit_rating.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(16), index=True)
    indicator: Mapped[str] = mapped_column(String(100), doc="the failure: an indicator of the rating's deductions")
    points: Mapped[float] = mapped_column(Float, doc="points it deducted when the application was made")
    failed_on: Mapped[date] = mapped_column(Date, doc="the day the obligation fell due")
    corrected_on: Mapped[date] = mapped_column(Date)
    correction: Mapped[str] = mapped_column(Text, doc="how it was corrected, in the applicant's words")
    court: Mapped[str] = mapped_column(String(200), default="")
    ruling_number: Mapped[str] = mapped_column(String(100), default="")
    ruling_on: Mapped[date | None] = mapped_column(Date)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the competent unit that decides")
    state: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    applicant: Mapped[str] = mapped_column(String(64))
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False, doc="entered by an official for the taxpayer")
    applied_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    applied_on: Mapped[date] = mapped_column(Date, index=True)
    due_on: Mapped[date | None] = mapped_column(Date, index=True, doc="None while the calendar does not cover it")
    proposal: Mapped[dict] = mapped_column(JSON, default=dict)
    score_before: Mapped[float] = mapped_column(Float)
    level_before: Mapped[str] = mapped_column(String(1))
    score_after: Mapped[float | None] = mapped_column(Float)
    level_after: Mapped[str | None] = mapped_column(String(1))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    violator_id: Mapped[int | None] = mapped_column(ForeignKey("credit_violator.id"),
                                                    doc="the list entry the decision took off early")

    unit: Mapped[Unit] = relationship()
    rating: Mapped[CreditRating] = relationship()
    evidence: Mapped[list[CreditRepairEvidence]] = relationship(cascade="all, delete-orphan", lazy="selectin",
                                                                order_by="CreditRepairEvidence.id")


class CreditRepairEvidence(Base):
    """A file backing a repair application (the correction's proof, or the court's ruling), stored once by its
    SHA-256 in the file store (chunfeng.files)."""

    __tablename__ = "credit_repair_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    repair_id: Mapped[int] = mapped_column(ForeignKey("credit_repair.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)


EVALUATION_STATES = {"applied": "已申请", "evaluated": "已评价", "refused": "不予评价"}


class CreditEvaluation(Base):
    """An individual business's application for a voluntary evaluation (measure 115), by itself or an official on
    its behalf, and its outcome: the register row the evaluation wrote, or why it was refused."""

    __tablename__ = "credit_evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the competent tax unit")
    state: Mapped[str] = mapped_column(String(16), default="applied", index=True)
    applied_by: Mapped[str] = mapped_column(String(100))
    applied_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime())
    rating_id: Mapped[int | None] = mapped_column(ForeignKey("credit_rating.id"))
    reason: Mapped[str] = mapped_column(Text, default="")

    unit: Mapped[Unit] = relationship()
    rating: Mapped[CreditRating | None] = relationship()


RISK_TIERS = ("低", "中", "高")


class CreditRisk(Base):
    """A taxpayer's risk tier (measure 95) as last computed, with the indicators that fired: a run writes only the rows
    whose tier, indicators, name or unit changed, so computed_at is when the row's present tier was first found."""

    __tablename__ = "credit_risk"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the competent tax unit")
    tier: Mapped[str] = mapped_column(String(1), index=True)
    indicators: Mapped[list] = mapped_column(JSON, default=list, doc="the names of the indicators that fired")
    computed_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()
