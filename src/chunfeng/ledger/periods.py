"""Reporting periods: a cycle (weekly, monthly, quarterly) and a day give the period's key.

Keys sort in time order within a cycle: "2022-W07", "2022-05", "2022-Q2".
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from chunfeng.ledger.errors import LedgerInvalid

_PATTERNS = {"weekly": re.compile(r"^(\d{4})-W(\d{2})$"), "monthly": re.compile(r"^(\d{4})-(\d{2})$"),
             "quarterly": re.compile(r"^(\d{4})-Q([1-4])$")}
_EXAMPLES = {"weekly": "2022-W07", "monthly": "2022-05", "quarterly": "2022-Q2"}


def period_of(day: date, cycle: str) -> str:
    if cycle == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if cycle == "quarterly":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def period_bounds(period: str, cycle: str) -> tuple[date, date]:
    """First and last day of a period; LedgerInvalid if the key does not fit the cycle."""
    m = _PATTERNS[cycle].match(period or "")
    if not m:
        raise LedgerInvalid(f"报告期“{period}”的格式不对,{_cycle_word(cycle)}报告期应形如 {_EXAMPLES[cycle]}")
    year, n = int(m[1]), int(m[2])
    try:
        if cycle == "weekly":
            start = date.fromisocalendar(year, n, 1)
            return start, start + timedelta(days=6)
        if cycle == "quarterly":
            start = date(year, 3 * n - 2, 1)
            end = date(year + (n == 4), (3 * n) % 12 + 1, 1) - timedelta(days=1)
            return start, end
        start = date(year, n, 1)
        return start, date(year + (n == 12), n % 12 + 1, 1) - timedelta(days=1)
    except ValueError:
        raise LedgerInvalid(f"报告期“{period}”不存在") from None


def _cycle_word(cycle: str) -> str:
    return {"weekly": "每周", "monthly": "每月", "quarterly": "每季度"}[cycle]
