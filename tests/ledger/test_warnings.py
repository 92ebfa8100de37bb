"""Each warning rule on its own, then a scan over a real database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from chunfeng.ledger import services as ledger
from chunfeng.ledger import warnings
from chunfeng.ledger.models import Assignment
from chunfeng.ledger.services import Terms
from chunfeng.ledger.warnings import WarningRules, describe, judge, last_finished_period
from tests.conftest import person

RULES = WarningRules(due_soon_days=7, report_grace_days=10, behind_points=20)
START = date(2022, 4, 1)


def light(today, *, status="in_progress", progress=50.0, deadline=date(2022, 12, 31), reported=True, cycle="monthly"):
    _, period_end = last_finished_period(today, cycle)
    return judge(today=today, rules=RULES, status=status, progress=progress, start=START, deadline=deadline,
                 reported=reported, period_end=period_end)


def test_last_finished_period():
    assert last_finished_period(date(2022, 5, 17), "monthly") == ("2022-04", date(2022, 4, 30))
    assert last_finished_period(date(2022, 5, 17), "quarterly") == ("2022-Q1", date(2022, 3, 31))
    assert last_finished_period(date(2022, 5, 17), "weekly") == ("2022-W19", date(2022, 5, 15))


@pytest.mark.parametrize("today, kwargs, expected", [
    (date(2022, 5, 17), {}, ("green", ())),
    (date(2023, 1, 1), {"progress": 100}, ("red", ("overdue",))),                        # a day late
    (date(2022, 12, 31), {"progress": 100}, ("yellow", ("due_soon",))),                  # the last day is not late
    (date(2022, 12, 24), {"progress": 100}, ("yellow", ("due_soon",))),                  # 7 days away
    (date(2022, 12, 23), {"progress": 100}, ("green", ())),                              # 8 days away
    (date(2022, 8, 16), {"progress": 29}, ("yellow", ("behind",))),                      # expected 50 %, 21 behind
    (date(2022, 8, 16), {"progress": 30}, ("green", ())),                                # exactly 20 behind
    (date(2022, 5, 10), {"reported": False}, ("yellow", ("missing_report",))),            # 10 days after April
    (date(2022, 5, 11), {"reported": False}, ("red", ("missing_report_long",))),          # 11 days after
    (date(2023, 1, 5), {"status": "done", "progress": 100, "reported": False}, ("green", ())),
    (date(2023, 1, 20), {"reported": False, "progress": 10}, ("red", ("overdue", "missing_report_long", "behind"))),
])
def test_rules(today, kwargs, expected):
    assert light(today, **kwargs) == expected


def test_ongoing_tasks_only_need_reports():
    assert light(date(2030, 1, 5), deadline=None, progress=0) == ("green", ())
    assert light(date(2030, 1, 25), deadline=None, progress=0, reported=False) == ("red", ("missing_report_long",))


def test_a_task_that_started_after_the_last_period_needs_no_report_yet():
    _, end = last_finished_period(date(2022, 4, 20), "monthly")
    assert judge(today=date(2022, 4, 20), rules=RULES, status="not_started", progress=0, start=START,
                 deadline=None, reported=False, period_end=end) == ("green", ())


def test_scan_writes_lights(bureau):
    with bureau.write() as s:
        office = person(s, "nat_office")
        late = ledger.assign(session=s, actor=office, measure_no=1, unit_code="110000",
                             terms=Terms(deadline=date(2022, 5, 31)), today=date(2022, 3, 1)).id
        fine = ledger.assign(session=s, actor=office, measure_no=2, unit_code="110000",
                             terms=Terms(ongoing=True), today=date(2022, 6, 2)).id  # after May: no report due
        silent = ledger.assign(session=s, actor=office, measure_no=3, unit_code="440000",
                               terms=Terms(ongoing=True), today=date(2022, 3, 1)).id
    with bureau.write() as s:
        result = warnings.scan(session=s, today=date(2022, 6, 20), rules=RULES)
    assert result.scanned == 3 and result.counts == {"green": 1, "yellow": 0, "red": 2} and result.changed == 2
    with bureau.read() as s:
        rows = {a.id: a for a in s.scalars(select(Assignment))}
        assert (rows[late].light, rows[late].light_reason) == ("red", "overdue,missing_report_long,behind")
        assert rows[fine].light == "green"
        assert rows[silent].light == "red"
        assert describe(rows[late], date(2022, 6, 20))[0] == "已逾期 20 天"
    with bureau.write() as s:
        assert warnings.scan(session=s, today=date(2022, 6, 20), rules=RULES).changed == 0  # nothing new
