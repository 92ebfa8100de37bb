"""The working-day calendar shared by policy push (monthly filing deadlines) and complaints (time limits in working days).

A day is a working day unless it is a Saturday or Sunday or a holiday, and a make-up day (调休上班) is a working
day even though it falls on a weekend. Which days those are is known only for the years whose State Council
arrangement (国务院办公厅关于YYYY年部分节假日安排的通知) the calendar holds: the shipped ``data/holidays.json``
(or the file ``CHUNFENG_HOLIDAYS_FILE`` names in its place), each year replaced by one imported into the database
(``chunfeng calendar import``). A date in any other year raises ``CalendarNotCovered``: a weekend-only guess put
2026's filing deadlines and time limits on days the State Council had given off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from chunfeng.db import Base, utcnow
from chunfeng.errors import Invalid

_ONE_DAY = timedelta(days=1)
# date.fromisoformat also takes "20220101" and week dates; the file promises YYYY-MM-DD, so hold it to that.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_KEY = re.compile(r"(\d{4})-(\d{2})")


class CalendarNotCovered(Invalid):
    """A date in a year whose holiday arrangement nobody has imported: no working day can be counted there."""

    def __init__(self, year: int):
        self.year = year
        super().__init__(
            f"{year}年的工作日历尚未导入,无法计算{year}年的工作日和申报期限(节假日与调休上班日以国务院办公厅"
            f"关于{year}年部分节假日安排的通知为准)。请系统管理员取得通知全文后运行 chunfeng calendar import 通知文件 导入。")


# The calendar's own table, here rather than in the calendar domain (which imports and shows it) so that every
# domain counting working days reads it without depending on that domain.
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


@dataclass(frozen=True)
class Arrangement:
    """One year's arrangement as its notice gives it: the days off (weekend days inside a span included; the
    2023 notice's New Year began 2022-12-31) and the weekend days worked, with where it came from."""

    year: int
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]
    source: str = ""
    deadline_source: str = ""  # the STA's notice behind the year's published filing deadlines, if any


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date]  # every day off of a notice's span, weekend days inside it included
    makeup_days: frozenset[date]  # weekend days worked (调休上班)
    statutory: frozenset[date]  # holidays whose runs extend filing deadlines; the loader uses all of them
    # Officially published deadlines by "YYYY-MM", from the file's "filing_deadline_overrides".
    deadline_overrides: Mapping[str, date] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    # The years whose arrangement is known; a date outside them is an error, never a weekend-only guess.
    arrangements: Mapping[int, Arrangement] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @classmethod
    def of(cls, arrangements: Mapping[int, Arrangement], overrides: Mapping[str, date]) -> WorkCalendar:
        holidays = frozenset(d for a in arrangements.values() for d in a.holidays)
        makeup = frozenset(d for a in arrangements.values() for d in a.makeup_days)
        return cls(holidays, makeup, holidays, MappingProxyType(dict(overrides)),
                   MappingProxyType(dict(sorted(arrangements.items()))))

    @property
    def years(self) -> list[int]:
        return list(self.arrangements)

    def covers(self, year: int) -> bool:
        return year in self.arrangements

    def check_covered(self, year: int) -> None:
        if year not in self.arrangements:
            raise CalendarNotCovered(year)

    def is_working_day(self, d: date) -> bool:
        self.check_covered(d.year)
        if d in self.makeup_days:
            return True
        return d not in self.holidays and d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        """``d`` itself if it is a working day, else the first working day after it."""
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after ``start``; for n == 0, ``start`` itself if working, else the next working day."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return self.next_working_day(start)
        d = start
        while n:
            d += _ONE_DAY
            if self.is_working_day(d):
                n -= 1
        return d

    def working_days_between(self, start: date, end: date) -> int:
        """The number of working days in (start, end]: the day a time limit starts from does not count."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        count, d = 0, start + _ONE_DAY
        while d <= end:
            count += self.is_working_day(d)
            d += _ONE_DAY
        return count


def _long_rest_days(calendar: WorkCalendar, first: date, last: date) -> int:
    """Days of [first, last] lying in runs of 3+ consecutive days off that hold a statutory holiday.

    Runs are cut at the period's edges: only the days off inside the filing period can delay it.
    """

    def counted(run: list[date]) -> int:
        return len(run) if len(run) >= 3 and any(d in calendar.statutory for d in run) else 0

    total, run, d = 0, [], first
    while d <= last:
        if calendar.is_working_day(d):
            total += counted(run)
            run = []
        else:
            run.append(d)
        d += _ONE_DAY
    return total + counted(run)


def filing_deadline(
    year: int, month: int, calendar: WorkCalendar, *, day: int = 15, overrides: Mapping[str, date] | None = None
) -> date:
    """The last day of the monthly filing period (1st to ``day``-th) of year-month.

    The rule is 税收征收管理法实施细则 第一百零九条: a period whose last day is a day off ends on the first
    working day after it, and a period holding 3 or more consecutive days off (法定休假日) is extended by that
    many days. As the State Taxation Administration applies it:

    * a run is a stretch of consecutive days off holding at least one statutory holiday, its weekend days
      included (2024's 端午 was Jun 10 joined to the weekend, and Jun 8-10 extended June by 3);
    * only the part of a run inside days 1..``day`` counts, and only if that part is 3+ days (the 2023
      New Year run Dec 31-Jan 2 leaves 2 days in January and extends nothing; 2022's Spring Festival run
      Jan 31-Feb 6 extends February by 6);
    * the extension is counted in working days after the ``day``-th: deadline = the n-th working day after
      it, or, with nothing to count, the ``day``-th itself or the next working day.

    Counting the extension in calendar days instead (15 + n, then the next working day) gives 2022-01-18 and
    2022-02-21 where the STA published 01-19 and 02-23; the working-day count reproduces every deadline the STA
    published for 2022-2025.

    The STA publishes the year's deadlines (国家税务总局办公厅关于明确YYYY年度申报纳税期限的通知) and may
    change them for special reasons, so an official deployment should load the published dates as overrides:
    ``overrides`` maps "YYYY-MM" to a date and wins over both the computation and the calendar file's
    ``filing_deadline_overrides``. A month in a year the calendar does not cover raises CalendarNotCovered,
    published override or not: the campaign around it needs the year's working days too.
    """
    calendar.check_covered(year)
    key = f"{year:04d}-{month:02d}"
    official = {**calendar.deadline_overrides, **(overrides or {})}
    if key in official:
        return official[key]
    nominal = date(year, month, day)
    return calendar.add_working_days(nominal, _long_rest_days(calendar, date(year, month, 1), nominal))


def filing_period(
    year: int, month: int, calendar: WorkCalendar, *, day: int = 15, overrides: Mapping[str, date] | None = None
) -> tuple[date, date]:
    """(first day of the month, its filing deadline); see ``filing_deadline``."""
    return date(year, month, 1), filing_deadline(year, month, calendar, day=day, overrides=overrides)


def load_calendar(path: Path | None = None) -> WorkCalendar:
    """The shipped calendar, or the file at ``path`` (same JSON shape) in its place.

    A malformed file raises ValueError naming the file, the place in it and the problem.
    """
    if path is None:
        where = "shipped data/holidays.json"
        text = resources.files("chunfeng").joinpath("data/holidays.json").read_text(encoding="utf-8")
    else:
        where = str(path)
        text = Path(path).read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON: {exc}") from exc
    return _parse(raw, where)


def _parse(raw: Any, where: str) -> WorkCalendar:
    def problem(message: str) -> ValueError:
        return ValueError(f"{where}: {message}")

    def iso(value: Any, at: str) -> date:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise problem(f"{at}: {value!r} is not a date written YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise problem(f"{at}: {value!r} is not a real date") from None

    if not isinstance(raw, dict):
        raise problem("the top level must be a JSON object")
    if "years" not in raw:
        raise problem("missing key 'years'")
    if not isinstance(raw["years"], dict):
        raise problem("'years' must be an object mapping a year to its arrangement")
    holidays: set[date] = set()
    makeup: set[date] = set()
    arrangements: dict[int, Arrangement] = {}
    deadline_sources = raw.get("filing_deadline_source", {})
    if not isinstance(deadline_sources, dict) or not all(isinstance(v, str) for v in deadline_sources.values()):
        raise problem("'filing_deadline_source' must be an object mapping a year to text")
    for key, entry in raw["years"].items():
        if not re.fullmatch(r"\d{4}", key):
            raise problem(f"years: key {key!r} is not a four-digit year")
        if not isinstance(entry, dict):
            raise problem(f"years.{key} must be an object")
        days: dict[str, list[date]] = {"holidays": [], "makeup_days": []}
        for name, into in (("holidays", holidays), ("makeup_days", makeup)):
            if name not in entry:
                raise problem(f"years.{key}: missing key {name!r}")
            if not isinstance(entry[name], list):
                raise problem(f"years.{key}.{name} must be a list of dates")
            for i, value in enumerate(entry[name]):
                d = iso(value, f"years.{key}.{name}[{i}]")
                # A notice may start in the year before (2023's New Year began 2022-12-31); anything further
                # off is a typo that would otherwise silently shift a day off into the wrong year.
                if d.year not in (int(key), int(key) - 1):
                    raise problem(f"years.{key}.{name}[{i}]: {value} is not in {key} or the end of the year before")
                if name == "makeup_days" and d.weekday() < 5:
                    raise problem(f"years.{key}.makeup_days[{i}]: {value} is a weekday; only a weekend day can be worked in lieu")
                into.add(d)
                days[name].append(d)
        source = entry.get("source", raw.get("source", ""))
        if not isinstance(source, str):
            raise problem(f"years.{key}.source must be text")
        arrangements[int(key)] = Arrangement(int(key), tuple(sorted(days["holidays"])),
                                             tuple(sorted(days["makeup_days"])), source, deadline_sources.get(key, ""))
    if both := holidays & makeup:
        raise problem(f"{min(both)} is listed both as a holiday and as a make-up working day")

    overrides_raw = raw.get("filing_deadline_overrides", {})
    if not isinstance(overrides_raw, dict):
        raise problem("'filing_deadline_overrides' must be an object mapping 'YYYY-MM' to a date")
    overrides: dict[str, date] = {}
    for key, value in overrides_raw.items():
        match = _MONTH_KEY.fullmatch(key)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise problem(f"filing_deadline_overrides: key {key!r} is not a month written YYYY-MM")
        d = iso(value, f"filing_deadline_overrides.{key}")
        if (d.year, d.month) != (int(match.group(1)), int(match.group(2))):
            raise problem(f"filing_deadline_overrides.{key}: {value} is not in that month")
        overrides[key] = d
    return WorkCalendar.of(arrangements, overrides)


@lru_cache(maxsize=4)
def _cached(path: str) -> WorkCalendar:
    return load_calendar(Path(path) if path else None)


# The holidays file of this process (setting `holidays_file`; "" for the shipped one), set by `configure` at each
# entry point; None until then.
_holidays_file: str | None = None


def configure(holidays_file: str) -> None:
    """Set the file `file_calendar` reads ("" for the shipped default)."""
    global _holidays_file
    _holidays_file = holidays_file


def file_calendar() -> WorkCalendar:
    """The packaged default: the configured file (`CHUNFENG_HOLIDAYS_FILE`, else the shipped one), read once
    per process."""
    if _holidays_file is None:
        raise RuntimeError("chunfeng.workdays: no holidays file configured; the entry point must call "
                           "chunfeng.runtime.configure(settings) before working days are counted")
    return _cached(_holidays_file)


def configured_calendar(session: Session) -> WorkCalendar:
    """The calendar in force: the file's years, each replaced by the year imported into the database, if any.

    Read from the database on every call (a handful of rows), so that `chunfeng calendar import` reaches every
    running server process at once rather than at its next restart."""
    return with_imported_years(session, file_calendar())


def with_imported_years(session: Session, base: WorkCalendar) -> WorkCalendar:
    """``base`` with each year imported into the database replacing its year whole (days and deadlines)."""
    # The columns that make the calendar, not the notice's text beside them; and the calendar they make built once
    # for as long as they stay the same: every public filing counts its time limits with it (issue 16).
    rows = tuple(session.execute(select(CalendarYear.year, CalendarYear.holidays, CalendarYear.makeup_days,
                                        CalendarYear.source, CalendarYear.deadline_source, CalendarYear.deadlines)
                                 .order_by(CalendarYear.year)))
    global _built
    key = repr(rows)
    if (last := _built) is not None and last[0] == key and last[1] is base:
        return last[2]
    calendar = _with_rows(base, rows)
    _built = (key, base, calendar)  # one assignment: another thread sees the old entry or the new, whole
    return calendar


_built: tuple[str, WorkCalendar, WorkCalendar] | None = None  # the last (rows, base, calendar) built


def _with_rows(base: WorkCalendar, rows) -> WorkCalendar:
    arrangements = dict(base.arrangements)
    overrides = dict(base.deadline_overrides)
    for row in rows:
        arrangements[row.year] = Arrangement(row.year, tuple(date.fromisoformat(d) for d in row.holidays),
                                             tuple(date.fromisoformat(d) for d in row.makeup_days), row.source,
                                             row.deadline_source)
        overrides = {k: v for k, v in overrides.items() if not k.startswith(f"{row.year:04d}-")}
        overrides.update({k: date.fromisoformat(v) for k, v in row.deadlines.items()})
    return WorkCalendar.of(arrangements, overrides)
