"""Bulk reports from the unit's own exported ledger, filled in: all rows or none, each problem with its row."""

from __future__ import annotations

from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.ledger import bulk, exports
from chunfeng.ledger import services as ledger
from chunfeng.ledger.errors import LedgerInvalid
from chunfeng.ledger.models import ProgressReport
from chunfeng.ledger.services import Terms
from chunfeng.org.services import find_unit
from tests.conftest import TODAY, person


@pytest.fixture
def exported(bureau, tmp_path):
    """Measures 54 and 55 held by 甲市 and its first county; 甲市's reporter exports the 甲市 subtree."""
    with bureau.write() as s:
        for m in (54, 55):
            ledger.assign(session=s, actor=person(s, "bj_office"), measure_no=m, unit_code="110100",
                          terms=Terms(deadline=date(2022, 12, 31), start_date=date(2022, 3, 1)), today=TODAY)
            ledger.assign(session=s, actor=person(s, "city_office"), measure_no=m, unit_code="110101",
                          terms=Terms(deadline=date(2022, 12, 31), start_date=date(2022, 3, 1)), today=TODAY)
    path = tmp_path / "ledger.xlsx"
    with bureau.read() as s:
        exports.export_ledger(session=s, actor=person(s, "city_reporter"), unit=find_unit(session=s, code="110100"),
                              path=path)
    return path


def fill(path, changes: dict[tuple[str, int], dict[str, object]]):
    book = load_workbook(path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        key = (row[header.index("单位代码")].value, row[header.index("序号")].value)
        for column, value in changes.get(key, {}).items():
            row[header.index(column)].value = value
    book.save(path)


def submit(db, who, path, **kw):
    with db.write() as s:
        return bulk.import_reports(session=s, actor=person(s, who), path=path, today=TODAY, **kw)


def reports(db):
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(ProgressReport))


def test_filled_rows_become_reports(bureau, exported):
    # 甲市's measures are broken down to its county: its rows are narratives only, with the exported rolled-up
    # figures left as they are or blanked.
    fill(exported, {("110100", 54): {"进展情况": "已部署"},
                    ("110100", 55): {"状态": "", "完成百分比": "", "进展情况": "已上线"},
                    ("110101", 54): {"状态": "推进中", "完成百分比": 10, "进展情况": "县局的行"}})
    result = submit(bureau, "city_reporter", exported)
    assert (result.submitted, result.skipped_other_units) == (2, 2)
    with bureau.read() as s:
        rows = {(r.assignment.measure_no, r.period, r.status, r.percent) for r in s.scalars(select(ProgressReport))}
    assert rows == {(54, "2022-04", "not_started", 0.0), (55, "2022-04", "not_started", 0.0)}
    fill(exported, {("110100", 54): {"进展情况": "已部署并试点"}})
    assert submit(bureau, "city_reporter", exported).submitted == 2  # replaces the unit's unreviewed reports
    assert reports(bureau) == 2
    fill(exported, {("110100", 54): {"完成百分比": 45}})
    with pytest.raises(LedgerInvalid, match="第 2 行.*已分解下达.*不能填报状态和完成百分比"):
        submit(bureau, "city_reporter", exported)


def test_leaf_rows_report_status_and_percent(bureau, exported):
    fill(exported, {("110101", 54): {"状态": "推进中", "完成百分比": 40, "进展情况": "已部署"}})
    assert submit(bureau, "county_reporter", exported).submitted == 1
    with bureau.read() as s:
        assert [(r.status, r.percent) for r in s.scalars(select(ProgressReport))] == [("in_progress", 40.0)]


def test_any_bad_row_refuses_the_file(bureau, exported):
    fill(exported, {("110100", 54): {"状态": "推进中", "完成百分比": "四十", "进展情况": "x"},
                    ("110100", 55): {"状态": "差不多", "完成百分比": 50, "进展情况": "y"}})
    with pytest.raises(LedgerInvalid) as err:
        submit(bureau, "city_reporter", exported)
    message = str(err.value)
    assert "未提交任何报告" in message and "完成百分比“四十”不是数字" in message and "状态“差不多”无效" in message
    assert "第 2 行" in message and "第 4 行" in message
    assert reports(bureau) == 0
    fill(exported, {("110100", 54): {"状态": "已完成", "完成百分比": 90, "进展情况": "x"},
                    ("110100", 55): {"状态": "推进中", "完成百分比": 50, "进展情况": "y"}})
    with pytest.raises(LedgerInvalid, match="已分解下达"):  # a rolled-up assignment takes no percent
        submit(bureau, "city_reporter", exported)
    assert reports(bureau) == 0  # the good row 55 was not kept either


def test_nothing_filled_and_wrong_files(bureau, exported, tmp_path):
    with pytest.raises(LedgerInvalid, match="没有找到本单位"):
        submit(bureau, "city_reporter", exported)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(LedgerInvalid, match="表头缺少列"):
        submit(bureau, "city_reporter", other)
    fill(exported, {("110100", 54): {"状态": "推进中", "完成百分比": 40, "进展情况": "x"}})
    with pytest.raises(LedgerInvalid, match="没有找到本单位"):
        submit(bureau, "county2_reporter", exported)  # 110102's file has no rows of its own
