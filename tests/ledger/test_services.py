"""Assignment, breakdown, reports, review and roll-up on a real database."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from chunfeng.ledger import reporting, reviews, warnings
from chunfeng.ledger import services as ledger
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound, StaleReport
from chunfeng.ledger.models import Assignment, ProgressReport
from chunfeng.ledger.services import Terms
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry
from tests.conftest import TODAY, person

DEADLINE = date(2022, 12, 31)


def assign(db, who, measure, unit, deadline=DEADLINE, **kw):
    with db.write() as s:
        return ledger.assign(session=s, actor=person(s, who), measure_no=measure, unit_code=unit,
                             terms=Terms(owner="张三", deadline=deadline, **kw), today=TODAY).id


def report(db, who, assignment_id, status, percent, **kw):
    with db.write() as s:
        r = reporting.submit_report(session=s, actor=person(s, who), assignment_id=assignment_id, status=status,
                                 percent=percent, today=TODAY, **kw)
        return r.id, r.version


def review(db, who, report_id, approve=True, comment="", **kw):
    with db.write() as s:
        return reporting.review_report(session=s, actor=person(s, who), report_id=report_id, approve=approve,
                                    comment=comment, **{"today": TODAY, **kw}).state


def progress(db, assignment_id):
    with db.read() as s:
        a = s.get(Assignment, assignment_id)
        return a.status, a.progress


def chain(db):
    """Measure 54 assigned to 北京, broken down to 甲市, then to both its counties."""
    bj = assign(db, "nat_office", 54, "110000")
    city = assign(db, "bj_office", 54, "110100", deadline=date(2022, 10, 31))
    c1 = assign(db, "city_office", 54, "110101", deadline=date(2022, 9, 30))
    c2 = assign(db, "city_office", 54, "110102", deadline=date(2022, 9, 30))
    return bj, city, c1, c2


def test_assign_records_everything(bureau):
    aid = assign(bureau, "nat_office", 54, "110000")
    with bureau.read() as s:
        a = s.get(Assignment, aid)
        assert (a.measure_no, a.category_no, a.province_code, a.owner, a.deadline, a.status) == \
               (54, 2, "110000", "张三", DEADLINE, "not_started")
        assert a.start_date == TODAY and a.assigned_by == "nat_office" and a.parent_id is None
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.assignment.created")).one()
        assert entry.actor == "nat_office" and '"measure":54' in entry.after


def test_assign_refusals(bureau):
    assign(bureau, "nat_office", 54, "110000")
    with pytest.raises(LedgerInvalid, match="已分配"):
        assign(bureau, "nat_office", 54, "110000")
    with pytest.raises(Forbidden, match="本单位"):
        assign(bureau, "bj_office", 1, "110000")
    with pytest.raises(Forbidden):
        assign(bureau, "bj_office", 1, "440000")
    with pytest.raises(Forbidden):
        assign(bureau, "bj_reporter", 1, "110100")  # reporters do not assign
    with pytest.raises(LedgerInvalid, match="二选一"):
        assign(bureau, "nat_office", 2, "110000", ongoing=True)
    with pytest.raises(LedgerInvalid, match="二选一"):
        assign(bureau, "nat_office", 2, "110000", deadline=None)
    with pytest.raises(LedgerInvalid, match="报告周期"):
        assign(bureau, "nat_office", 2, "110000", cycle="daily")
    with pytest.raises(LedgerNotFound, match="122"):
        assign(bureau, "nat_office", 122, "110000")
    with pytest.raises(LedgerInvalid, match="早于开始日期"):
        assign(bureau, "nat_office", 3, "110000", deadline=date(2022, 1, 1))
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(Assignment)) == 1


def test_breakdown_respects_the_parent_deadline(bureau):
    bj = assign(bureau, "nat_office", 54, "110000")
    with pytest.raises(LedgerInvalid, match="不能晚于上级任务的时限 2022-12-31"):
        assign(bureau, "bj_office", 54, "110100", deadline=date(2023, 1, 31))
    with pytest.raises(LedgerInvalid, match="长期坚持"):
        assign(bureau, "bj_office", 54, "110100", deadline=None, ongoing=True)
    with bureau.write() as s:
        created = ledger.break_down(session=s, actor=person(s, "bj_office"), assignment_id=bj,
                                    unit_codes=["110100", "110200"], terms=Terms(deadline=date(2022, 11, 30)), today=TODAY)
        assert [a.parent_id for a in created] == [bj, bj]
    with pytest.raises(LedgerInvalid, match="直属下级"):
        with bureau.write() as s:
            ledger.break_down(session=s, actor=person(s, "bj_office"), assignment_id=bj, unit_codes=["110101"],
                              terms=Terms(deadline=date(2022, 11, 30)), today=TODAY)


def test_bulk_assignment_by_category_and_level(bureau):
    with bureau.write() as s:
        created = ledger.assign_bulk(session=s, actor=person(s, "nat_office"), level="province", category_no=1,
                                     terms=Terms(deadline=DEADLINE), today=TODAY)
    assert created == 29 * 36
    with bureau.write() as s:
        again = ledger.assign_bulk(session=s, actor=person(s, "nat_office"), level="province", measure_nos=[1, 2],
                                   terms=Terms(deadline=DEADLINE), today=TODAY)
        assert again == 0  # already held
        cities = ledger.assign_bulk(session=s, actor=person(s, "bj_office"), level="municipal", measure_nos=[1, 2, 3],
                                    terms=Terms(deadline=date(2022, 9, 30)), today=TODAY)
        assert cities == 6
        parents = set(s.scalars(select(Assignment.parent_id).where(Assignment.unit.has(level="municipal"))))
        assert parents == set(s.scalars(select(Assignment.id).where(Assignment.province_code == "110000",
                                                                    Assignment.measure_no.in_([1, 2, 3]),
                                                                    Assignment.unit.has(level="province"))))


def test_bulk_assignment_is_all_or_nothing(bureau):
    assign(bureau, "nat_office", 54, "110000", deadline=date(2022, 6, 30))
    with pytest.raises(LedgerInvalid, match="未分配任何任务.*第 54 条"):
        with bureau.write() as s:
            ledger.assign_bulk(session=s, actor=person(s, "bj_office"), level="municipal", measure_nos=[53, 54],
                               terms=Terms(deadline=date(2022, 9, 30)), today=TODAY)
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(Assignment)) == 1
    with pytest.raises(LedgerNotFound, match="200"):
        with bureau.write() as s:
            ledger.assign_bulk(session=s, actor=person(s, "bj_office"), level="municipal", measure_nos=[53, 200],
                               terms=Terms(deadline=date(2022, 6, 30)), today=TODAY)


def test_report_review_roll_up(bureau):
    bj, city, c1, c2 = chain(bureau)
    rid, version = report(bureau, "county_reporter", c1, "in_progress", 60, narrative="已精简资料")
    assert progress(bureau, c1) == ("not_started", 0.0)  # not before approval
    with pytest.raises(Forbidden, match="直属上级"):
        review(bureau, "bj_office", rid)
    assert review(bureau, "city_office", rid) == "approved"
    assert progress(bureau, c1) == ("in_progress", 60.0)
    assert progress(bureau, city) == ("in_progress", 30.0)  # (60 + 0) / 2
    assert progress(bureau, bj) == ("in_progress", 30.0)
    rid2, _ = report(bureau, "county2_reporter", c2, "done", 100)
    review(bureau, "city_office", rid2)
    assert progress(bureau, city) == ("in_progress", 80.0)
    rid3, _ = report(bureau, "county_reporter", c1, "done", 100, period="2022-04")  # an older period
    review(bureau, "city_office", rid3)
    assert progress(bureau, c1) == ("in_progress", 60.0)  # the newest approved period counts
    with pytest.raises(LedgerInvalid, match="已审核通过"):
        report(bureau, "county_reporter", c1, "done", 100, expected_version=version + 1)


def test_all_children_done_is_done(bureau):
    bj, city, c1, c2 = chain(bureau)
    for who, aid in (("county_reporter", c1), ("county2_reporter", c2)):
        rid, _ = report(bureau, who, aid, "done", 100)
        review(bureau, "city_office", rid)
    assert progress(bureau, city) == ("done", 100.0) and progress(bureau, bj) == ("done", 100.0)


def test_return_and_resubmit(bureau):
    bj, city, c1, _ = chain(bureau)
    rid, version = report(bureau, "county_reporter", c1, "in_progress", 40)
    with pytest.raises(LedgerInvalid, match="退回意见"):
        review(bureau, "city_office", rid, approve=False)
    assert review(bureau, "city_office", rid, approve=False, comment="请补充佐证材料") == "returned"
    with pytest.raises(LedgerInvalid, match="待审核"):
        review(bureau, "city_office", rid)
    with pytest.raises(StaleReport):
        report(bureau, "county_reporter", c1, "in_progress", 45)  # no version: would overwrite blindly
    with bureau.read() as s:
        current = s.get(ProgressReport, rid).version
    rid_again, new_version = report(bureau, "county_reporter", c1, "in_progress", 45, expected_version=current)
    assert rid_again == rid and new_version == current + 1
    assert review(bureau, "city_office", rid) == "approved"
    assert progress(bureau, c1) == ("in_progress", 45.0)
    with bureau.read() as s:
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "report").order_by(AuditEntry.seq)))
    assert actions == ["ledger.report.submitted", "ledger.report.returned", "ledger.report.resubmitted",
                       "ledger.report.approved"]


def test_two_officials_saving_the_same_report(bureau):
    *_, c1, _ = chain(bureau)
    rid, version = report(bureau, "county_reporter", c1, "in_progress", 10)
    review(bureau, "city_office", rid, approve=False, comment="数字有误")
    # Both read version `v`; the first save wins, the second is refused instead of overwriting it.
    with bureau.read() as s:
        v = s.get(ProgressReport, rid).version
    report(bureau, "county_reporter", c1, "in_progress", 20, expected_version=v, narrative="first")
    with pytest.raises(StaleReport, match="请刷新"):
        report(bureau, "county_reporter", c1, "in_progress", 30, expected_version=v, narrative="second")
    with bureau.read() as s:
        assert s.get(ProgressReport, rid).narrative == "first"


def test_report_refusals(bureau):
    bj, city, c1, _ = chain(bureau)
    with pytest.raises(Forbidden, match="本单位"):
        report(bureau, "bj_reporter", c1, "in_progress", 10)
    with pytest.raises(Forbidden):
        report(bureau, "viewer", bj, "in_progress", 10)
    with pytest.raises(Forbidden):
        report(bureau, "city2_reporter", c1, "in_progress", 10)
    for status, percent, message in (("done", 90, "100"), ("not_started", 5, "0"), ("in_progress", 120, "0–100"),
                                     ("finished", 50, "状态"), ("ongoing", 50, "长期坚持")):
        with pytest.raises(LedgerInvalid, match=message):
            report(bureau, "county_reporter", c1, status, percent)
    with pytest.raises(LedgerInvalid, match="尚未开始"):
        report(bureau, "county_reporter", c1, "in_progress", 10, period="2022-06")
    with pytest.raises(LedgerInvalid, match="格式"):
        report(bureau, "county_reporter", c1, "in_progress", 10, period="2022-Q2")
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(ProgressReport)) == 0


def test_indicators(bureau):
    with bureau.write() as s:
        indicator = ledger.define_indicator(session=s, actor=person(s, "nat_office"), measure_no=54,
                                            name="出口退税平均办理时间", unit_label="个工作日", baseline=7, target=6,
                                            direction="down")
        iid = indicator.id
        assert indicator.met(5.5) and indicator.met(6) and not indicator.met(6.5)
    with pytest.raises(Forbidden):
        with bureau.write() as s:
            ledger.define_indicator(session=s, actor=person(s, "bj_office"), measure_no=54, name="x", target=1,
                                    direction="up")
    *_, c1, c2 = chain(bureau)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 50, values={iid: 5.8})
    with bureau.read() as s:
        assert [(v.indicator.name, v.value) for v in s.get(ProgressReport, rid).values] == [("出口退税平均办理时间", 5.8)]
    with pytest.raises(LedgerInvalid, match="不属于第 54 条"):
        report(bureau, "county2_reporter", c2, "in_progress", 50, values={iid + 99: 1})


def test_review_queue(bureau):
    *_, c1, c2 = chain(bureau)
    first, _ = report(bureau, "county_reporter", c1, "in_progress", 10)
    second, _ = report(bureau, "county2_reporter", c2, "in_progress", 20)
    with bureau.read() as s:
        queue = reviews.review_queue(session=s, actor=person(s, "city_office"))
        assert [r.id for r in queue.items] == [first, second]
        assert reviews.review_queue(session=s, actor=person(s, "bj_office")).total == 0
    review(bureau, "city_office", first)
    with bureau.read() as s:
        assert [r.id for r in reviews.review_queue(session=s, actor=person(s, "city_office")).items] == [second]


# --- lights at the decision (issue 14, item 3) and narrative-only reports on rolled-up assignments (item 4) ---


def lights(db, *ids):
    with db.read() as s:
        return [(s.get(Assignment, i).light, s.get(Assignment, i).light_reason) for i in ids]


def started_chain(db):
    """Measure 54 down to 甲市一县, running since January: by TODAY (17 May) the county is behind and April's
    report is overdue."""
    start = date(2022, 1, 1)
    bj = assign(db, "nat_office", 54, "110000", start_date=start)
    city = assign(db, "bj_office", 54, "110100", deadline=date(2022, 10, 31), start_date=start)
    county = assign(db, "city_office", 54, "110101", deadline=date(2022, 9, 30), start_date=start)
    return bj, city, county


def unchanged_by_the_scan(db) -> bool:
    with db.write() as s:
        return warnings.scan(session=s, today=TODAY, rules=warnings.WarningRules()).changed == 0


def test_lights_are_set_when_assigned(bureau):
    bj, city, county = started_chain(bureau)
    assert lights(bureau, county) == [("red", "missing_report_long,behind")]
    assert unchanged_by_the_scan(bureau)  # the same rule as the hourly scan, not a second one


def test_approval_relights_the_assignment_and_its_ancestors(bureau):
    bj, city, county = started_chain(bureau)
    rid, _ = report(bureau, "county_reporter", county, "in_progress", 85, period="2022-04")
    assert lights(bureau, county) == [("red", "missing_report_long,behind")]  # a submission decides nothing
    review(bureau, "city_office", rid)
    assert lights(bureau, county, city, bj) == [
        ("green", ""), ("red", "missing_report_long"), ("red", "missing_report_long")]  # no longer behind
    assert unchanged_by_the_scan(bureau)


def test_return_relights_too(bureau):
    bj, city, county = started_chain(bureau)
    rid, _ = report(bureau, "county_reporter", county, "in_progress", 10, period="2022-04")
    review(bureau, "city_office", rid, approve=False, comment="请补充佐证")
    assert lights(bureau, county) == [("yellow", "behind")]  # April is reported (sent back, not missing)
    assert unchanged_by_the_scan(bureau)


def test_breakdown_relights_the_new_children_and_the_chain(bureau):
    bj = assign(bureau, "nat_office", 54, "110000", start_date=date(2022, 1, 1))
    rid, _ = report(bureau, "bj_reporter", bj, "in_progress", 80, period="2022-04")
    review(bureau, "nat_office", rid)
    assert lights(bureau, bj) == [("green", "")]
    with bureau.write() as s:
        ledger.break_down(session=s, actor=person(s, "bj_office"), assignment_id=bj, unit_codes=["110100"],
                          terms=Terms(deadline=date(2022, 6, 30), start_date=date(2022, 1, 1)), today=TODAY)
    # 北京's progress is now its new child's (0 %), far behind its straight line: yellow at once.
    assert progress(bureau, bj) == ("not_started", 0.0)
    assert lights(bureau, bj)[0] == ("yellow", "behind")
    assert unchanged_by_the_scan(bureau)


def test_no_percent_report_on_a_rolled_up_assignment(bureau):
    bj, city, c1, c2 = chain(bureau)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 60)
    review(bureau, "city_office", rid)
    for status, percent in (("done", 100), ("in_progress", None), (None, 30)):
        with pytest.raises(LedgerInvalid, match="已分解下达.*不能填报状态和完成百分比") as refused:
            report(bureau, "city_reporter", city, status, percent, narrative="全部完成")
        assert refused.value.status == 400
    with pytest.raises(LedgerInvalid, match="请填写情况说明"):
        report(bureau, "city_reporter", city, None, None)
    with bureau.read() as s:
        assert s.scalar(select(func.count()).select_from(ProgressReport)
                        .where(ProgressReport.assignment_id == city)) == 0
    # A narrative only: it keeps the rolled-up figures of the day; its approval leaves the progress as it is.
    rid, _ = report(bureau, "city_reporter", city, None, None, narrative="两县推进中")
    with bureau.read() as s:
        r = s.get(ProgressReport, rid)
        assert (r.status, r.percent, r.narrative) == ("in_progress", 30.0, "两县推进中")
    assert review(bureau, "bj_office", rid) == "approved"
    assert progress(bureau, city) == ("in_progress", 30.0)
    with pytest.raises(LedgerInvalid, match="请选择状态"):
        report(bureau, "county2_reporter", c2, None, None, narrative="叶子任务要报进度")


def test_a_changed_deadline_relights_at_once(bureau):
    bj = assign(bureau, "nat_office", 54, "110000")  # started TODAY, due at the end of the year: nothing to warn of
    assert lights(bureau, bj) == [("green", "")]

    def change(who, aid, day):
        with bureau.write() as s:
            ledger.change_deadline(session=s, actor=person(s, who), assignment_id=aid, deadline=day, today=TODAY)

    with pytest.raises(Forbidden):
        change("bj_office", bj, date(2022, 5, 20))  # the holding unit does not move its own deadline
    change("nat_office", bj, date(2022, 5, 20))
    assert lights(bureau, bj) == [("yellow", "due_soon")]
    assert unchanged_by_the_scan(bureau)
    city = assign(bureau, "bj_office", 54, "110100", deadline=date(2022, 5, 20))
    with pytest.raises(LedgerInvalid, match="下级任务的时限最晚为 2022-05-20"):
        change("nat_office", bj, date(2022, 5, 19))
    with pytest.raises(LedgerInvalid, match="不能晚于上级任务的时限 2022-05-20"):
        change("bj_office", city, date(2022, 6, 30))
    with bureau.read() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "ledger.assignment.changed")).one()
        assert '"deadline":"2022-12-31"' in entry.before and '"deadline":"2022-05-20"' in entry.after
