"""Roll-up and xlsx export over a real ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from openpyxl import load_workbook
from sqlalchemy import select, update

from chunfeng.charts import light_bars
from chunfeng.ledger import exports, services, warnings
from chunfeng.ledger.dashboard import by_measure, rollup
from chunfeng.ledger.models import Assignment
from chunfeng.ledger.services import Terms
from chunfeng.org.services import find_unit
from tests.conftest import TODAY, person
from tests.ledger.test_services import chain, report, review


def test_rollup_national_and_drill_down(bureau):
    bj, city, c1, c2 = chain(bureau)
    with bureau.write() as s:
        services.assign(session=s, actor=person(s, "nat_office"), measure_no=1, unit_code="440000",
                        terms=Terms(deadline=date(2022, 6, 30)), today=TODAY)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 60)
    review(bureau, "city_office", rid)
    with bureau.write() as s:
        s.execute(update(Assignment).where(Assignment.id == c2).values(light="red"))
        s.execute(update(Assignment).where(Assignment.id == city).values(light="yellow"))
    with bureau.read() as s:
        nat = person(s, "nat_office")
        rows = {r.unit.code: r for r in rollup(session=s, actor=nat, unit=find_unit(session=s, code="000000"))}
        assert set(rows) == {"110000", "440000"}
        bj_row = rows["110000"]
        assert (bj_row.overall.total, bj_row.overall.red, bj_row.overall.yellow, bj_row.overall.green) == (4, 1, 1, 2)
        assert bj_row.by_category[2].progress == 30.0 and bj_row.by_category[2].held == 1  # measure 54 is category 2
        assert rows["440000"].by_category[1].total == 1 and rows["440000"].overall.progress == 0
        drill = {r.unit.code: r for r in rollup(session=s, actor=nat, unit=find_unit(session=s, code="110100"))}
        assert drill["110101"].overall.progress == 60.0 and drill["110102"].overall.red == 1
        city_view = rollup(session=s, actor=person(s, "city_office"), unit=find_unit(session=s, code="110100"))
        assert len(city_view) == 2



def test_a_not_started_green_is_counted_apart_from_green(bureau):
    """Issue 14 §11: "no warning yet" on a task nobody has started is not "all good": the roll-up, the measure view
    and the chart count it apart from the greens of tasks under way or done."""
    bj, city, c1, c2 = chain(bureau)
    with bureau.write() as s:
        s.execute(update(Assignment).values(light="green", status="in_progress"))
        s.execute(update(Assignment).where(Assignment.id.in_([c1, c2])).values(status="not_started"))
    with bureau.read() as s:
        nat = person(s, "nat_office")
        bj_row = {r.unit.code: r for r in rollup(session=s, actor=nat, unit=find_unit(session=s, code="000000"))}["110000"]
        assert (bj_row.overall.total, bj_row.overall.green, bj_row.overall.idle) == (4, 2, 2)
        cells = [m.cell for _, items in by_measure(session=s, actor=nat, unit=find_unit(session=s, code="110000"))
                 for _, measures in items for m in measures if m.no == 54]
        assert [(c.green, c.idle) for c in cells] == [(2, 2)]  # 北京 and the city under way, two counties not started
    chart = light_bars(["北京"], [{"red": 0, "yellow": 0, "green": 2, "idle": 2}])
    assert chart.count("<rect") == 4 and 'fill="#cbd5e1"' in chart and ">0/0/2/2<" in chart

def test_export_ledger(bureau, tmp_path):
    bj, city, c1, c2 = chain(bureau)
    rid, _ = report(bureau, "county_reporter", c1, "in_progress", 60, narrative="资料压缩三成")
    review(bureau, "city_office", rid)
    with bureau.write() as s:
        warnings.scan(session=s, today=date(2022, 5, 17), rules=warnings.WarningRules())
    path = tmp_path / "ledger.xlsx"
    with bureau.read() as s:
        count = exports.export_ledger(session=s, actor=person(s, "bj_office"), unit=find_unit(session=s, code="110000"),
                                      path=path)
    assert count == 4
    rows = list(load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[0][:11] == ("序号", "任务类别", "任务事项", "具体措施", "牵头单位", "配合单位", "责任人", "完成时限",
                            "进展情况", "状态", "预警")
    by_code = {r[12]: r for r in rows[1:]}
    assert by_code["110101"][0] == 54 and by_code["110101"][2] == "提速退税办理"
    assert by_code["110101"][8] == "资料压缩三成" and by_code["110101"][9] == "推进中" and by_code["110101"][11] == 60
    assert by_code["110000"][4] == "国家税务总局北京市税务局" and by_code["110000"][7] == "2022-12-31"
    assert [r[12] for r in rows[1:]] == ["110000", "110100", "110101", "110102"]


def test_cli_assign_scan_export_dashboard(bureau, tmp_path):
    env = {**os.environ, "CHUNFENG_DATABASE_URL": bureau.url, "COLUMNS": "200"}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "chunfeng", *args], env=env, capture_output=True, text=True)

    done = run("--as", "nat_office", "ledger", "assign", "--level", "province", "--category", "5", "--deadline", "2022-12-31",
               "--start", "2022-04-01")
    assert done.returncode == 0 and "已分配 720 项任务" in done.stdout, done.stderr
    bad = run("--as", "nat_office", "ledger", "assign", "--level", "province", "--measure", "1", "--deadline", "2022-13-01")
    assert bad.returncode != 0 and "2022-13-01" in bad.stderr
    refused = run("--as", "county_reporter", "ledger", "assign", "--unit", "110101", "--measure", "1", "--deadline", "2022-12-31")
    assert refused.returncode == 1 and "无权" in refused.stderr
    scanned = run("ledger", "scan", "--today", "2023-01-05")
    assert scanned.returncode == 0 and "红灯 720" in scanned.stdout
    out = tmp_path / "all.xlsx"
    exported = run("ledger", "export", str(out))
    assert exported.returncode == 0 and "已导出 720 行" in exported.stdout
    shown = run("ledger", "dashboard")
    assert shown.returncode == 0 and "国家税务总局北京市税务局" in shown.stdout
    with bureau.read() as s:
        assert {a.light for a in s.scalars(select(Assignment))} == {"red"}
