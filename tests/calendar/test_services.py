"""The yearly routine on a real database: importing a notice makes its year covered for every process, keeps the STA's
deadlines and is audited; a month's deadline can be set; what no calendar covers is refused wherever it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from chunfeng import workdays
from chunfeng.appeals import intake
from chunfeng.appeals import services as appeals
from chunfeng.appeals.errors import AppealInvalid
from chunfeng.appeals.models import Appeal
from chunfeng.calendar import services
from chunfeng.calendar.errors import CalendarInvalid, CalendarNotCovered, NoticeInvalid
from chunfeng.calendar.models import CalendarYear
from chunfeng.db import Database
from chunfeng.org.access import SystemActor
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry, User
from chunfeng.push import campaigns
from chunfeng.push import services as push
from chunfeng.push.errors import PushInvalid
from chunfeng.push.models import Campaign, Policy
from chunfeng.workdays import configured_calendar, file_calendar

ROOT = Path(__file__).parent.parent.parent
NOTICE_2026 = ROOT / "src/chunfeng/data/notices/2026.txt"
STA_2026 = {"2026-01": "2026-01-20", "2026-02": "2026-02-24", "2026-03": "2026-03-16", "2026-04": "2026-04-20",
            "2026-05": "2026-05-22", "2026-06": "2026-06-15", "2026-07": "2026-07-15", "2026-08": "2026-08-17",
            "2026-09": "2026-09-15", "2026-10": "2026-10-26", "2026-11": "2026-11-16", "2026-12": "2026-12-15"}


@pytest.fixture
def without_2026(tmp_path):
    """A deployment still on the 2022–2025 file, as Chunfeng shipped before: 2026 uncovered."""
    raw = json.loads((ROOT / "src/chunfeng/data/holidays.json").read_text(encoding="utf-8"))
    raw["years"].pop("2026")
    raw["filing_deadline_overrides"], raw["filing_deadline_source"] = {}, {}
    path = tmp_path / "holidays-2022-2025.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    workdays.configure(str(path))  # as CHUNFENG_HOLIDAYS_FILE would; the next test is configured afresh
    return path


def audit_actions(db, prefix="calendar.") -> list[AuditEntry]:
    with db.read() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.seq)))


def test_importing_the_notice_covers_its_year_for_every_process(db, system, without_2026):
    assert file_calendar().years == [2022, 2023, 2024, 2025]
    with db.read() as s, pytest.raises(CalendarNotCovered, match="2026年"):
        campaigns.stage_dates(year=2026, month=10, reminder_day=10, last_days=2, session=s)
    with db.write() as s:
        result = services.import_notice(session=s, actor=system, data=NOTICE_2026.read_bytes(), source_name="2026.txt")
    assert not result.replaced and result.kept_deadlines == {} and result.notice.year == 2026
    # Another process (its own engine, nothing cached) sees the import at once.
    other = Database(db.url)
    try:
        with other.read() as s:
            cal = configured_calendar(s)
            view = services.year_view(cal, 2026)
            deadline, due = campaigns.stage_dates(year=2026, month=10, reminder_day=10, last_days=2, session=s)
    finally:
        other.dispose()
    assert cal.covers(2026) and not cal.covers(2027)
    assert view["deadlines"] == STA_2026  # the rule alone, from the imported arrangement, gives the STA's list
    assert "国办发明电〔2025〕7号" in view["source"] and "导入自 2026.txt" in view["source"]
    assert deadline == date(2026, 10, 26) and due["first"] == date(2026, 10, 8)
    [entry] = audit_actions(db)
    assert (entry.action, entry.object_id, entry.actor) == ("calendar.year.imported", "2026", "tester")
    assert json.loads(entry.before) is None and "2026-10-07" in json.loads(entry.after)["holidays"]


def test_reimporting_a_shipped_year_keeps_the_stas_deadlines(db, system):
    with db.write() as s:
        result = services.import_notice(session=s, actor=system, data=NOTICE_2026.read_bytes(), source_name="2026.txt")
    assert result.replaced and result.kept_deadlines == STA_2026 and result.disagreements == {}
    with db.read() as s:
        row = s.get(CalendarYear, 2026)
        assert row.deadlines == STA_2026 and "税总办征科函〔2025〕64号" in row.deadline_source
        assert services.year_view(configured_calendar(s), 2026)["deadlines"] == STA_2026


def test_a_refused_notice_changes_nothing(db, system):
    bad = NOTICE_2026.read_text(encoding="utf-8").replace("10月1日（周四）", "10月1日（周五）").encode()
    with pytest.raises(NoticeInvalid, match=r"第七条\(国庆节\)"), db.write() as s:
        services.import_notice(session=s, actor=system, data=bad, source_name="bad.txt")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CalendarYear)) == 0
    assert audit_actions(db) == []


def test_a_months_deadline_is_set_as_the_sta_published_it(db, system):
    with pytest.raises(CalendarNotCovered, match="2027年"), db.write() as s:
        services.set_deadline(session=s, actor=system, month="2027-02", deadline="2027-02-22")
    for month, day, message in [("2026-13", "2026-12-15", "YYYY-MM"), ("2026-02", "2026-02-30", "不是真实的日期"),
                                ("2026-02", "2026-03-02", "不在 2026-02 内"), ("2026-02", "2026-02-16", "休息日")]:
        with pytest.raises(CalendarInvalid, match=message), db.write() as s:
            services.set_deadline(session=s, actor=system, month=month, deadline=day)
    with db.write() as s:
        services.set_deadline(session=s, actor=system, month="2026-02", deadline="2026-02-25", source="测试通知")
    with db.read() as s:
        view = services.year_view(configured_calendar(s), 2026)
    assert view["deadlines"] == {**STA_2026, "2026-02": "2026-02-25"}
    assert view["holidays"][0] == "2026-01-01" and "测试通知" in view["source"]
    [entry] = audit_actions(db)
    assert entry.action == "calendar.deadline.set" and entry.object_id == "2026-02"
    assert json.loads(entry.before) == {"deadline": "2026-02-24", "computed": "2026-02-24"}


def test_only_the_national_system_administrator_changes_the_calendar(db, add_users):
    add_users({"officer": ("000000", ["service_officer"]), "root": ("000000", ["admin"])})
    with db.write() as s:
        officer = s.scalar(select(User).where(User.username == "officer"))
        with pytest.raises(Forbidden):
            services.import_notice(session=s, actor=officer, data=NOTICE_2026.read_bytes(), source_name="x")
        with pytest.raises(Forbidden):
            services.set_deadline(session=s, actor=officer, month="2026-02", deadline="2026-02-25")
        root = s.scalar(select(User).where(User.username == "root"))
        services.set_deadline(session=s, actor=root, month="2026-02", deadline="2026-02-25")


def test_next_years_calendar_is_asked_for_from_1_november():
    cal = file_calendar()
    assert services.missing_years(cal, date(2026, 10, 31)) == []
    assert services.missing_years(cal, date(2026, 11, 1)) == [2027]
    assert services.missing_years(cal, date(2026, 12, 6)) == [2027]
    assert services.missing_years(cal, date(2027, 3, 1)) == [2027]  # the year itself, uncovered


def test_a_january_2027_campaign_is_refused_while_2027_is_uncovered(db):
    with db.write() as s:
        push.seed_policies(s)
    with db.read() as s:  # a policy still in force in 2027, so that only the calendar can refuse it
        pid = s.scalar(select(Policy.id).where((Policy.effective_until.is_(None)) |
                                               (Policy.effective_until >= date(2027, 12, 31))).order_by(Policy.id))
    with pytest.raises(PushInvalid, match="无法创建推送活动:2027年的工作日历尚未导入.*chunfeng calendar import"), \
            db.write() as s:
        campaigns.create_campaign(session=s, actor=SystemActor(), name="元旦后申报提醒", unit_code="000000",
                                  policy_ids=[pid], channels=["inapp"], year=2027, month=1)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_time_limits_reaching_into_an_uncovered_year_are_refused_not_guessed(with_plan, county):
    submission = intake.Submission(kind="complaint", text="出口退税办理太慢了,申报以后等了十几个工作日还没有到账",
                                   title="出口退税慢", region="110101", submitter="张三", phone="13812345678")
    with with_plan.write() as s:  # 10 working days from 2026-12-01 stay in December
        appeal, _ = intake.submit(session=s, submission=submission, today=date(2026, 12, 1))
        assert appeal.due_close == date(2026, 12, 15)
    with pytest.raises(AppealInvalid, match="暂时无法受理.*2027年的工作日历尚未导入"), with_plan.write() as s:
        intake.submit(session=s, submission=submission, today=date(2026, 12, 24))
    with with_plan.read() as s:
        assert s.scalar(select(func.count()).select_from(Appeal)) == 1
    # The scan still escalates what is overdue; it reminds only limits due today and says why.
    with with_plan.write() as s:
        result = appeals.scan(session=s, today=date(2026, 12, 31))
    assert result.escalated == 1 and "2027年" in result.calendar_problem


def cli(db, *args) -> subprocess.CompletedProcess:
    """`chunfeng calendar …` as the operator runs it: its own process, as a server's would be."""
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "chunfeng", "calendar", *args], capture_output=True, text=True, env=env)


