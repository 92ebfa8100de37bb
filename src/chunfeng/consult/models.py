"""Tables of the consultation: knowledge entries and their history, the query log, the handoff queue."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit

ENTRY_STATES = {"draft": "草稿", "published": "已发布"}


class KbEntry(Base):
    """One question of the shared knowledge base (知识库) with its answer and policy basis."""

    __tablename__ = "consult_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True, doc="stable id shown to users, e.g. kb-0042")
    question: Mapped[str] = mapped_column(String(500))
    phrasings: Mapped[str] = mapped_column(Text, default="", doc="alternative phrasings, one per line")
    answer: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(String(300), default="")
    article: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[str] = mapped_column(String(300), default="", doc="comma-separated")
    region: Mapped[str] = mapped_column(String(32), default="national", index=True)
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_until: Mapped[date | None] = mapped_column(Date)
    repeals: Mapped[str] = mapped_column(Text, default="", doc="documents this entry's basis repealed or replaced, one per "
                                         "line: an answer still citing one of them goes to the review queue")
    reviewed_at: Mapped[datetime | None] = mapped_column(
        DateTime, doc="when an official last saved or confirmed the entry; none: never (imported sample content)")
    status: Mapped[str] = mapped_column(String(16), default="published", index=True)
    sample: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    owner_unit: Mapped[Unit] = relationship(lazy="joined")

    @property
    def phrasing_list(self) -> list[str]:
        return [p for p in self.phrasings.splitlines() if p.strip()]

    @property
    def repeal_list(self) -> list[str]:
        return [d.strip() for d in self.repeals.splitlines() if d.strip()]

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]


class KbRevision(Base):
    """An entry as it was before a change: the version history."""

    __tablename__ = "consult_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("consult_entry.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[str] = mapped_column(Text, doc="canonical JSON of the entry at that version")
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsultQuery(Base):
    """One question asked, what answered it, and how the asker rated it."""

    __tablename__ = "consult_query"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    text: Mapped[str] = mapped_column(String(500))
    region: Mapped[str] = mapped_column(String(32), default="national", index=True)
    channel: Mapped[str] = mapped_column(String(16), default="web", index=True)
    top_ref: Mapped[str] = mapped_column(String(32), default="", doc="kb key or measure:N")
    top_tags: Mapped[str] = mapped_column(String(300), default="")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    handoff: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    feedback: Mapped[str | None] = mapped_column(String(16), doc="helpful / not_helpful")
    token_digest: Mapped[str | None] = mapped_column(
        String(64), doc="SHA-256 of the token given to the asker with the answer: only the asker rates it or asks a person")


class Handoff(Base):
    """转人工: a question the machine could not answer, waiting for a 12366 agent."""

    __tablename__ = "consult_handoff"

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("consult_query.id"), index=True)
    text: Mapped[str] = mapped_column(String(500))
    region: Mapped[str] = mapped_column(String(32), default="national")
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True,
                                         doc="the bureau of its region, who answers it (consult.policy)")
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    agent: Mapped[str | None] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    promoted_key: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    unit: Mapped[Unit] = relationship(lazy="joined")


class KbGeneration(Base):
    """A counter bumped by every knowledge-base change, so each process knows when to rebuild its index."""

    __tablename__ = "consult_generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
