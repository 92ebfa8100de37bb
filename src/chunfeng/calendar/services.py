"""The calendar in force and the yearly routine that keeps it so: import the State Council's notice, set a month's
deadline where the STA's notice says so, show a year, and warn before a year begins uncovered."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from chunfeng.calendar.errors import CalendarInvalid
from chunfeng.calendar.models import CalendarYear
from chunfeng.calendar.notice import Notice, decode, parse_notice
from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.access import Actor, authorize
from chunfeng.workdays import WorkCalendar, file_calendar, filing_deadline, with_imported_years

# From this day of the year on, a missing calendar for next year is shown as a warning: the State Council
# publishes the arrangement in October or November, and campaigns and time limits soon reach into January.
WARN_FROM = (11, 1)


def effective_calendar(*, session: Session, base: WorkCalendar | None = None) -> WorkCalendar:
    """The packaged default's years (or ``base``'s), each replaced whole by the year imported, if any."""
    return with_imported_years(session, base or file_calendar())


def _deadlines_of(cal: WorkCalendar, year: int) -> dict[str, str]:
    return {k: v.isoformat() for k, v in sorted(cal.deadline_overrides.items()) if k.startswith(f"{year:04d}-")}


@dataclass
class Imported:
    notice: Notice
    replaced: bool  # the year was covered before (by the packaged default or an earlier import)
    kept_deadlines: dict[str, str]  # the STA's published deadlines of the year, kept across the import
    disagreements: dict[str, tuple[str, str]]  # month → (kept deadline, what the new arrangement computes)


def import_notice(*, session: Session, actor: Actor, data: bytes, source_name: str, year: int | None = None) -> Imported:
    """Replace a year's arrangement with the one the notice publishes (checked clause by clause), audited.

    The year's published deadlines are the STA's, a document of their own: they are kept, and any month where the
    new arrangement computes another date is reported, for whoever runs the import to check against the STA."""
    authorize(actor, "calendar.manage")
    text = decode(data)
    notice = parse_notice(text, year=year)
    current = effective_calendar(session=session)
    before = current.arrangements.get(notice.year)
    kept = _deadlines_of(current, notice.year)
    row = session.get(CalendarYear, notice.year) or CalendarYear(year=notice.year)
    digest = hashlib.sha256(data).hexdigest()[:16]
    row.holidays = [d.isoformat() for d in notice.holidays]
    row.makeup_days = [d.isoformat() for d in notice.makeup_days]
    row.deadlines = kept
    row.source = f"{notice.title};导入自 {source_name}(SHA-256 {digest}…)"
    row.deadline_source = before.deadline_source if before else ""
    row.notice_text = text
    row.updated_by, row.updated_at = actor.username, utcnow()
    session.add(row)
    session.flush()
    after = effective_calendar(session=session)
    disagreements = {}
    for month, deadline in kept.items():
        computed = _computed(after, month)
        if computed != deadline:
            disagreements[month] = (deadline, computed)
    audit.record(session, actor=actor, action="calendar.year.imported", object_type="calendar_year",
                 object_id=notice.year,
                 before=None if before is None else {"holidays": [d.isoformat() for d in before.holidays],
                                                     "makeup_days": [d.isoformat() for d in before.makeup_days],
                                                     "source": before.source},
                 after={"holidays": row.holidays, "makeup_days": row.makeup_days, "source": row.source,
                        "deadlines_kept": kept})
    return Imported(notice, before is not None, kept, disagreements)


def _computed(cal: WorkCalendar, month: str) -> str:
    """The deadline the arrangement alone gives (细则第一百零九条), published overrides left aside."""
    year, mon = int(month[:4]), int(month[5:])
    bare = WorkCalendar.of(cal.arrangements, {})
    return filing_deadline(year, mon, bare).isoformat()


_MONTH = re.compile(r"(\d{4})-(\d{2})")


def set_deadline(*, session: Session, actor: Actor, month: str, deadline: str, source: str = "") -> date:
    """Set one month's filing deadline as the STA published it (e.g. 2027-02 → 2027-02-22), audited.

    The year's arrangement must be known first: the STA's deadlines follow the State Council's notice, and the
    deadline must be a working day of that arrangement inside the month."""
    authorize(actor, "calendar.manage")
    m = _MONTH.fullmatch(month.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise CalendarInvalid(f"月份应写成 YYYY-MM(如 2027-02),而不是“{month}”")
    year, mon = int(m.group(1)), int(m.group(2))
    day = parse_day(deadline)
    if (day.year, day.month) != (year, mon):
        raise CalendarInvalid(f"申报期限 {day} 不在 {month} 内")
    current = effective_calendar(session=session)
    current.check_covered(year)
    if not current.is_working_day(day):
        raise CalendarInvalid(f"{day} 在{year}年的工作日历中是休息日,不能作为申报期限;请核对税务总局的通知")
    key = f"{year:04d}-{mon:02d}"
    previous = current.deadline_overrides.get(key)
    row = session.get(CalendarYear, year)
    if row is None:  # the year comes from the packaged default: it moves whole into the database
        a = current.arrangements[year]
        row = CalendarYear(year=year, holidays=[d.isoformat() for d in a.holidays],
                           makeup_days=[d.isoformat() for d in a.makeup_days], deadlines=_deadlines_of(current, year),
                           source=a.source, deadline_source=a.deadline_source, notice_text="")
    row.deadlines = {**row.deadlines, key: day.isoformat()}
    if source.strip():
        row.deadline_source = source.strip()
    row.updated_by, row.updated_at = actor.username, utcnow()
    session.add(row)
    audit.record(session, actor=actor, action="calendar.deadline.set", object_type="calendar_year", object_id=key,
                 before={"deadline": previous.isoformat() if previous else None, "computed": _computed(current, key)},
                 after={"deadline": day.isoformat(), "source": row.deadline_source})
    return day


def parse_day(value: str) -> date:
    value = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise CalendarInvalid(f"日期应写成 YYYY-MM-DD,而不是“{value}”")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CalendarInvalid(f"{value} 不是真实的日期") from None


def year_view(cal: WorkCalendar, year: int) -> dict:
    """A year as the checks read it (`chunfeng calendar show YEAR --json`): its days off, its weekend days worked,
    every month's filing deadline (published, else computed) and where they come from."""
    cal.check_covered(year)
    a = cal.arrangements[year]
    return {
        "year": year,
        "holidays": [d.isoformat() for d in a.holidays],
        "workdays": [d.isoformat() for d in a.makeup_days],
        "deadlines": {f"{year:04d}-{m:02d}": filing_deadline(year, m, cal).isoformat() for m in range(1, 13)},
        "source": "；".join(s for s in (a.source, a.deadline_source) if s),
    }


def add_workdays(cal: WorkCalendar, start: date, n: int) -> date:
    if not 0 <= n <= 1000:
        raise CalendarInvalid(f"工作日数应在 0–1000 之间,而不是 {n}")
    return cal.add_working_days(start, n)


def missing_years(cal: WorkCalendar, today: date) -> list[int]:
    """The years an official must be warned about today: this year if uncovered, and next year from 1 November."""
    years = [today.year] if not cal.covers(today.year) else []
    if (today.month, today.day) >= WARN_FROM and not cal.covers(today.year + 1):
        years.append(today.year + 1)
    return years


def coverage_warning(*, session: Session, today: date) -> str:
    """The dashboard's warning ('' when there is nothing to warn about)."""
    missing = missing_years(effective_calendar(session=session), today)
    if not missing:
        return ""
    return "、".join(f"{y}年" for y in missing) + (
        "的工作日历尚未导入:涉及这些年份的推送活动和诉求时限将无法计算。请系统管理员在国务院办公厅发布节假日安排通知后"
        "运行 chunfeng calendar import 通知文件 导入;税务总局公布申报纳税期限后用 chunfeng calendar deadline 核对。")

