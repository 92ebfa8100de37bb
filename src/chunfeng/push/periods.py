"""When a policy applies, and which return and deadline a message about it names.

A policy applies to tax periods within its validity (effective_from … effective_until). A campaign, a stage or a
match for a period outside it is refused, not run: a December 2026 reminder of a policy that ended in 2021, or a
match of a period before a policy began (which would count everyone as eligible but not claimed), misleads.

The return a policy is claimed on decides the period a campaign's message is about and its deadline:
monthly and quarterly returns are filed in the month after the period (a quarter's in January, April, July,
October) by that month's filing deadline; the enterprise income tax annual return (汇算清缴) by 5月31日 of the
next year and the 经营所得 annual return by 3月31日 of the next year, each moved to the next working day when it
falls on a day off (税收征收管理法实施细则 第一百零九条).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from chunfeng.push import matching
from chunfeng.push.errors import PushInvalid
from chunfeng.workdays import WorkCalendar, filing_deadline

# Annual returns: (month, day) of the deadline in the year after the period, by the policy's `filing`.
ANNUAL_DEADLINES = {"企业所得税": (5, 31), "个人所得税经营所得": (3, 31)}


@dataclass(frozen=True)
class ReturnDue:
    """The return a message is about: its period (as claims and filings store it), how people write that period,
    and the day it must be filed by."""

    period: str
    label: str
    deadline: date

    def deadline_text(self, year: int) -> str:
        """"5月22日", with the year when it is not `year` (the campaign's), so "2027年1月20日" is not read as this January."""
        d = self.deadline
        return f"{d.month}月{d.day}日" if d.year == year else f"{d.year}年{d.month}月{d.day}日"


def period_label(period: str) -> str:
    """2026-11 → 2026年11月, 2026Q3 → 2026年第3季度, 2025 → 2025年度."""
    if "Q" in period:
        year, quarter = period.split("Q")
        return f"{year}年第{int(quarter)}季度"
    if "-" in period:
        year, month = period.split("-")
        return f"{year}年{int(month)}月"
    return f"{period}年度"


def return_period(*, period_kind: str, filing: str, year: int, month: int) -> str:
    """The period of the return of this kind due next from the filing month (year, month) on.

    In a month that files no quarterly return (December) the quarter meant is the current one, filed next month;
    an annual return not yet due this year (January to May for enterprise income tax) is last year's, otherwise
    this year's, due next year."""
    if period_kind == "month" or (period_kind == "quarter" and month in (1, 4, 7, 10)):
        return matching.period_for(period_kind, year, month)
    if period_kind == "quarter":
        return f"{year}Q{(month - 1) // 3 + 1}"
    due_month, _ = ANNUAL_DEADLINES.get(filing, ANNUAL_DEADLINES["企业所得税"])
    return str(year - 1 if month <= due_month else year)


def return_due(*, period_kind: str, filing: str, year: int, month: int, cal: WorkCalendar) -> ReturnDue:
    """`return_period` with its deadline: a month's or quarter's in the month after it, by that month's filing
    deadline; a year's on the annual date of the next year, or the next working day. A deadline in a year the
    calendar does not cover raises CalendarNotCovered."""
    period = return_period(period_kind=period_kind, filing=filing, year=year, month=month)
    _, last = matching.period_bounds(period)
    if period_kind == "year":
        due_month, due_day = ANNUAL_DEADLINES.get(filing, ANNUAL_DEADLINES["企业所得税"])
        deadline = cal.next_working_day(date(last.year + 1, due_month, due_day))
    else:
        file_year, file_month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
        deadline = filing_deadline(file_year, file_month, cal)
    return ReturnDue(period, period_label(period), deadline)


def _day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def validity_text(policy) -> str:
    until = policy.effective_until
    return f"{_day(policy.effective_from)}至{_day(until) if until else '长期有效'}"


def validity_problem(policy, period: str) -> str | None:
    """Why `period` is outside the policy's validity, naming the policy and its dates; None when it is within.

    A period overlapping the validity is within it (a policy from 1 April covers that April's quarter)."""
    first, last = matching.period_bounds(period)
    until = policy.effective_until
    if last < policy.effective_from:
        why = f"{policy.effective_from.year}年{policy.effective_from.month}月{policy.effective_from.day}日起才施行"
    elif until is not None and first > until:
        why = f"已于{_day(until)}到期"
    else:
        return None
    return (f"政策 {policy.id}“{policy.name}”适用期为{validity_text(policy)},{why},"
            f"所属期{period_label(period)}不在适用期内")


def check_period(policy, period: str) -> None:
    """Refuse (PushInvalid) a period outside the policy's validity."""
    if problem := validity_problem(policy, period):
        raise PushInvalid(problem)


def in_force(policy, on: date) -> bool:
    return policy.effective_from <= on and (policy.effective_until is None or on <= policy.effective_until)
