"""Voluntary evaluation of individual businesses (measure 115) on a real database and a real DuckDB store: who may
apply and for whom, the evaluation's score, level and deductions as a new register year, each step audited, and the
result reaching push rules through `credit_level` (validated like every other field)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from chunfeng.credit import evaluation, incentives
from chunfeng.credit.errors import CreditInvalid, CreditNotFound
from chunfeng.credit.models import CreditEvaluation, CreditRating
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry
from chunfeng.push import matching, rules, store
from tests.conftest import person
from tests.credit.test_services import code

TODAY = date(2026, 12, 7)
SHOP, SMALL, FIRM, OTHER, PROMPT = code(11), code(12), code(13), code(14), code(15)
REGISTRY = ("credit_code,name,region,industry,vat_type,size,headcount,total_assets,annual_revenue,monthly_sales,"
            "taxable_income,rd_expense,vat_credit,credit,high_tech,tech_sme,exporter,manufacturing,individual_business,"
            "registered\n")


def _row(credit_code: str, name: str, vat_type: str, individual: bool, region: str = "110101",
         registered: str = "2020-03-01", credit: str = "C") -> str:
    return (f"{credit_code},{name},{region},F5211,{vat_type},微型,3,500000,1200000,100000,0,0,20000,{credit},"
            f"false,false,false,false,{str(individual).lower()},{registered}\n")


def write_extract(directory):
    """A four-table extract: an individual business on the general method with three late returns in 2025, a
    small-scale one, an enterprise, a business registered mid-2025, and an A-level enterprise filing on time."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "registry.csv").write_text(
        REGISTRY + _row(SHOP, "张三便利店", "一般纳税人", True) + _row(SMALL, "李四小吃店", "小规模", True)
        + _row(FIRM, "甲贸易有限公司", "一般纳税人", False)
        + _row(OTHER, "王五建材店", "一般纳税人", True, registered="2025-06-01")
        + _row(PROMPT, "乙科技有限公司", "一般纳税人", False, credit="A"), encoding="utf-8")
    (directory / "contacts.csv").write_text("credit_code,role,person,channel,address,opted_out\n"
                                            f"{SHOP},法定代表人,张三,inapp,zhangsan,false\n", encoding="utf-8")
    (directory / "claims.csv").write_text(f"credit_code,policy,period,amount\n{FIRM},XGM-VAT-2021,2025-06,100\n",
                                          encoding="utf-8")
    filings = [("2025-03", "2025-05-20"), ("2025-04", "2025-06-25"), ("2025-05", "2025-07-25"), ("2025-06", "2025-07-10"),
               ("2024-12", "2025-03-30")]  # the last is 2024's return: not in the 2025 evaluation
    (directory / "filings.csv").write_text(
        "credit_code,return_type,period,filed_on\n" + "".join(f"{SHOP},增值税,{p},{d}\n" for p, d in filings)
        + f"{PROMPT},增值税,2025-06,2025-07-10\n",
        encoding="utf-8")
    return directory


@pytest.fixture
def taxpayers(tmp_path):
    path = tmp_path / "store" / "taxpayers.duckdb"
    store.import_extract(write_extract(tmp_path / "extract"), path, workers=1)
    return path


@pytest.fixture
def people(bureau, add_users):
    add_users({"county_officer": ("110101", ["service_officer"]), "county2_officer": ("110102", ["service_officer"]),
               "shop": ("110101", ["taxpayer"]), "viewer2": ("110101", ["viewer"])})
    with bureau.write() as s:
        person(s, "shop").taxpayer_code = SHOP
    return bureau


def apply(db, username, taxpayers, credit_code, year=2025):
    with db.write() as s:
        return evaluation.apply(session=s, actor=person(s, username), store=taxpayers, credit_code=credit_code,
                                year=year, today=TODAY).id


def run(db, username, taxpayers, evaluation_id):
    with db.write() as s:
        e = evaluation.evaluate(session=s, actor=person(s, username), store=taxpayers, evaluation_id=evaluation_id,
                                today=TODAY)
        return e.state, e.reason


def refund_rule_count(taxpayers) -> int:
    with store.connect_store(taxpayers) as conn:
        total, rows = matching.taxpayers(matching.DuckDBEngine(conn), policy_id="LDTS-2022", period=None,
                                         rule_text='individual_business and credit_level in ("A", "B")')
    return total


