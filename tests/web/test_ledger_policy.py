"""Who may report on, break down, review and supervise which assignment (ledger/policy.py): the page offers each
action exactly to those the service lets do it, over the real HTTP server, for the holding unit, its parent
and grandparent, its child, a sibling, another province and the national office, in each role.

The bureau (tests/conftest.py): 000000 ── 110000 北京 ──┬─ 110100 甲市 ──┬─ 110101 一县
                                                          │                 └─ 110102 二县
                                                          └─ 110200 乙市
                                  └─ 440000 广东
Measure 54 is held by 北京, 甲市 and 一县 (make_chain); 乙市 and 二县 are free to be broken down to.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from chunfeng.ledger import reporting, supervision
from chunfeng.ledger import services as ledger
from chunfeng.ledger.errors import LedgerError
from chunfeng.ledger.models import Assignment, ProgressReport, SupervisionNotice
from chunfeng.ledger.periods import period_of
from chunfeng.ledger.services import Terms
from tests.conftest import person
from tests.web.policy_matrix import Cell, check
from tests.web.test_ledger_pages import DEADLINE, make_chain

ACTORS = ["nat_office", "bj_office", "bj_reporter", "city_office", "city_reporter", "city2_office", "city2_reporter",
          "county_office", "county_reporter", "county2_reporter", "gd_office", "viewer"]
RESPOND_BY = date.today() + timedelta(days=5)


def _snapshot(db):
    with db.read() as s:
        return (s.scalar(select(func.count()).select_from(Assignment)),
                sorted(s.execute(select(ProgressReport.id, ProgressReport.state, ProgressReport.version)).all()),
                sorted(s.execute(select(SupervisionNotice.id, SupervisionNotice.state)).all()))


def _setup(bureau, add_users):
    add_users({"city2_office": ("110200", ["action_office"]), "county_office": ("110101", ["action_office"])})
    return make_chain(bureau)


def test_report_break_down_and_supervise_are_offered_exactly_where_the_service_allows(bureau, add_users, server):
    bj, city, county = _setup(bureau, add_users)
    free_child = {bj: "110200", city: "110102"}
    period = period_of(date.today(), "monthly")
    cells = []
    for who in ACTORS:
        for a in (bj, city, county):
            page = f"/ledger/assignments/{a}"
            # 北京 and 甲市 broke theirs down: their progress rolls up, their units report a narrative only.
            figures = {"status": "in_progress", "percent": 10} if a == county else {"status": None, "percent": None}
            cells.append(Cell(who, page, f"{page}/reports", lambda s, u, a=a, f=figures: reporting.submit_report(
                session=s, actor=u, assignment_id=a, narrative="进展", period=period, **f),
                {"period": period, "narrative": "进展", **{k: str(v) for k, v in figures.items() if v is not None}}))
            cells.append(Cell(who, page, f"{page}/notices", lambda s, u, a=a: supervision.issue_notice(
                session=s, actor=u, assignment_id=a, subject="进度", text="请说明", respond_by=RESPOND_BY),
                {"subject": "进度", "text": "请说明", "respond_by": RESPOND_BY.isoformat()}))
            cells.append(Cell(who, page, f"{page}/remind", lambda s, u, a=a: supervision.remind(
                session=s, actor=u, assignment_id=a), {}))
            if a in free_child:
                cells.append(Cell(who, page, f"{page}/break-down", lambda s, u, a=a: ledger.break_down(
                    session=s, actor=u, assignment_id=a, unit_codes=[free_child[a]], terms=Terms(deadline=DEADLINE)),
                    {"units": [free_child[a]], "deadline": DEADLINE.isoformat()}))
    upper = {bj: {"nat_office"}, city: {"nat_office", "bj_office"}, county: {"nat_office", "bj_office", "city_office"}}
    expected = {("bj_reporter", f"/ledger/assignments/{bj}/reports"),
                ("city_reporter", f"/ledger/assignments/{city}/reports"),
                ("county_reporter", f"/ledger/assignments/{county}/reports"),
                # a breakdown belongs to the holding unit's office, not to the offices above it
                ("bj_office", f"/ledger/assignments/{bj}/break-down"),
                ("city_office", f"/ledger/assignments/{city}/break-down")}
    expected |= {(who, f"/ledger/assignments/{a}/{act}") for a, whos in upper.items() for who in whos
                 for act in ("notices", "remind")}
    check(bureau, server, cells, expected, (LedgerError,), _snapshot)


def test_review_answer_and_close_are_offered_exactly_where_the_service_allows(bureau, add_users, server):
    bj, city, county = _setup(bureau, add_users)
    with bureau.write() as s:
        reports = {a: reporting.submit_report(session=s, actor=person(s, who), assignment_id=a, narrative="进展",
                                           **({"status": "in_progress", "percent": 20} if a == county
                                              else {"status": None, "percent": None})).id
                   for a, who in ((bj, "bj_reporter"), (city, "city_reporter"), (county, "county_reporter"))}
        notice = supervision.issue_notice(session=s, actor=person(s, "city_office"), assignment_id=county,
                                          subject="进度滞后", text="请说明原因", respond_by=RESPOND_BY).id
        closed = supervision.issue_notice(session=s, actor=person(s, "bj_office"), assignment_id=city,
                                          subject="已办结的", text="请说明", respond_by=RESPOND_BY).id
        supervision.close_notice(session=s, actor=person(s, "bj_office"), notice_id=closed)
    cells = []
    for who in ACTORS:
        for a, report in reports.items():
            cells.append(Cell(who, f"/ledger/assignments/{a}", f"/ledger/reports/{report}/review",
                              lambda s, u, r=report: reporting.review_report(session=s, actor=u, report_id=r, approve=True),
                              {"decision": "approve"}))
        for n in (notice, closed):
            page = f"/ledger/notices/{n}"
            cells.append(Cell(who, page, f"{page}/answer", lambda s, u, n=n: supervision.answer_notice(
                session=s, actor=u, notice_id=n, text="已落实"), {"text": "已落实"}))
            cells.append(Cell(who, page, f"{page}/close", lambda s, u, n=n: supervision.close_notice(
                session=s, actor=u, notice_id=n), {}))
    expected = {("nat_office", f"/ledger/reports/{reports[bj]}/review"),
                ("bj_office", f"/ledger/reports/{reports[city]}/review"),
                ("city_office", f"/ledger/reports/{reports[county]}/review"),
                ("county_reporter", f"/ledger/notices/{notice}/answer"),
                ("county_office", f"/ledger/notices/{notice}/answer")}
    expected |= {(who, f"/ledger/notices/{notice}/close") for who in ("city_office", "bj_office", "nat_office")}
    check(bureau, server, cells, expected, (LedgerError,), _snapshot)
