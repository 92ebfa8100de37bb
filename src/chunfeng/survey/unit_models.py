"""The table of invitations sent to units (service halls, 12366 centres, grassroots bureaus) rather than to sampled
taxpayers: which unit each one-time invitation went to, so reminders reach those that have not answered and the
analysis shows the response rate per unit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from chunfeng.crypto import Encrypted
from chunfeng.db import Base, utcnow
from chunfeng.org.models import Unit


class SurveyUnitInvitation(Base):
    """One unit's invitation to a survey version. The token is kept SM4-encrypted beside the invitation's digest
    because a reminder carries the same link (the unit's inbox message holds it too)."""

    __tablename__ = "survey_unit_invitation"
    __table_args__ = (UniqueConstraint("survey_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("survey_invitation.id", ondelete="CASCADE"), unique=True)
    token: Mapped[str] = mapped_column(Encrypted, default="")
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    unit: Mapped[Unit] = relationship(viewonly=True)