def test_an_individual_business_applies_and_the_evaluation_writes_its_year(people, taxpayers):
    db = people
    assert refund_rule_count(taxpayers) == 0  # the extract says C: no refund
    eid = apply(db, "shop", taxpayers, SHOP)
    assert run(db, "county_officer", taxpayers, eid) == ("evaluated", "")
    with db.read() as s:
        rating = s.scalar(select(CreditRating).where(CreditRating.credit_code == SHOP))
        # Three returns of 2025 filed after their deadline (5 points each, a sample awaiting review); 2024's is not counted.
        assert (rating.year, rating.score, rating.level) == (2025, 85.0, "B")
        assert rating.deductions == {"未按规定期限纳税申报": 15.0} and rating.unit.code == "110101"
        actions = [a.action for a in s.scalars(select(AuditEntry).where(AuditEntry.object_type == "credit_evaluation")
                                               .order_by(AuditEntry.id))]
        assert actions == ["credit.evaluation.applied", "credit.evaluation.evaluated"]
        evaluation.publish_levels(session=s, store=taxpayers)
    # The register's B now reaches a refund rule written on credit_level.
    assert refund_rule_count(taxpayers) == 1
    # Applying again for the same year is refused: it has a result.
    with pytest.raises(CreditInvalid, match="已有评价结果"):
        apply(db, "shop", taxpayers, SHOP)
    with pytest.raises(CreditInvalid, match="已评价"):
        run(db, "county_officer", taxpayers, eid)


def test_who_may_apply_and_for_whom(people, taxpayers):
    db = people
    with pytest.raises(CreditNotFound, match="只能为本户"):
        apply(db, "shop", taxpayers, SMALL)
    with pytest.raises(CreditInvalid, match="小规模"):
        apply(db, "county_officer", taxpayers, SMALL)
    with pytest.raises(CreditInvalid, match="仅适用于个体工商户"):
        apply(db, "county_officer", taxpayers, FIRM)
    with pytest.raises(CreditInvalid, match="第十五条"):
        apply(db, "county_officer", taxpayers, OTHER)
    with pytest.raises(CreditInvalid, match="当年尚未结束"):
        apply(db, "county_officer", taxpayers, SHOP, year=2026)
    with pytest.raises(CreditNotFound, match="登记信息中没有"):
        apply(db, "county_officer", taxpayers, code(99))
    with pytest.raises(Forbidden):  # the neighbouring county's official: not its taxpayer
        apply(db, "county2_officer", taxpayers, SHOP)
    with pytest.raises(Forbidden):  # a viewer may not apply for anyone
        apply(db, "viewer2", taxpayers, SHOP)
    eid = apply(db, "county_officer", taxpayers, SHOP)
    with pytest.raises(CreditInvalid, match="办理中"):
        apply(db, "shop", taxpayers, SHOP)
    with pytest.raises(CreditNotFound):  # outside its subtree the application does not exist
        run(db, "county2_officer", taxpayers, eid)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 0
        assert s.scalar(select(func.count()).select_from(CreditEvaluation)) == 1


def test_a_year_without_returns_is_refused_with_its_reason(people, taxpayers):
    db = people
    eid = apply(db, "county_officer", taxpayers, SHOP, year=2023)
    state, reason = run(db, "county_officer", taxpayers, eid)
    assert state == "refused" and "没有申报记录" in reason
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 0
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.object_type == "credit_evaluation")
                        .order_by(AuditEntry.id.desc())) == "credit.evaluation.refused"


def test_credit_level_is_a_checked_rule_field():
    assert rules.check('credit_level in ("A", "B")').fields == ["credit_level"]
    assert rules.check("credit_year >= 2025").fields == ["credit_year"]
    with pytest.raises(rules.RuleError, match="没有取值“E”"):
        rules.check('credit_level == "E"')
    with pytest.raises(rules.RuleError, match="未知字段"):
        rules.check('credit_levle in ("A")')


def test_without_a_levels_file_the_extracts_level_stands(taxpayers):
    with store.connect_store(taxpayers) as conn:
        assert set(conn.execute("SELECT DISTINCT credit_level, credit_year FROM registry").fetchall()) == {("C", 0), ("A", 0)}


def test_each_level_says_what_it_earns_and_what_awaits_review():
    data = incentives.data()
    for level, entry in data["levels"].items():
        assert entry["items"] or entry["note"], level
        for item in entry["items"]:
            assert item["source"] in data["sources"] and item["review"] is True
    assert "待复核" in incentives.answer("A") and "一次可领取不超过3个月" in incentives.answer("A")
    assert "尚未能" in incentives.answer("M")
