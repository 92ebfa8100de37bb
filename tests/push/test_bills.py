"""Dividend bills for a unit: its region's taxpayers only, whatever its code holds (the attack of issue 11)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, insert, select

from chunfeng.org import services as org
from chunfeng.org import unit_import
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import Unit
from chunfeng.push import bills, store
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
            unit_import.import_units(session=s, actor=system, path=csv)
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


def _taxpayer_with(duck, *policies: str) -> str:
    """A Beijing small or micro enterprise with a 2022 claim under each of `policies` and a bill recipient."""
    having = " AND ".join(f"count(*) FILTER (c.policy = '{p}') > 0" for p in policies)
    return duck.execute(f"""
        SELECT r.credit_code FROM registry r JOIN claims c USING (credit_code)
        WHERE {bills.SMALL} AND r.region LIKE '11%' AND c.period LIKE '2022%' AND EXISTS (
            SELECT 1 FROM contacts k WHERE k.credit_code = r.credit_code AND k.channel = 'inapp' AND NOT k.opted_out
            AND k.role IN ('法定代表人', '财务负责人'))
        GROUP BY r.credit_code HAVING {having} ORDER BY r.credit_code LIMIT 1""").fetchall()[0][0]


def _claims(duck, code: str) -> dict[str, Decimal]:
    return {p: Decimal(a) for p, a in duck.execute("SELECT policy, sum(amount) FROM claims WHERE credit_code = ? "
                                                   "AND period LIKE '2022%' GROUP BY policy", [code]).fetchall()}


def test_the_bill_sums_reductions_only_and_shows_deferrals_apart(db, policies, duck):
    """Before: 为您减免 added the manufacturing deferral (tax still owed) to the reductions."""
    code = _taxpayer_with(duck, "ZZY-HJ-2022")
    claimed = _claims(duck, code)
    with db.read() as s:
        b = bills.bill(duck, s, credit_code=code, year=2022)
    assert [line["policy"] for line in b.deferrals] == ["ZZY-HJ-2022"]
    assert b.deferred_total == claimed["ZZY-HJ-2022"] > 0
    assert b.total == sum(a for p, a in claimed.items() if p != "ZZY-HJ-2022") < sum(claimed.values())
    html = bills.render_html(b)
    assert "延缓缴纳(不计入减免)" in html and "到期仍需缴纳" in html
    assert f'id="bill-total">{b.total:,.2f}<' in html


def test_a_timing_deduction_is_not_a_saving(db, policies, duck):
    code = duck.execute("SELECT credit_code FROM claims c JOIN registry r USING (credit_code) "
                        f"WHERE c.policy = 'SBQJ-2021' AND c.period = '2021' AND {bills.SMALL} LIMIT 1").fetchall()[0][0]
    with db.read() as s:
        b = bills.bill(duck, s, credit_code=code, year=2021)
    assert [line["policy"] for line in b.timing] == ["SBQJ-2021"]
    assert "SBQJ-2021" not in {line["policy"] for line in b.reductions}
    assert "应纳税总额不变" in bills.render_html(b)


def test_the_bill_names_its_issuer_and_the_size_concept_that_selects_it(db, policies, duck):
    code = _taxpayer_with(duck, "LSLF-CXS-2022")
    with db.read() as s:
        b = bills.bill(duck, s, credit_code=code, year=2022)
        region_unit = org.unit_for_region(session=s, region=b.region)
    assert b.issuer == region_unit.name and b.issuer.startswith("国家税务总局北京")
    html = bills.render_html(b)
    assert "春风 Chunfeng 生成" not in html and f"出具单位:{b.issuer}" in html
    # The recipients are chosen by the size class, and the bill says so rather than calling them 小型微利企业.
    assert "按中小企业划型标准" in html and "“小型微利企业”是企业所得税上的概念" in html
    large = duck.execute("SELECT credit_code FROM registry WHERE size = '中型' AND NOT individual_business "
                         "LIMIT 1").fetchall()[0][0]
    with db.read() as s, pytest.raises(bills.PushNotFound, match="中小企业划型标准") as refused:
        bills.bill(duck, s, credit_code=large, year=2022)
    assert "小型微利企业" not in str(refused.value)


def test_a_claim_outside_its_policys_validity_is_left_out_with_a_note(db, system, policies, extract_dir, tmp_path):
    """XWQY-CIT-2019 ended on 2021-12-31: a 2022 claim under it is shown as left out, never summed, on the bill
    and in the bill message alike."""
    source = tmp_path / "extract"
    shutil.copytree(extract_dir, source)
    with store.connect_store(store_file_for(extract_dir, tmp_path / "before.duckdb")) as before:
        code = _taxpayer_with(before, "LSLF-CXS-2022")
        claimed = _claims(before, code)
    claims = pq.read_table(source / "claims.parquet")
    extra = pa.table({"credit_code": [code], "policy": ["XWQY-CIT-2019"], "period": ["2022"],
                      "amount": pa.array([Decimal("12345.67")], claims.schema.field("amount").type)},
                     schema=claims.schema)
    pq.write_table(pa.concat_tables([claims, extra]), source / "claims.parquet")
    with store.connect_store(store_file_for(source, tmp_path / "after.duckdb")) as duck:
        with db.read() as s:
            b = bills.bill(duck, s, credit_code=code, year=2022)
        assert "XWQY-CIT-2019" not in {line["policy"] for line in b.lines}
        [note] = b.left_out
        assert note["policy"] == "XWQY-CIT-2019" and note["amount"] == Decimal("12345.67")
        assert "2019-01-01 至 2021-12-31" in note["reason"] and "未计入" in note["reason"]
        assert b.total == sum(a for p, a in claimed.items() if p not in ("ZZY-HJ-2022",))
        assert "未计入的记录" in bills.render_html(b)
        with db.write() as s:
            campaign = bills.push_bills(duck, session=s, actor=system, unit_code="110000", year=2022).id
    with db.read() as s:
        bodies = list(s.scalars(select(PushMessage.body).where(PushMessage.campaign_id == campaign,
                                                               PushMessage.credit_code == code)))
    assert bodies and all(f"减免税费合计 {b.total:,.2f} 元" in body for body in bodies)


def store_file_for(extract: Path, path: Path) -> Path:
    store.import_extract(extract, path)
    return path
