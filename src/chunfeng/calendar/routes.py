"""The calendar page: a year's days off, weekend days worked and monthly filing deadlines, for every official."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from chunfeng.calendar import services
from chunfeng.calendar.errors import CalendarNotCovered
from chunfeng.web.deps import CurrentUser, SessionDep, render, require

router = APIRouter(prefix="/calendar", tags=["calendar"])


@router.get("", dependencies=[require("calendar.view")])
def calendar_page(request: Request, session: SessionDep, user: CurrentUser,
                  year: Annotated[int | None, Query(ge=2000, le=2100)] = None):
    today = date.today()
    cal = services.effective_calendar(session=session)
    year = year or today.year
    try:
        view, missing = services.year_view(cal, year), ""
    except CalendarNotCovered as exc:
        view, missing = None, str(exc)
    published = {k for k in cal.deadline_overrides if k.startswith(f"{year:04d}-")}
    return render(request, "calendar.html", {
        "year": year, "view": view, "missing": missing, "years": cal.years, "published": published,
        "warning": services.coverage_warning(session=session, today=today),
        "runs": _runs(view["holidays"]) if view else []}, user=user)


def _runs(days: list[str]) -> list[tuple[date, date, int]]:
    """Consecutive days off as (first, last, count): the spans the notice announced."""
    runs: list[list[date]] = []
    for d in map(date.fromisoformat, days):
        if runs and (d - runs[-1][-1]).days == 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return [(r[0], r[-1], len(r)) for r in runs]
