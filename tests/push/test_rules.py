"""The rule language: parsing, type errors with positions, SQL for three dialects, and the SQL and the
record-by-record evaluator agreeing on random taxpayers (DuckDB runs the SQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

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


# --- bounds: whatever passes the check runs on every engine (issue 11) -----------------------------

ATTACKS = {  # each gave a 500 (DuckDB binder/overflow errors, RecursionError) and, saved, stalled every campaign
    "38 digits": ("monthly_sales > " + "9" * 38, 16, "超出范围"),
    "140 brackets": ("(" * 140 + "headcount > 1" + ")" * 140, rules.MAX_DEPTH, "嵌套过深"),
    "160 ands": (" and ".join(["headcount > 1"] * 160), rules.MAX_LENGTH, "过长"),
    "60 short ands": (" and ".join(["high_tech"] * 60), 10 + 14 * rules.MAX_TERMS, "过多"),
    "300 nots": ("not " * 300 + "high_tech", rules.MAX_DEPTH * 4, "嵌套过深"),
    "5 decimals": ("monthly_sales > 1.00001", 16, "小数"),
    "year 9999": ('registered < "9999-12-31"', 13, "日期应在"),
    "zero divisor": ("headcount / 0 > 1", 12, "除数"),
    "fields multiplied": (" * ".join(["monthly_sales"] * 8) + " > 1", 94, "超出数值范围"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_rules_are_bounded_with_a_positioned_error(name):
    text, position, word = ATTACKS[name]
    with pytest.raises(rules.RuleError) as caught:
        rules.check(text)
    assert word in caught.value.message and caught.value.position == position, str(caught.value)
    assert caught.value.pointer().splitlines()[1].endswith("^")


def test_arithmetic_runs_in_double_so_a_product_of_amounts_does_not_overflow(conn):
    conn.execute("DELETE FROM registry")
    record = {**{f.name: 0 for f in REGISTRY.fields}, "credit_code": "x", "name": "n", "region": "110000",
              "industry": "C13", "vat_type": VAT_TYPES[0], "size": SIZES[0], "credit": "A",
              "monthly_sales": Decimal("9999999999999999.99"), "registered": date(2020, 1, 1)}
    conn.execute(f"INSERT INTO registry VALUES ({', '.join('?' * len(REGISTRY.names))})",
                 [record[n] for n in REGISTRY.names])
    rule = rules.check("monthly_sales * monthly_sales * monthly_sales * 1000000000000 > 1")  # the attack, now fine
    assert conn.execute(f"SELECT count(*) FROM registry WHERE {rule.sql()}").fetchone()[0] == 1
    assert rules.check("monthly_sales <= 10000000亿 and taxable_income > -0.0001 and headcount * 2 < 100").fields


def test_the_shipped_rules_are_well_inside_the_bounds():
    from chunfeng.push import services

    for policy in services.shipped_policies():
        rules.check(policy["rule"])


_NUMBER_FIELDS = [f.name for f in REGISTRY.fields if f.kind in ("number", "int")]
_numbers = st.one_of(st.integers(-10**40, 10**40).map(str), st.decimals(allow_nan=False, allow_infinity=False).map(str),
                     st.sampled_from(["0", "1.5万", "3亿", "0.00001", "9" * 38, "1e5"]))
_sums = st.recursive(st.one_of(st.sampled_from(_NUMBER_FIELDS), _numbers),
                     lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                         lambda t: f"({t[0]} {t[1]} {t[2]})" if len(t[0]) % 2 else f"{t[0]} {t[1]} {t[2]}"),
                     max_leaves=12)
_conditions = st.one_of(
    st.tuples(_sums, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _sums).map(" ".join),
    st.sampled_from(["high_tech", "not exporter", 'industry in ("C13".."C43")', 'registered > "2020-01-01"',
                     'registered < "0001-01-01"', 'vat_type == "小规模"', 'credit not in ("C", "D")']))
_rules = st.recursive(_conditions, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
    inner.map(lambda r: f"not ({r})"), inner.map(lambda r: f"({r})")), max_leaves=25)
_soup = st.lists(st.sampled_from([*REGISTRY.names[:12], "and", "or", "not", "in", "(", ")", "..", ",", "*", "/", "-",
                                  "+", "<=", "==", '"C13"', '"2022-01-01"', "1万", "9" * 39, "0", "true", "#", "="]),
                 max_size=60).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(_rules, _soup, st.text(max_size=80)))
def test_any_text_checks_and_runs_or_is_a_rule_error(conn, text):
    """Never another exception: no RecursionError, no engine error, at the check or when the rule runs."""
    try:
        rule = rules.check(text)
    except rules.RuleError as exc:
        assert 0 <= exc.position <= len(text)
        return
    conn.execute(f"SELECT count(*) FROM registry WHERE {rule.sql('duckdb')}").fetchone()
