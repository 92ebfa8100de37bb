"""Tables of questionnaires: the questionnaire (one row per version), its questions, invitations and responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit

KINDS = {"single": "单选", "multi": "多选", "scale": "量表(1–5)", "nps": "推荐度(0–10)", "matrix": "矩阵",
         "text": "填空"}
STATES = {"draft": "草稿", "published": "已发布", "closed": "已结束"}
# The fixed answers of the two scales: 1–5 satisfaction, and the Net Promoter question's 0–10.
SCALES = {"scale": [str(n) for n in range(1, 6)], "nps": [str(n) for n in range(0, 11)]}


class Survey(Base):
    """One version of a questionnaire. Versions of the same questionnaire share `series`; a published version is
    frozen (its questions never change once anyone may have answered them), and editing it makes the next version."""

    __tablename__ = "survey"
    __table_args__ = (UniqueConstraint("series", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(200))
    intro: Mapped[str] = mapped_column(Text, default="")
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True, doc="the unit that runs it")
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    link: Mapped[str | None] = mapped_column(String(48), unique=True, doc="the open public link's token, once published")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    unit: Mapped[Unit] = relationship(viewonly=True)
    questions: Mapped[list[SurveyQuestion]] = relationship(order_by="SurveyQuestion.position", viewonly=True)

    @property
    def items(self) -> list:
        """The questions as the analysis counts them: a matrix question as one item per row (`answer_items`)."""
        return answer_items(self.questions)


class SurveyQuestion(Base):
    """A question: its kind, its options, whether it must be answered, and when it is shown (skip logic: only if
    the answer to an earlier question `show_if` is one of `show_values`)."""

    __tablename__ = "survey_question"
    __table_args__ = (UniqueConstraint("survey_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    show_if: Mapped[str] = mapped_column(String(16), default="")
    show_values: Mapped[list] = mapped_column(JSON, default=list)
    rows: Mapped[list] = mapped_column(JSON, default=list, doc="a matrix question's items, each answered on its choices")

    @property
    def choices(self) -> list[str]:
        return matrix_choices(self.options) if self.kind == "matrix" else SCALES.get(self.kind, self.options)


def matrix_choices(options: list[str]) -> list[str]:
    """A matrix rates its rows on its shared options, or on the 1–5 scale when it lists none."""
    return list(options) if options else SCALES["scale"]


def row_code(code: str, n: int) -> str:
    """The answer key of a matrix question's n-th row (from 1): a response keeps each row's answer under its own
    key, so the analysis reads a row as it reads any single question."""
    return f"{code}.{n}"


@dataclass(frozen=True)
class MatrixRow:
    """One row of a matrix question, as the analysis sees it: a scale question (the 1–5 matrix: means with
    intervals, weighting, cross-tabs) or a single choice (a matrix on its own options)."""

    matrix: SurveyQuestion
    n: int

    @property
    def code(self) -> str:
        return row_code(self.matrix.code, self.n)

    @property
    def kind(self) -> str:
        return "single" if self.matrix.options else "scale"

    @property
    def label(self) -> str:
        return self.matrix.rows[self.n - 1]

    @property
    def text(self) -> str:
        return f"{self.matrix.text} — {self.label}"

    @property
    def options(self) -> list[str]:
        return list(self.matrix.options)

    @property
    def choices(self) -> list[str]:
        return self.matrix.choices

    @property
    def required(self) -> bool:
        return self.matrix.required

    @property
    def show_if(self) -> str:
        return self.matrix.show_if

    @property
    def show_values(self) -> list[str]:
        return self.matrix.show_values


def answer_items(questions) -> list:
    """What is counted: each question, a matrix as its rows (MatrixRow), in the questionnaire's order."""
    out: list = []
    for q in questions:
        out += [MatrixRow(q, n) for n in range(1, len(q.rows) + 1)] if q.kind == "matrix" else [q]
    return out


class SurveyInvitation(Base):
    """A one-time invitation: its token (kept only as a digest) admits exactly one response."""

    __tablename__ = "survey_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="", doc="whom it was made for, as the official noted")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    stratum: Mapped[str | None] = mapped_column(String(64), doc="the sample's stratum, copied to the response")


class SurveyResponse(Base):
    """One submitted questionnaire: the answers to the questions shown, keyed by question code. The unique
    invitation id is the database's own guard that an invitation is answered once, whatever races."""

    __tablename__ = "survey_response"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("survey_invitation.id", ondelete="CASCADE"),
                                                      unique=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    stratum: Mapped[str | None] = mapped_column(String(64), index=True, doc="for weighting back to the population")


class SurveyFinding(Base):
    """What a survey found that needs improving, handed to the ledger: the assignment (a measure given to a unit)
    that tracks the improvement like any other measure."""

    __tablename__ = "survey_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    question_code: Mapped[str] = mapped_column(String(16), default="")
    text: Mapped[str] = mapped_column(Text)
    measure_no: Mapped[int] = mapped_column(Integer)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("ledger_assignment.id"), index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
