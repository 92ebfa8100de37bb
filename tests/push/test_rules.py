"""The rule language: parsing, type errors with positions, SQL for three dialects, and the SQL and the
record-by-record evaluator agreeing on random taxpayers (DuckDB runs the SQL)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunfeng.push import rules
from chunfeng.push.schema import CREDIT_RATINGS, REGISTRY, SIZES, VAT_TYPES


@pytest.mark.parametrize("text, position, words", [
    ("monthly_sale <= 1", 0, ["未知字段", "monthly_sales"]),
    ('vat_type == "小规模纳税人"', 12, ["没有取值", "一般纳税人、小规模"]),
    ('headcount <= "a"', 13, ["数值", "文字"]),
    ("headcount", 0, ["真假"]),
    ("headcount = 1", 10, ["=="]),
    ("headcount <= 1 and", 18, ["规则结尾"]),
    ('industry in ("C13".."C4")', 13, ["同样长"]),
    ('registered > "2020-13-01"', 13, ["日期"]),
    ('credit in ("A".."B")', 11, ["区间"]),
    ("headcount <= 10 headcount", 16, ["多余"]),
    ("high_tech > true", 12, ["真假"]),
    ("headcount <= 1 and monthly_sales", 19, ["真假"]),
    ("(headcount <= 1", 15, ["“)”"]),
    ("headcount <= 3 # 2", 15, ["无法识别", "#"]),
    ("", 0, ["空"]),
    ('industry == "c13"', 12, ["大写字母"]),
    ("headcount in (300..100)", 14, ["下限大于上限"]),
])
def test_errors_name_the_fault_and_where_it_is(text, position, words):
    with pytest.raises(rules.RuleError) as caught:
        rules.parse(text)
    assert caught.value.position == position, str(caught.value)
    for word in words:
        assert word in str(caught.value)
    assert caught.value.pointer().splitlines()[1].endswith("^")


def test_numbers_with_chinese_units_and_the_three_dialects():
    rule = rules.parse('vat_type == "小规模" and monthly_sales <= 10万 and total_assets < 0.5亿')
    assert rule.fields == ["vat_type", "monthly_sales", "total_assets"]
    assert "100000" in rule.sql("duckdb") and "50000000" in rule.sql("duckdb")
    assert '"vat_type"' in rule.sql("postgres") and "`vat_type`" in rule.sql("spark")


def test_codes_match_by_prefix_and_ranges_by_their_length():
    rule = rules.parse('industry in ("C13".."C43", "I65") and region == "44"')
    check = rule.predicate()
    base = {"industry": "C1371", "region": "440300"}
    assert check(base)
    assert check({**base, "industry": "C4390"}) and not check({**base, "industry": "D4411"})
    assert check({**base, "industry": "I6510"}) and not check({**base, "industry": "I6410"})
    assert not check({**base, "region": "450100"})


RULES = [
    'vat_type == "小规模" and monthly_sales <= 10万',
    'industry in ("C13".."C43") and credit in ("A", "B")',
    "taxable_income <= 300万 and headcount <= 300 and total_assets <= 5000万 and not individual_business",
    'not (size in ("大型", "中型")) or high_tech',
    'registered >= "2015-06-01" and rd_expense / 12 > 1000',
    "annual_revenue - taxable_income * 2 >= 0 and -headcount < -5",
    'region != "44" and industry != "C"',
    'credit not in ("C", "D") and (exporter or manufacturing) and vat_credit > 0',
]

records = st.fixed_dictionaries({
    "credit_code": st.just("91110000000000000X"), "name": st.just("测试"),
    "region": st.sampled_from(["110101", "440300", "445100", "320500"]),
    "industry": st.sampled_from(["C1371", "C4390", "C1299", "C4411", "I6510", "F5123", "D4411"]),
    "vat_type": st.sampled_from(VAT_TYPES), "size": st.sampled_from(SIZES),
    "headcount": st.integers(0, 1000),
    "total_assets": st.sampled_from([0, 1.5, 49_999_999.99, 50_000_000, 50_000_000.01, 8e7]),
    "annual_revenue": st.integers(0, 10**8), "monthly_sales": st.sampled_from([0, 99_999.99, 100_000, 100_000.01, 2e5]),
    "taxable_income": st.sampled_from([0, 2_999_999.99, 3_000_000, 3_000_000.01]),
    "rd_expense": st.sampled_from([0, 12_000, 12_000.01, 5e5]), "vat_credit": st.sampled_from([0, 0.01, 1e4]),
    "credit": st.sampled_from(CREDIT_RATINGS), "high_tech": st.booleans(), "tech_sme": st.booleans(),
    "exporter": st.booleans(), "manufacturing": st.booleans(), "individual_business": st.booleans(),
    "registered": st.dates(date(1995, 1, 1), date(2022, 3, 31)),
})


@pytest.fixture(scope="module")
def conn():
    c = duckdb.connect()
    c.execute("CREATE TABLE registry (" + ", ".join(f"{f.name} {f.duck_type}" for f in REGISTRY.fields) + ")")
    yield c
    c.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(records, min_size=1, max_size=25))
def test_sql_and_python_agree(conn, batch):
    conn.execute("DELETE FROM registry")
    names = REGISTRY.names
    conn.executemany(f"INSERT INTO registry VALUES ({', '.join('?' * len(names))})",
                     [[r[n] for n in names] for r in batch])
    for text in RULES:
        rule = rules.parse(text)
        check = rule.predicate()
        expected = sum(1 for r in batch if check(r))
        got = conn.execute(f"SELECT count(*) FROM registry WHERE {rule.sql('duckdb')}").fetchone()[0]
        assert got == expected, text
