"""The calendar years imported into the database: each replaces the packaged default's year of the same number.
The table is defined beside the working-day calendar that reads it (chunfeng.workdays), below every domain."""

from chunfeng.workdays import CalendarYear  # noqa: F401
