"""Tables of direct reports (直联直报, measure 19) and of the analysis's own facts (measure 3): a report form per new
policy sent to contact units, each unit's report, the population sizes a survey's strata are weighted back to, and
the themes of free-text answers an official linked to measures."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit

REPORT_STATES = {"pending": "未报送", "submitted": "已报送"}
# The structured parts of a unit's report, in the order the form shows them.
REPORT_FIELDS = {"problems": "执行中遇到的问题", "reactions": "纳税人缴费人的反映", "suggestions": "意见建议",
                 "free_text": "其他情况"}


class DirectReportForm(Base):
    """A report form on one new policy: which policy, who sent it, by when the contact units report."""

    __tablename__ = "survey_direct_form"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the unit that asks")
    policy_id: Mapped[str | None] = mapped_column(ForeignKey("push_policy.id"), doc="a policy of the push catalogue")
    policy_name: Mapped[str] = mapped_column(String(200), doc="the policy's name (a named new policy when no id)")
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    issued_on: Mapped[date] = mapped_column(Date)
    working_days: Mapped[int] = mapped_column(Integer, doc="the time allowed, in working days after issued_on")
    due_on: Mapped[date] = mapped_column(Date, index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    unit: Mapped[Unit] = relationship(viewonly=True)


class DirectReport(Base):
    """One contact unit's report on a form: pending until that unit submits it."""

    __tablename__ = "survey_direct_report"
    __table_args__ = (UniqueConstraint("form_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("survey_direct_form.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    problems: Mapped[str] = mapped_column(Text, default="")
    reactions: Mapped[str] = mapped_column(Text, default="")
    suggestions: Mapped[str] = mapped_column(Text, default="")
    free_text: Mapped[str] = mapped_column(Text, default="")
    submitted_by: Mapped[str] = mapped_column(String(64), default="")
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminded_on: Mapped[date | None] = mapped_column(Date, doc="the day of the last reminder: one a day at most")
    unit: Mapped[Unit] = relationship(viewonly=True)


class SurveyStratumSize(Base):
    """How many of the population (the sampling frame) a stratum holds: what post-stratification weights to."""

    __tablename__ = "survey_stratum_size"
    __table_args__ = (UniqueConstraint("survey_id", "stratum"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    stratum: Mapped[str] = mapped_column(String(64))
    population: Mapped[int] = mapped_column(Integer)


class SurveyTheme(Base):
    """A theme of the free-text answers (a cluster, named by its representative answer) and the plan measures an
    official said it concerns."""

    __tablename__ = "survey_theme"
    __table_args__ = (UniqueConstraint("survey_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200), doc="the cluster's representative answer")
    terms: Mapped[list] = mapped_column(JSON, default=list)
    size: Mapped[int] = mapped_column(Integer, default=0, doc="answers in the theme when it was linked")
    measures: Mapped[list] = mapped_column(JSON, default=list)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
