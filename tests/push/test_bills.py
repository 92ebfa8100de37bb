"""Dividend bills for a unit: its region's taxpayers only, whatever its code holds (the attack of issue 11)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from chunfeng.org import services as org
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import Unit
from chunfeng.push import bills
from chunfeng.push.models import PushMessage

HOSTILE = "11' OR '1'='1"


def _messages(db, campaign_id: int) -> tuple[int, int]:
    with db.read() as s:
        rows = s.execute(select(func.count(), func.count(PushMessage.credit_code.distinct()))
                         .where(PushMessage.campaign_id == campaign_id)).one()
    return rows[0], rows[1]


def _region_count(duck, prefix: str) -> int:
    return duck.execute(f"SELECT count(DISTINCT r.credit_code) FROM registry r JOIN claims c USING (credit_code) "
                        f"JOIN contacts k USING (credit_code) WHERE {bills.SMALL} AND substr(c.period, 1, 4) = '2022' "
                        "AND k.channel = 'inapp' AND NOT k.opted_out AND k.role IN ('法定代表人', '财务负责人') "
                        "AND starts_with(r.region, $p)", {"p": prefix}).fetchall()[0][0]


def test_a_unit_code_that_reads_as_sql_is_refused_at_import(db, system, tmp_path):
    csv = tmp_path / "units.csv"
    csv.write_text("代码,上级代码,名称,层级\n110100,110000,北京测试市税务局,市级\n"
                   f"\"{HOSTILE}\",110000,注入局,市级\n110102;DROP,110000,分号局,市级\n1101 03,110000,空格局,市级\n"
                   f"{'1' * 33},110000,长代码局,市级\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        with db.write() as s:
            org.import_units(session=s, actor=system, path=csv)
    for row in (3, 4, 5, 6):
        assert f"第 {row} 行:代码" in str(err.value) and "只能由字母、数字" in str(err.value)
    assert "第 2 行" not in str(err.value)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Unit).where(Unit.code.in_(["110100", HOSTILE]))) == 0


def test_bills_of_a_unit_with_a_hostile_code_stay_in_its_region(db, system, policies, duck):
    """Such a unit imported before codes were checked: its code goes to DuckDB as a bound value, so it matches
    no region (the attack sent 11,693 bills to 9,900 taxpayers nationwide)."""
    with db.write() as s:
        beijing = org.find_unit(session=s, code="110000")
        s.execute(insert(Unit).values(code=HOSTILE, name="注入局", level="municipal", parent_id=beijing.id,
                                      path=beijing.path + HOSTILE + "/", sort=0))  # the row as an old import left it
    with db.write() as s:
        hostile = bills.push_bills(duck, session=s, actor=system, unit_code=HOSTILE, year=2022).id
        beijing = bills.push_bills(duck, session=s, actor=system, unit_code="110000", year=2022).id
    assert _messages(db, hostile) == (0, 0)
    messages, taxpayers = _messages(db, beijing)
    assert taxpayers == _region_count(duck, "11") > 0 and messages >= taxpayers
    assert _region_count(duck, "") > 3 * taxpayers  # what the injected condition reached before


def test_the_model_refuses_a_hostile_code_on_any_other_path(db):
    with pytest.raises(ValueError, match="letters, digits"):
        Unit(code=HOSTILE, name="x", level="municipal", path="x/")
