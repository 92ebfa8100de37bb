"""The shipped policy catalogue: well-formed entries, and every rule checked against hand-worked taxpayers.

Each case in data/policy_cases.json applies `changes` over its policy's base taxpayer and states whether the
rule should select it. Both engines must agree with the hand-worked answer: the Python predicate and the
SQL the rule compiles to, run by DuckDB over a one-row registry table.
"""

from __future__ import annotations

import json
import re
import string
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from chunfeng.push.rules import parse
from chunfeng.push.schema import CONTACT_ROLES, REGISTRY, RULE_REGISTRY

POLICIES_PATH = Path(__file__).parents[2] / "src" / "chunfeng" / "push" / "data" / "policies.json"
CASES_PATH = Path(__file__).parent / "data" / "policy_cases.json"

PLACEHOLDERS = {"name", "person", "policy", "basis", "period", "deadline"}
FILINGS = {"增值税", "企业所得税", "个人所得税经营所得", "附加税费", "财产和行为税"}
PERIOD_KINDS = {"month", "quarter", "year"}
FIELDS = {"id", "name", "tax_type", "topic", "industries", "sizes", "regions", "basis", "basis_title", "effective_from",
          "effective_until", "period_kind", "filing", "summary", "rule", "roles", "templates"}
ID = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
INDUSTRY_PREFIX = re.compile(r"[A-T]\d{0,4}")
SMS_LIMIT = 70

CATALOGUE = json.loads(POLICIES_PATH.read_text(encoding="utf-8"))
POLICIES = CATALOGUE["policies"]
BY_ID = {p["id"]: p for p in POLICIES}
CASE_DATA = json.loads(CASES_PATH.read_text(encoding="utf-8"))
CASES = CASE_DATA["cases"]


def base_for(policy_id: str) -> dict:
    return CASE_DATA.get("bases", {}).get(policy_id, CASE_DATA["base"])


def record_for(case: dict) -> dict:
    """The registry record of a case, with dates as datetime.date."""
    base = base_for(case["policy"])
    # Without a credit register entry the overlay's level is the extract's (store._overlay).
    record = {**base, "credit_level": base["credit"], "credit_year": 0, "credit_repair": "无",
              **case["changes"]}
    for f in REGISTRY.fields:
        if f.kind == "date":
            record[f.name] = date.fromisoformat(record[f.name])
    return record


def duck_count(record: dict, where: str) -> int:
    """Rows of a one-row registry table holding `record` that satisfy `where`, in DuckDB."""
    con = duckdb.connect()
    try:
        columns = ", ".join(f'"{f.name}" {f.duck_type} NOT NULL' for f in RULE_REGISTRY.fields)
        con.execute(f"CREATE TABLE registry ({columns})")
        values = [Decimal(str(record[f.name])) if f.kind == "number" else record[f.name] for f in RULE_REGISTRY.fields]
        con.execute(f"INSERT INTO registry VALUES ({', '.join('?' for _ in values)})", values)
        return con.execute(f"SELECT count(*) FROM registry WHERE {where}").fetchone()[0]
    finally:
        con.close()


def placeholders(template: str) -> set[str]:
    """The fields a template names; ValueError on a malformed brace."""
    names = set()
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is not None:
            assert not spec and not conversion, f"占位符不应带格式:{template!r}"
            names.add(field)
    return names


# --- the catalogue ------------------------------------------------------------------------------

def test_at_least_twenty_policies_are_shipped():
    assert len(POLICIES) >= 20


def test_catalogue_is_marked_as_sample_content():
    assert CATALOGUE["notice"].startswith("示例内容")
    assert "审核" in CATALOGUE["notice"]


def test_ids_are_unique():
    ids = [p["id"] for p in POLICIES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["id"])
def test_policy_is_well_formed(policy):
    # "kind" may be left out (a reduction, as the loader defaults); when given it is one of the three.
    assert set(policy) - {"review", "kind"} == FIELDS, (set(policy) - {"review", "kind"}) ^ FIELDS
    assert policy.get("kind", "reduction") in ("reduction", "deferral", "timing")
    if "review" in policy:  # a fact that could not be confirmed from the published document, said in full
        assert isinstance(policy["review"], str) and "审核" in policy["review"]
    assert ID.fullmatch(policy["id"])
    for key in ("name", "tax_type", "topic", "basis", "basis_title", "summary", "rule"):
        assert isinstance(policy[key], str) and policy[key].strip(), key
    assert policy["period_kind"] in PERIOD_KINDS
    assert policy["filing"] in FILINGS
    assert all(INDUSTRY_PREFIX.fullmatch(c) for c in policy["industries"]), policy["industries"]
    assert set(policy["sizes"]) <= set(REGISTRY.get("size").values)
    assert all(re.fullmatch(r"\d{2,6}", r) for r in policy["regions"]), policy["regions"]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["id"])
def test_dates_are_valid_and_ordered(policy):
    start = date.fromisoformat(policy["effective_from"])
    assert len(policy["effective_from"]) == 10
    if policy["effective_until"] is not None:
        assert len(policy["effective_until"]) == 10
        assert start <= date.fromisoformat(policy["effective_until"])


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["id"])
def test_rule_parses_and_compiles(policy):
    rule = parse(policy["rule"])
    assert set(rule.fields) <= set(RULE_REGISTRY.names)  # the extract and the credit overlay
    assert rule.sql("duckdb")


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["id"])
def test_templates_speak_to_each_role_with_allowed_placeholders(policy):
    roles, templates = policy["roles"], policy["templates"]
    assert roles and len(roles) == len(set(roles))
    assert set(roles) <= set(CONTACT_ROLES)
    assert set(templates) == set(roles), "每个身份一套模板,不多不少"
    for role in roles:
        variants = templates[role]
        assert set(variants) <= {"default", "sms"}, variants.keys()
        assert variants.get("default", "").strip(), f"{role} 缺少 default 模板"
        for kind, text in variants.items():
            assert placeholders(text) <= PLACEHOLDERS, (role, kind, placeholders(text) - PLACEHOLDERS)
        if "sms" in variants:
            assert len(variants["sms"]) <= SMS_LIMIT, (role, len(variants["sms"]))


