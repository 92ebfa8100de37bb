"""Bounds on what people type, checked before any work is done with it: dates inside the window the system
can reason about, and free text of a length a person writes. One home, so every form, API and import
refuses the same way, naming the field.

Why: a date like 0001-01-01 or 9999-12-31 overflows date arithmetic (a 500 from `timedelta`, PostgreSQL or
DuckDB) long after it was accepted; a megabyte of text is classified, stored and audited before anything
notices it is not a question.
"""

from __future__ import annotations

from datetime import date

from chunfeng.errors import ValidationFailed

DAY_MIN, DAY_MAX = date(2000, 1, 1), date(2100, 12, 31)
# A law's or a knowledge entry's validity may begin long before the system's own events (房产税暂行条例: 1986):
# such dates are only compared, never counted from, so the window opens at the founding of the state.
LAW_DAY_MIN = date(1949, 10, 1)

TITLE = 200  # titles, names, short labels
SHORT_TEXT = 500  # a question, a phrasing, a policy basis
TEXT = 5000  # narratives, comments, appeal texts, replies
LONG_TEXT = 20000  # a knowledge-base answer


class OutOfBounds(ValidationFailed):
    """A value outside what the system accepts; the message names the field."""


def bounded_day(value: str, field: str, *, earliest: date = DAY_MIN, form_field: str | None = None) -> date:
    """`value` (YYYY-MM-DD) as a date between `earliest` (2000-01-01 unless the field's facts are older, such
    as a law's effective date) and 2100-12-31, or OutOfBounds naming `field` (and carrying `form_field`, the
    form field it was typed in, for the form to show it beside)."""
    text = (value or "").strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise OutOfBounds(f"{field}“{text[:40]}”无效,应写成 2022-07-01 这样的日期", field=form_field) from None
    if not earliest <= day <= DAY_MAX:
        raise OutOfBounds(f"{field} {day.isoformat()} 超出可接受的范围({earliest} 至 {DAY_MAX})", field=form_field)
    return day


def bounded_int(value: str, field: str, *, low: int, high: int, form_field: str | None = None) -> int:
    """`value` as a whole number from `low` to `high`, or OutOfBounds naming `field` (and carrying `form_field`):
    a form takes a number field as text and refuses it here, so the form comes back with the message beside it."""
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit()):
        raise OutOfBounds(f"{field}“{text[:40]}”无效,应为整数", field=form_field)
    if not (len(text) <= 12 and low <= int(text) <= high):
        raise OutOfBounds(f"{field} {text[:40]} 超出可接受的范围({low} 至 {high})", field=form_field)
    return int(text)


def length_problem(value: str | None, field: str, limit: int) -> str | None:
    """A message naming `field` when `value` is longer than `limit` characters, else None."""
    if value is not None and len(value) > limit:
        return f"{field}超过 {limit} 字(现 {len(value)} 字)"
    return None


def check_lengths(fields: dict[str, tuple[str | None, int]]) -> None:
    """Refuse, naming every field too long, before anything else is done: {label: (value, limit)}."""
    problems = [p for label, (value, limit) in fields.items() if (p := length_problem(value, label, limit))]
    if problems:
        raise OutOfBounds(";".join(problems))
