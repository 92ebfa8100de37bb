"""The synthetic extract on real files: reproducible, valid credit codes, the schema's columns, consistent tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from chunfeng.push.schema import CREDIT_CODE_ALPHABET, TABLES, credit_code_problem
from chunfeng.push.synthetic import generate

N = 20_000
RULES = {
    "small-vat": ("vat_type = '小规模' AND monthly_sales <= 100000", "2022Q2"),
    "micro-cit": ("NOT individual_business AND taxable_income <= 3000000 AND headcount <= 300 AND total_assets <= 50000000",
                  "2022"),
    "rd-plus": ("manufacturing AND rd_expense > 0 AND industry LIKE 'C3%'", "2022-06"),
    "none": ("headcount < 0", "2022"),
}


def run(out: Path, fmt: str = "parquet", seed: int = 2022, **kw) -> dict[str, int]:
    return generate(out, taxpayers=N, seed=seed, fmt=fmt, claim_rules=RULES, **kw)


def read(out: Path, table: str, fmt: str = "parquet") -> str:
    """A DuckDB table expression for one file; CSV with the schema's types, so nothing rests on sniffing."""
    path = out / f"{table}.{fmt}"
    if fmt == "parquet":
        return f"read_parquet('{path}')"
    columns = ", ".join(f"'{f.name}': '{f.duck_type}'" for f in TABLES[table].fields)
    return f"read_csv('{path}', header = true, columns = {{{columns}}})"


def rows(out: Path, table: str, fmt: str = "parquet") -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM {read(out, table, fmt)}").fetchall()


def one(con, sql: str) -> tuple:
    return con.sql(sql).fetchall()[0]