def test_the_cli(db):
    shown = cli(db, "show", "2026", "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert list(view) == ["year", "holidays", "workdays", "deadlines", "source"]
    assert view["year"] == 2026 and len(view["holidays"]) == 33 and view["deadlines"] == STA_2026
    assert view["workdays"] == ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
    missing = cli(db, "show", "2027", "--json")
    assert missing.returncode == 1 and missing.stdout == "" and "2027年的工作日历尚未导入" in missing.stderr
    assert cli(db, "add-workdays", "2026-09-30", "5").stdout.strip() == "2026-10-13"
    assert cli(db, "add-workdays", "2026-12-24", "10").returncode == 1
    refused = cli(db, "deadline", "2027-02", "2027-02-22")
    assert refused.returncode == 1 and "2027年" in refused.stderr
    imported = cli(db, "import", str(NOTICE_2026))
    assert imported.returncode == 0, imported.stderr
    assert "已替换 2026 年工作日历" in imported.stdout and "七、国庆节:2026-10-01 至 2026-10-07 放假 7 天" in imported.stdout
    assert cli(db, "deadline", "2026-02", "2026-02-25").returncode == 0
    assert json.loads(cli(db, "show", "2026", "--json").stdout)["deadlines"]["2026-02"] == "2026-02-25"
    assert [e.action for e in audit_actions(db)] == ["calendar.year.imported", "calendar.deadline.set"]


def test_the_calendar_in_force_is_built_once_and_rebuilt_when_its_rows_change(db, system):
    """Every public filing counts its time limits with `configured_calendar` (issue 16): built once while the
    imported years stay the same, and a change to them (here a month's deadline, as another process would write it)
    is in force at the next call, never hidden by what was built before."""
    with db.write() as s:
        services.import_notice(session=s, actor=system, data=NOTICE_2026.read_bytes(), source_name="2026.txt")
    with db.read() as s:
        first, again = configured_calendar(s), configured_calendar(s)
    assert again is first and first.deadline_overrides["2026-02"] == date(2026, 2, 24)
    with db.write() as s:
        services.set_deadline(session=s, actor=system, month="2026-02", deadline="2026-02-25", source="测试通知")
    with db.read() as s:
        changed = configured_calendar(s)
    assert changed is not first and changed.deadline_overrides["2026-02"] == date(2026, 2, 25)
    with db.write() as s:  # the imported year taken away: the shipped file's year again, not the cached one
        s.execute(delete(CalendarYear))
    with db.read() as s:
        assert configured_calendar(s).deadline_overrides["2026-02"] == date(2026, 2, 24)