# --- the hand-worked cases ----------------------------------------------------------------------

def test_bases_hold_every_registry_field():
    for name, base in [("base", CASE_DATA["base"]), *CASE_DATA.get("bases", {}).items()]:
        assert set(base) == set(REGISTRY.names), name


def test_cases_name_shipped_policies_and_registry_fields():
    for case in CASES:
        assert case["policy"] in BY_ID, case["policy"]
        assert set(case["changes"]) <= set(RULE_REGISTRY.names), case
        assert isinstance(case["eligible"], bool) and case["why"].strip(), case


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p["id"])
def test_every_policy_is_covered_on_both_sides(policy):
    cases = [c for c in CASES if c["policy"] == policy["id"]]
    assert any(c["eligible"] for c in cases), "至少一个应命中的纳税人"
    assert any(not c["eligible"] for c in cases), "至少一个不应命中的纳税人"
    changed = {name for c in cases for name in c["changes"]}
    untested = set(parse(policy["rule"]).fields) - changed
    assert not untested, f"规则用到的字段没有用例改变过:{untested}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['policy']}-{json.dumps(c['changes'], ensure_ascii=False)}")
def test_rule_decides_case_as_worked_by_hand(case):
    rule = parse(BY_ID[case["policy"]]["rule"])
    record = record_for(case)
    assert bool(rule.predicate()(record)) is case["eligible"], case["why"]
    assert duck_count(record, rule.sql("duckdb")) == int(case["eligible"]), case["why"]


# --- the catalogue as of 2026-12-06 (issue 12) ---------------------------------------------------

# Successors confirmed from the published text: (basis, start, end).
SUCCESSORS = {
    "SBQJ-2027": ("财政部 税务总局公告2023年第37号", "2024-01-01", "2027-12-31"),
    "YFJJ-JCDL-2023": ("财政部 税务总局 国家发展改革委 工业和信息化部公告2023年第44号", "2023-01-01", "2027-12-31"),
    "XBDK-CIT-2021": ("财政部 税务总局 国家发展改革委公告2020年第23号", "2021-01-01", "2030-12-31"),
}
# Shipped though a fact could not be confirmed: each carries a review note the catalogue shows.
UNCONFIRMED = {"JCDL-JJDJ-2023", "GYMJ-JJDJ-2023", "TYSB-2023", "ZDQT-2023", "LRZT-2018", "LDTS-2022",
               "XGM-VAT-2027", "XGM-VAT1-2027", "XJZZ-JJDJ-2023"}


def test_successors_are_shipped_with_their_dates():
    for pid, (basis, start, end) in SUCCESSORS.items():
        p = BY_ID[pid]
        assert (p["basis"], p["effective_from"], p["effective_until"]) == (basis, start, end), pid
        assert "review" not in p and "近似" in p["summary"], pid


def test_what_could_not_be_confirmed_is_marked_for_review():
    assert {p["id"] for p in POLICIES if p.get("review")} == UNCONFIRMED
    assert "vat_credit" in parse(BY_ID["LDTS-2022"]["rule"]).fields


def test_no_vat_policy_in_force_rests_on_the_repealed_regulation_unreviewed():
    """增值税暂行条例 ended on 2026-01-01 with the VAT law: a policy in force after that on its basis is marked."""
    for p in POLICIES:
        ends = p["effective_until"]
        if p["tax_type"] == "增值税" and (ends is None or ends >= "2026-01-01") and "暂行条例" in p["basis"]:
            assert p.get("review"), p["id"]
    for pid in ("XGM-VAT-2027", "XGM-VAT1-2027"):
        assert "增值税法" in BY_ID[pid]["summary"] and "2026年第10号" in BY_ID[pid]["review"]


def test_every_vat_policy_in_force_under_the_vat_law_on_an_earlier_notice_is_marked():
    """From 2026-01-01 a VAT relief made before the VAT law holds only as far as the 衔接 rules keep it, which could
    not be confirmed from a published text here: each such policy says so in its review note (right today)."""
    for p in POLICIES:
        ends = p["effective_until"]
        if p["tax_type"] == "增值税" and (ends is None or ends >= "2026-01-01") and "增值税法" not in p["basis"]:
            assert "增值税法" in p.get("review", ""), p["id"]


def test_deferrals_and_timing_deductions_are_not_reductions():
    """A deferral is paid later and an earlier deduction moves tax in time: neither is money saved (issue 12)."""
    kinds = {p["id"]: p.get("kind", "reduction") for p in POLICIES}
    assert {i for i, k in kinds.items() if k == "deferral"} >= {"ZZY-HJ-2021", "ZZY-HJ-2022"}
    assert {i for i, k in kinds.items() if k == "timing"} >= {"SBQJ-2018", "SBQJ-2021"}
    for policy in POLICIES:
        if "延缓缴纳" in policy["name"]:
            assert kinds[policy["id"]] == "deferral", policy["id"]
        if "一次性税前扣除" in policy["name"]:
            assert kinds[policy["id"]] == "timing", policy["id"]
