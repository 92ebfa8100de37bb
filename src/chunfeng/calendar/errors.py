"""Errors of the calendar domain. Messages are Chinese: they are shown to officials as they are."""

from chunfeng.errors import ChunfengError, Invalid
from chunfeng.workdays import CalendarNotCovered  # noqa: F401  (the base layer's calendar raises it)


class CalendarError(ChunfengError):
    """Base of the calendar errors."""


class NoticeInvalid(CalendarError, Invalid):
    """A holiday notice that cannot be read, or whose dates disagree with its own weekdays or day counts."""


class CalendarInvalid(CalendarError, Invalid):
    """Bad input to a calendar command: a month, a date, a count."""
