"""The calendar over HTTP: the page officials read, the dashboard's warning for next year, and the pages that plan
campaigns refusing a month no calendar covers with the reason (400, never a 500)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from chunfeng.calendar import services as calendar
from chunfeng.calendar.models import CalendarYear
from chunfeng.push import services as push
from chunfeng.push.models import Campaign, Policy
from chunfeng.workdays import file_calendar
from tests.conftest import csrf_from, login

NOTICE_2026 = Path(__file__).parent.parent.parent / "src/chunfeng/data/notices/2026.txt"


def test_officials_read_the_years_calendar_and_deadlines(server, db, add_users, system):
    add_users({"viewer": ("110000", ["viewer"]), "tp": ("110000", ["taxpayer"])})
    viewer = login(server, "viewer")
    page = viewer.get("/calendar", params={"year": 2026})
    assert page.status_code == 200
    for shown in ("国办发明电〔2025〕7号", "税总办征科函〔2025〕64号", "2026-02-15", "2026-02-23", "2026-10-10",
                  "2026-10-26", "税务总局公布"):
        assert shown in page.text, shown
    uncovered = viewer.get("/calendar", params={"year": 2027})
    assert uncovered.status_code == 200 and "2027年的工作日历尚未导入" in uncovered.text
    assert viewer.get("/calendar", params={"year": 99999}).status_code == 400
    assert login(server, "tp").get("/calendar").status_code == 403
    # An import reaches the running server at once: no restart, no cache to wait for.
    with db.write() as s:
        calendar.import_notice(session=s, actor=system, data=NOTICE_2026.read_bytes(), source_name="2026.txt")
    assert "导入自 2026.txt" in viewer.get("/calendar", params={"year": 2026}).text


def test_the_dashboard_warns_from_1_november_when_next_year_is_missing(server, with_plan, add_users):
    add_users({"viewer": ("110000", ["viewer"])})
    viewer = login(server, "viewer")
    missing = calendar.missing_years(file_calendar(), date.today())
    page = viewer.get("/ledger").text
    for year in missing:  # on 2026-12-06, as this was written: 2027
        assert f"{year}年的工作日历尚未导入" in page and "chunfeng calendar import" in page
    with with_plan.write() as s:  # once every such year is covered (a stand-in row: no 2027 notice is published)
        for year in missing:
            s.add(CalendarYear(year=year, holidays=[f"{year}-01-01"], makeup_days=[], deadlines={}, source="测试",
                               deadline_source="", notice_text="", updated_by="tester"))
    assert "工作日历尚未导入" not in viewer.get("/ledger").text


def test_a_campaign_for_an_uncovered_month_is_refused_with_the_reason(server, db, add_users):
    with db.write() as s:
        push.seed_policies(s)
        pid = s.scalar(select(Policy.id).where((Policy.effective_until.is_(None)) |
                                               (Policy.effective_until >= date(2027, 12, 31))).order_by(Policy.id))
    add_users({"officer": ("110000", ["service_officer"])})
    officer = login(server, "officer")
    page = officer.get("/push/campaigns").text
    refused = officer.post("/push/campaigns", data={"csrf_token": csrf_from(page), "name": "元旦后申报提醒",
                                                    "month": "2027-01", "policies": [pid], "channels": ["inapp"]})
    assert refused.status_code == 400
    assert "2027年的工作日历尚未导入" in refused.text and "chunfeng calendar import" in refused.text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0
