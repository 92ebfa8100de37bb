"""Direct reports (measure 19) on a real database: a form per policy sent to contact units with a due date in
working days (2027 refused, not guessed), reminders by the job and by hand through the unit inbox, each report
written by its own unit only, and the roll-up (who has not reported, who was late, themes) with its xlsx."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.errors import Forbidden
from chunfeng.inbox.models import InboxMessage
from chunfeng.org.models import AuditEntry
from chunfeng.push.models import Policy
from chunfeng.survey import direct_reports
from chunfeng.survey.direct_models import DirectReport, DirectReportForm
from chunfeng.survey.errors import SurveyInvalid, SurveyNotFound
from chunfeng.workdays import CalendarNotCovered
from tests.conftest import person

SEPT_28 = date(2026, 9, 28)


@pytest.fixture
def halls(with_plan, county, add_users):
    """北京 sends; its test city (110100) and county (110101) are the contact units."""
    add_users({"bj_officer": ("110000", ["service_officer"]), "city_reporter": ("110100", ["unit_reporter"]),
               "county_reporter": ("110101", ["unit_reporter"]), "gd_officer": ("440000", ["service_officer"]),
               "bj_viewer": ("110000", ["viewer"])})
    return with_plan


def send(db, *, units=("110101",), days=5, **kw) -> int:
    with db.write() as s:
        return direct_reports.create_form(session=s, actor=person(s, "bj_officer"), unit_codes=list(units),
                                          working_days=days, issued_on=kw.pop("issued_on", SEPT_28),
                                          **({"policy_name": "新出台的研发费用加计扣除政策"} | kw)).id


def inbox_titles(db, code) -> list[str]:
    with db.read() as s:
        from chunfeng.org.models import Unit
        unit = s.scalar(select(Unit).where(Unit.code == code))
        return list(s.scalars(select(InboxMessage.title).where(InboxMessage.unit_id == unit.id).order_by(InboxMessage.id)))


def test_a_form_is_due_on_the_working_day_calendar_and_reaches_each_unit_inbox(halls):
    form_id = send(halls, units=("110100", "110101"))
    with halls.read() as s:
        form = s.get(DirectReportForm, form_id)
        # 9-29, 9-30, then the National Day holiday (10-1 to 10-7), 10-8, 10-9 and the make-up Saturday 10-10.
        assert form.due_on == date(2026, 10, 10)
        assert form.title == "新出台的研发费用加计扣除政策落实情况直联直报"
        assert s.scalar(select(func.count()).select_from(DirectReport).where(DirectReport.form_id == form_id)) == 2
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "survey.direct.form.created"))
    assert inbox_titles(halls, "110101") == [f"直联直报:{form.title}"]


def test_a_due_date_needing_2027_is_refused_with_the_calendar_message_and_nothing_is_sent(halls):
    with pytest.raises(CalendarNotCovered, match="2027年的工作日历尚未导入"):
        send(halls, issued_on=date(2026, 12, 24), days=6)  # 12-25, 28, 29, 30, 31 and then 2027
    with halls.read() as s:
        assert s.scalar(select(func.count()).select_from(DirectReportForm)) == 0
    assert inbox_titles(halls, "110101") == []
    assert send(halls, issued_on=date(2026, 12, 24), days=5)  # 12-31 is still 2026


def test_policy_from_the_catalogue_must_be_in_force_and_units_in_the_subtree(halls):
    with halls.write() as s:
        s.add(Policy(id="t-ended", name="已失效的政策", tax_type="增值税", basis="公告", effective_from=date(2022, 1, 1),
                     effective_until=date(2022, 12, 31), period_kind="month", filing="增值税申报表", rule="true"))
        s.add(Policy(id="t-new", name="新出台的政策", tax_type="增值税", basis="公告", effective_from=date(2026, 1, 1),
                     period_kind="month", filing="增值税申报表", rule="true"))
    with pytest.raises(SurveyInvalid, match="已于 2022-12-31 失效"):
        send(halls, policy_id="t-ended")
    with pytest.raises(SurveyNotFound):
        send(halls, policy_id="no-such")
    assert send(halls, policy_id="t-new")
    with pytest.raises(Forbidden):  # 广东 is outside 北京's subtree
        send(halls, units=("110101", "440000"))
    with pytest.raises(SurveyInvalid, match="没有这些代码的单位"):
        send(halls, units=("110101", "999999"))
    with pytest.raises(SurveyInvalid, match="工作日"):
        send(halls, days=0)
    with halls.read() as s:
        assert s.scalar(select(func.count()).select_from(DirectReportForm)) == 1


def test_only_the_unit_itself_writes_its_report(halls):
    form_id = send(halls)
    fields = {"problems": "系统提示校验不通过", "reactions": "企业希望延长申报期", "suggestions": "", "free_text": ""}
    for intruder in ("city_reporter", "bj_officer"):  # the unit above, and the sender
        with pytest.raises(Forbidden, match="不在这份直报表的报送单位之列"), halls.write() as s:
            direct_reports.submit(session=s, actor=person(s, intruder), form_id=form_id, fields=fields)
    with pytest.raises(Forbidden), halls.write() as s:  # a viewer has no survey.report
        direct_reports.submit(session=s, actor=person(s, "bj_viewer"), form_id=form_id, fields=fields)
    with pytest.raises(SurveyInvalid, match="请至少填写一项"), halls.write() as s:
        direct_reports.submit(session=s, actor=person(s, "county_reporter"), form_id=form_id, fields={})
    with halls.write() as s:
        direct_reports.submit(session=s, actor=person(s, "county_reporter"), form_id=form_id, fields=fields)
    with halls.read() as s:
        report = s.scalar(select(DirectReport))
        assert (report.state, report.problems, report.submitted_by) == ("submitted", "系统提示校验不通过", "county_reporter")


def test_reminders_by_the_job_a_working_day_before_and_once_after_the_due_date(halls):
    form_id = send(halls, units=("110100", "110101"))  # due 2026-10-10 (a make-up Saturday)
    with halls.write() as s:
        direct_reports.submit(session=s, actor=person(s, "city_reporter"), form_id=form_id, fields={"problems": "无"})
    with halls.write() as s:
        assert direct_reports.scan(session=s, today=date(2026, 10, 8)).reminded == 0  # next working day is 10-9
        assert direct_reports.scan(session=s, today=date(2026, 10, 9)).reminded == 1  # next working day is 10-10
        assert direct_reports.scan(session=s, today=date(2026, 10, 9)).reminded == 0  # once
        assert direct_reports.scan(session=s, today=date(2026, 10, 10)).reminded == 0
        assert direct_reports.scan(session=s, today=date(2026, 10, 12)).reminded == 1  # overdue: once more
        assert direct_reports.scan(session=s, today=date(2026, 10, 13)).reminded == 0
    assert inbox_titles(halls, "110101")[1:] == ["催报:新出台的研发费用加计扣除政策落实情况直联直报"] * 2
    assert len(inbox_titles(halls, "110100")) == 1  # it reported: never reminded


def test_the_job_on_the_last_day_of_2026_still_reminds_the_overdue_and_says_what_it_could_not_do(halls):
    form_id = send(halls, issued_on=date(2026, 12, 14), days=5)  # due 12-21
    with halls.write() as s:
        result = direct_reports.scan(session=s, today=date(2026, 12, 31))
    assert result.reminded == 1 and "2027年的工作日历尚未导入" in result.calendar_problem
    assert form_id


def test_manual_reminder_and_the_rollup_with_late_pending_and_themes(halls, tmp_path):
    form_id = send(halls, units=("110100", "110101"))
    with halls.write() as s:
        assert direct_reports.remind(session=s, actor=person(s, "bj_officer"), form_id=form_id, unit_code="110101") == 1
    with pytest.raises(Forbidden), halls.write() as s:  # 广东 may not remind 北京's units
        direct_reports.remind(session=s, actor=person(s, "gd_officer"), form_id=form_id)
    text = "电子税务局加计扣除填报页面找不到研发费用辅助账入口"
    with halls.write() as s:
        direct_reports.submit(session=s, actor=person(s, "city_reporter"), form_id=form_id,
                              fields={"problems": text, "suggestions": "增加填报指引"})
        direct_reports.submit(session=s, actor=person(s, "county_reporter"), form_id=form_id,
                              fields={"problems": text + "。", "reactions": "企业反映辅助账不会填"})
        for who, at in (("city_reporter", datetime(2026, 10, 9, 3, 0)), ("county_reporter", datetime(2026, 10, 12, 3, 0))):
            s.execute(DirectReport.__table__.update().where(DirectReport.unit_id == person(s, who).unit_id)
                      .values(submitted_at=at))  # the county's after the due date
    with halls.write() as s:
        r = direct_reports.rollup(session=s, actor=person(s, "bj_viewer"), form_id=form_id, today=date(2026, 10, 12))
        assert [row.unit_code for row in r.submitted] == ["110100", "110101"]
        assert [row.unit_code for row in r.late] == ["110101"] and r.pending == []
        assert r.themes[0].size == 2 and r.themes[0].kinds == {"problems": 2}
        path = direct_reports.export_xlsx(session=s, actor=person(s, "bj_viewer"), r=r, path=tmp_path / "r.xlsx")
    book = load_workbook(path)
    rows = list(book["各单位报送"].iter_rows(values_only=True))
    assert rows[1][:3] == ("110100", "北京测试市税务局", "按时报送") and rows[2][2] == "逾期报送"
    with halls.read() as s:
        assert s.scalar(select(func.count()).where(AuditEntry.action == "survey.direct.exported")) == 1
        with pytest.raises(Forbidden):
            direct_reports.rollup(session=s, actor=person(s, "gd_officer"), form_id=form_id)
