"""The calendar years imported into the database: each replaces the packaged default's year of the same number."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from chunfeng.db import Base, utcnow


class CalendarYear(Base):
    """One year's arrangement as imported from the State Council's notice, with the STA's published deadlines.

    In the database rather than a file so that every server process sees an import at once."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holidays: Mapped[list] = mapped_column(JSON, default=list, doc="ISO dates off, weekend days inside a span included")
    makeup_days: Mapped[list] = mapped_column(JSON, default=list, doc="ISO weekend dates worked (调休上班)")
    deadlines: Mapped[dict] = mapped_column(JSON, default=dict, doc='published filing deadlines, "YYYY-MM" → ISO date')
    source: Mapped[str] = mapped_column(Text, default="")
    deadline_source: Mapped[str] = mapped_column(Text, default="")
    notice_text: Mapped[str] = mapped_column(Text, default="", doc="the notice as imported, for whoever checks it")
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