def scalar(sql: str):
    return one(duckdb, sql)[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("parquet")
    return out, run(out)


@pytest.fixture(scope="module")
def db(made) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in TABLES:
        con.sql(f"CREATE VIEW {name} AS SELECT * FROM {read(made[0], name)}")
    yield con
    con.close()


def test_same_seed_same_rows_and_other_seed_other_rows(made, tmp_path):
    again = tmp_path / "again"
    assert run(again) == made[1]
    for name in TABLES:
        assert rows(again, name) == rows(made[0], name), name
    other = tmp_path / "other"
    run(other, seed=7)
    for name in ("registry", "contacts", "filings"):
        assert rows(other, name) != rows(made[0], name)
    assert scalar(f"SELECT count(*) FROM {read(other, 'registry')} JOIN {read(made[0], 'registry')} USING (credit_code)") < 10


def test_counts_match_files_and_are_plausible(made):
    out, counts = made
    assert set(counts) == set(TABLES)
    for name, n in counts.items():
        assert scalar(f"SELECT count(*) FROM {read(out, name)}") == n
    assert counts["registry"] == N
    assert 2 * N <= counts["contacts"] <= 4 * N
    assert 3 * N <= counts["filings"] <= 5 * N
    assert counts["claims"] > 0


def test_columns_types_and_order_are_the_schema(made, tmp_path):
    out = made[0]
    for name, table in TABLES.items():
        described = duckdb.sql(f"DESCRIBE SELECT * FROM {read(out, name)}").fetchall()
        assert [(d[0], d[1]) for d in described] == [(f.name, f.duck_type) for f in table.fields]
    run(tmp_path, fmt="csv")
    for name, table in TABLES.items():
        header = (tmp_path / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header == ",".join(table.names)


def test_no_nulls(db):
    for name, table in TABLES.items():
        nulls = " + ".join(f"count(*) FILTER ({c} IS NULL)" for c in table.names)
        assert one(db, f"SELECT {nulls} FROM {name}")[0] == 0, name


def gb11714_check(body: str) -> str:
    c = 11 - sum(int(ch, 36) * w for ch, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def test_credit_codes_valid_unique_and_structured(db):
    registry = db.sql("SELECT credit_code, region, individual_business FROM registry").fetchall()
    codes = [r[0] for r in registry]
    assert len(set(codes)) == len(codes) == N
    assert [c for c in codes if credit_code_problem(c)] == []
    for code, region, individual in registry:
        assert code[:2] == ("92" if individual else "91")
        assert code[2:8] == region
        assert set(code[8:16]) <= set(CREDIT_CODE_ALPHABET)
        assert code[16] == gb11714_check(code[8:16])


def test_keys_unique_and_references_exist(db):
    for name, table in TABLES.items():
        key = ", ".join(table.key)
        assert one(db, f"SELECT count(*) = count(DISTINCT ({key})) FROM {name}")[0], name
    for name in ("contacts", "claims", "filings"):
        assert one(db, f"SELECT count(*) FROM {name} ANTI JOIN registry USING (credit_code)")[0] == 0, name


def test_claims_only_where_the_rule_matches_about_70_percent(db):
    for policy, (where, period) in RULES.items():
        matching = one(db, f"SELECT count(*) FROM registry WHERE {where}")[0]
        claims, outside, wrong, nonpositive = one(db,
            f"""SELECT count(*), count(*) FILTER (NOT ({where})), count(*) FILTER (c.period <> '{period}'),
                       count(*) FILTER (amount <= 0)
                FROM claims c JOIN registry USING (credit_code) WHERE policy = '{policy}'""")
        assert (outside, wrong, nonpositive) == (0, 0, 0), policy
        if policy == "none":
            assert matching == claims == 0
        else:
            assert matching > 500, policy
            assert 0.65 <= claims / matching <= 0.75, policy
    assert set(db.sql("SELECT DISTINCT policy FROM claims").fetchall()) == {(p,) for p in RULES if p != "none"}


def test_csv_and_parquet_hold_the_same_rows(made, tmp_path):
    assert run(tmp_path, fmt="csv") == made[1]
    for name in TABLES:
        assert rows(tmp_path, name, "csv") == rows(made[0], name), name
    line = (tmp_path / "registry.csv").read_text(encoding="utf-8").splitlines()[1]
    assert ",false," in line or ",true," in line
    assert line.endswith(rows(made[0], "registry")[0][-1].isoformat())


def test_without_rules_claims_is_empty_with_its_columns(tmp_path):
    counts = generate(tmp_path, taxpayers=1000, claim_rules=None)
    assert counts["claims"] == 0 and counts["registry"] == 1000
    described = duckdb.sql(f"DESCRIBE SELECT * FROM {read(tmp_path, 'claims')}").fetchall()
    assert [d[0] for d in described] == list(TABLES["claims"].names)
    generate(tmp_path, taxpayers=1000, fmt="csv")
    assert (tmp_path / "claims.csv").read_text(encoding="utf-8") == "credit_code,policy,period,amount\n"


def test_registry_is_internally_consistent(db):
    bad = one(db, """SELECT
        count(*) FILTER (manufacturing <> (industry LIKE 'C%')),
        count(*) FILTER (individual_business AND (size <> '微型' OR vat_type <> '小规模')),
        count(*) FILTER (NOT regexp_full_match(industry, '[A-S][0-9]{4}')),
        count(*) FILTER (NOT regexp_full_match(region, '[1-6][0-9]{5}')),
        count(*) FILTER (abs(monthly_sales * 12 - annual_revenue) > annual_revenue * 0.11),
        count(*) FILTER (least(headcount, total_assets, annual_revenue) <= 0),
        count(*) FILTER (least(taxable_income, rd_expense, vat_credit) < 0),
        count(*) FILTER (registered NOT BETWEEN DATE '1995-01-01' AND DATE '2022-03-31'),
        count(*) FILTER (annual_revenue > 5000000 AND vat_type <> '一般纳税人')
        FROM registry""")
    assert bad == (0,) * len(bad)
    provinces = {r[0] for r in db.sql("SELECT DISTINCT left(region, 2) FROM registry").fetchall()}
    assert len(provinces) == 31
    top = [r[0] for r in db.sql("SELECT left(region, 2) p FROM registry GROUP BY p ORDER BY count(*) DESC LIMIT 4").fetchall()]
    assert set(top) == {"44", "32", "33", "37"}


def test_rule_thresholds_split_the_population(db):
    for cond in ("monthly_sales <= 100000", "taxable_income <= 3000000", "headcount <= 300", "total_assets <= 50000000",
                 "vat_type = '小规模'", "size IN ('小型', '微型')"):
        share = one(db, f"SELECT avg(({cond})::INT) FROM registry")[0]
        assert 0.1 <= share <= 0.9, cond
    for flag, low, high in (("high_tech", .02, .04), ("tech_sme", .035, .065), ("exporter", .06, .1),
                            ("individual_business", .22, .28), ("rd_expense > 0", .12, .18), ("vat_credit > 0", .15, .25)):
        share = one(db, f"SELECT avg(({flag})::INT) FROM registry")[0]
        assert low <= share <= high, flag
    credit = dict(db.sql("SELECT credit, count(*) FROM registry GROUP BY 1").fetchall())
    assert credit["B"] > credit["M"] > credit["A"] > credit["C"] > credit["D"] > 0


def test_contacts_roles_channels_and_addresses(db):
    bad = one(db, """SELECT
        count(*) FILTER (channel = 'sms' AND NOT regexp_full_match(address, '1[3-9][0-9]{9}')),
        count(*) FILTER (channel = 'email' AND NOT regexp_full_match(address, '[a-z]+[0-9]+@example\\.com')),
        count(*) FILTER (channel = 'inapp' AND address <> credit_code || '/' || role),
        count(*) FILTER (address = ''),
        count(*) FILTER (individual_business AND role = '财务负责人')
        FROM contacts JOIN registry USING (credit_code)""")
    assert bad == (0,) * len(bad)
    per_taxpayer = one(db, """SELECT min(roles), max(roles), bool_and(has_legal), max(channels) FROM (
        SELECT count(DISTINCT role) roles, bool_or(role = '法定代表人') has_legal, max(n) channels
        FROM (SELECT *, count(*) OVER (PARTITION BY credit_code, role) n FROM contacts) GROUP BY credit_code)""")
    assert per_taxpayer == (1, 3, True, 2)
    assert one(db, "SELECT count(DISTINCT credit_code) FROM contacts")[0] == N
    channels = dict(db.sql("SELECT channel, count(*) FROM contacts GROUP BY 1").fetchall())
    assert max(channels, key=channels.get) == "inapp" and sorted(channels, key=channels.get)[-2] == "sms"
    assert 0.02 <= one(db, "SELECT avg(opted_out::INT) FROM contacts")[0] <= 0.04


def test_filings_follow_vat_type_and_are_filed_next_month(db):
    bad = one(db, """SELECT
        count(*) FILTER (return_type = '增值税' AND (vat_type = '一般纳税人') <> (period LIKE '____-__')),
        count(*) FILTER (return_type = '企业所得税' AND (individual_business OR period NOT LIKE '____Q_')),
        count(*) FILTER (day(filed_on) > 20 OR filed_on < DATE '2022-02-01' OR filed_on > DATE '2022-07-20'),
        count(*) FILTER (period LIKE '____-__' AND month(filed_on) <> TRY_CAST(right(period, 2) AS INT) + 1),
        count(*) FILTER (period LIKE '____Q_' AND month(filed_on) <> TRY_CAST(right(period, 1) AS INT) * 3 + 1)
        FROM filings JOIN registry USING (credit_code)""")
    assert bad == (0,) * len(bad)
    # Everyone registered before 2022 owes a latest-period return; about 5% have not filed it.
    missing = one(db, """SELECT avg((NOT EXISTS (SELECT 1 FROM filings f WHERE f.credit_code = r.credit_code
                                                AND f.period IN ('2022-06', '2022Q2')))::INT)
                        FROM registry r WHERE registered < DATE '2022-01-01'""")[0]
    assert 0.03 <= missing <= 0.07


def test_progress_and_bad_arguments(tmp_path):
    calls = []
    generate(tmp_path, taxpayers=10, progress=lambda *a: calls.append(a))
    assert sorted(calls) == sorted((name, 10, 10) for name in TABLES)
    with pytest.raises(ValueError, match="does not run"):
        generate(tmp_path, taxpayers=10, claim_rules={"x": ("no_such_column > 1", "2022")})
    with pytest.raises(ValueError):
        generate(tmp_path, taxpayers=10, fmt="xlsx")


def test_claim_amounts_follow_each_policys_rate(extract_dir):
    """The demo's bill is plausible: each shipped policy's synthetic 减免税费额 is its own rate on the registry's
    figures (it was a share of revenue whatever the policy, up to 5000万 for a ≤300万-income relief)."""
    reg, claims = (f"read_parquet('{extract_dir / name}.parquet')" for name in ("registry", "claims"))

    def worst(policy: str, expected_sql: str) -> float:
        return duckdb.sql(f"SELECT max(abs(CAST(c.amount AS DOUBLE) - ({expected_sql}))), count(*) FROM {claims} c "
                          f"JOIN {reg} r USING (credit_code) WHERE c.policy = '{policy}'").fetchall()[0]

    ti = "greatest(CAST(r.taxable_income AS DOUBLE), 0)"
    cases = {
        "XWQY-CIT-2027": f"0.20 * {ti}",  # 25% → 5% on all of it, at most 300万 × 20% = 60万
        "XWQY-CIT-2022": f"0.20 * ({ti} - 1000000)",  # only the 100万–300万 part
        "XGM-VAT1-2027": "0.02 * 3 * CAST(r.monthly_sales AS DOUBLE)",  # a quarter's sales, 3% → 1%
        "XGM-VAT-2021": "0.03 * 3 * CAST(r.monthly_sales AS DOUBLE)",  # a quarter's sales exempt from 3%
        "GXJS-CIT": f"0.10 * {ti}",  # 25% → 15%
    }
    for policy, expected_sql in cases.items():
        gap, count = worst(policy, expected_sql)
        assert count > 0 and gap <= 0.01, (policy, gap, count)
    top = dict(duckdb.sql(f"SELECT policy, max(amount) FROM {claims} GROUP BY policy").fetchall())
    assert top["XWQY-CIT-2027"] <= 600_000 and top["XWQY-CIT-2022"] <= 400_000
    assert duckdb.sql(f"SELECT count(*) FROM {claims} WHERE amount <= 0").fetchall()[0][0] == 0
