"""The league table's score, part by part, on a real database."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update

from chunfeng.ledger import league, reporting
from chunfeng.ledger import services as ledger
from chunfeng.ledger.league import Standing, periods_due
from chunfeng.ledger.models import Assignment
from chunfeng.ledger.services import Terms
from chunfeng.org.models import Unit
from chunfeng.org.services import find_unit
from tests.conftest import person


def test_periods_due():
    today = date(2022, 5, 17)
    assert periods_due(date(2022, 1, 10), "monthly", today) == 4       # January … April
    assert periods_due(date(2022, 5, 1), "monthly", today) == 0        # May has not finished
    assert periods_due(date(2021, 11, 30), "quarterly", today) == 2    # 2021-Q4, 2022-Q1
    assert periods_due(date(2022, 4, 25), "weekly", today) == 3        # W17, W18, W19


def test_score_formula_and_missing_parts():
    s = Standing(Unit(code="x", name="x"), assignments=4, due=10, on_time=8, reviewed=5, first_pass=4, red=1, yellow=2,
                 values=0, met=0)
    s.compute()
    # 0.35 × 0.8 + 0.25 × 0.8 + 0.25 × 0.5, indicators left out: weights scaled by 1 / 0.85
    assert s.rates == {"on_time": 0.8, "approval": 0.8, "warnings": 0.5, "indicators": None}
    assert s.score == round(100 * (0.35 * 0.8 + 0.25 * 0.8 + 0.25 * 0.5) / 0.85, 1)
    empty = Standing(Unit(code="y", name="y"), assignments=2)
    empty.compute()
    assert empty.score == 100.0 and empty.rates["on_time"] is None  # nothing due yet, no warnings


def test_league_table(bureau):
    start = date(2022, 1, 1)
    with bureau.write() as s:
        office = person(s, "bj_office")
        for code in ("110100", "110200"):
            ledger.assign(session=s, actor=office, measure_no=54, unit_code=code,
                          terms=Terms(deadline=date(2022, 12, 31), start_date=start))
        indicator = ledger.define_indicator(session=s, actor=person(s, "nat_office"), measure_no=54, name="办理天数",
                                            target=6, direction="down").id
    with bureau.read() as s:
        a1, a2 = s.scalars(select(Assignment.id).order_by(Assignment.id)).all()
    with bureau.write() as s:
        city = person(s, "city_reporter")
        # 甲市: January on time and approved first time with the indicator met; February late.
        r = reporting.submit_report(session=s, actor=city, assignment_id=a1, status="in_progress", percent=20, period="2022-01",
                                 values={indicator: 5.5}, today=date(2022, 2, 5))
        reporting.review_report(session=s, actor=person(s, "bj_office"), report_id=r.id, approve=True)
        reporting.submit_report(session=s, actor=city, assignment_id=a1, status="in_progress", percent=30, period="2022-02",
                             today=date(2022, 3, 30))
        # 乙市: January returned once, then approved; the indicator missed.
        r2 = reporting.submit_report(session=s, actor=person(s, "city2_reporter"), assignment_id=a2, status="in_progress",
                                  percent=10, period="2022-01", values={indicator: 7}, today=date(2022, 2, 3))
        reporting.review_report(session=s, actor=person(s, "bj_office"), report_id=r2.id, approve=False, comment="补充")
        reporting.submit_report(session=s, actor=person(s, "city2_reporter"), assignment_id=a2, status="in_progress",
                             percent=10, period="2022-01", values={indicator: 7}, expected_version=2, today=date(2022, 2, 20))
        reporting.review_report(session=s, actor=person(s, "bj_office"), report_id=r2.id, approve=True)
        s.execute(update(Assignment).where(Assignment.id == a2).values(light="red"))
    with bureau.read() as s:
        table = league.league_table(session=s, actor=person(s, "bj_office"), level="municipal",
                                    within=find_unit(session=s, code="110000"), today=date(2022, 3, 5))
    first, second = table
    assert (first.unit.code, first.rank, second.unit.code, second.rank) == ("110100", 1, "110200", 2)
    assert (first.due, first.on_time, first.reviewed, first.first_pass, first.values, first.met) == (2, 1, 1, 1, 1, 1)
    assert (second.due, second.on_time, second.reviewed, second.first_pass, second.values, second.met) == (2, 1, 1, 0, 1, 0)
    assert first.rates["on_time"] == 0.5 and second.rates["warnings"] == 0.0
    assert first.score > second.score
