"""Tables of the credit domain: each taxpayer's level per year, and the published major violators."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit

LEVELS = ("A", "B", "M", "C", "D")
REMOVAL_REASONS = {"expired": "公布期满", "repaired": "信用修复", "paid": "缴清税款、滞纳金和罚款"}


class CreditRating(Base):
    """One taxpayer's credit level for one evaluation year, as the bureau evaluated it; one row per year, so the
    taxpayer's page shows the history."""

    __tablename__ = "credit_rating"
    __table_args__ = (UniqueConstraint("credit_code", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer, index=True)
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

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the unit that published it")
    case_nature: Mapped[str] = mapped_column(String(100))
    facts: Mapped[str] = mapped_column(Text, default="")
    amount_unpaid: Mapped[Decimal] = mapped_column(Numeric(18, 2), doc="tax not paid or refunds obtained, yuan")
    amount_penalty: Mapped[Decimal] = mapped_column(Numeric(18, 2), doc="fines and late fees imposed, yuan")
    published_on: Mapped[date] = mapped_column(Date, index=True)
    off_on: Mapped[date] = mapped_column(Date, index=True, doc="the day it comes off the list")
    removed_on: Mapped[date | None] = mapped_column(Date, index=True)
    removal_reason: Mapped[str | None] = mapped_column(String(16))
    removal_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()


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
    """A taxpayer's risk tier (measure 95) as last computed, with the indicators that fired: replaced by each run."""

    __tablename__ = "credit_risk"

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the competent tax unit")
    tier: Mapped[str] = mapped_column(String(1), index=True)
    indicators: Mapped[list] = mapped_column(JSON, default=list, doc="the names of the indicators that fired")
    computed_at: Mapped[datetime] = mapped_column(DateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()
