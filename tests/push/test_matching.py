"""Matching every shipped policy: DuckDB, PostgreSQL and Spark give the same counts, and those counts are
what the record-by-record evaluator finds on the same taxpayers."""

from __future__ import annotations

from collections import Counter

import pytest

from chunfeng.push import matching, rules, services
from chunfeng.push.engines import PostgresEngine, SparkEngine, export_parquet
from chunfeng.push.errors import PushInvalid

POLICIES = services.shipped_policies()


@pytest.fixture(scope="module")
def expected(store_file):
    """Per policy: eligible and not-claimed counts by province, worked out in Python from the raw rows."""
    from chunfeng.push import store

    with store.connect_store(store_file) as conn:
        cols = [d[0] for d in conn.execute("SELECT * FROM registry LIMIT 0").description]
        registry = [dict(zip(cols, row, strict=True)) for row in conn.execute("SELECT * FROM registry").fetchall()]
        claims = {(c, p, period) for c, p, period in conn.execute("SELECT credit_code, policy, period FROM claims").fetchall()}
        latest = dict(conn.execute("SELECT policy, max(period) FROM claims GROUP BY policy").fetchall())
    result = {}
    for policy in POLICIES:
        check = rules.parse(policy["rule"]).predicate()
        period = latest.get(policy["id"])
        eligible = [r for r in registry if check(r)]
        unclaimed = [r for r in eligible if (r["credit_code"], policy["id"], period) not in claims]
        result[policy["id"]] = (len(eligible), len(unclaimed), period,
                                Counter(r["region"][:2] for r in eligible), Counter(r["region"][:2] for r in unclaimed))
    return result


def _check(engine, expected):
    together = matching.match_all(engine, [(p["id"], p["rule"]) for p in POLICIES])
    for policy, m_all in zip(POLICIES, together, strict=True):
        m = matching.match(engine, policy_id=policy["id"], rule_text=policy["rule"])
        assert m_all.as_json() == m.as_json(), policy["id"]
        eligible, unclaimed, period, by_province, unclaimed_by_province = expected[policy["id"]]
        assert (m.eligible, m.not_claimed, m.period) == (eligible, unclaimed, period), policy["id"]
        assert {k[:2]: v["eligible"] for k, v in m.by_region.items()} == dict(by_province)
        assert {k[:2]: v["not_claimed"] for k, v in m.by_region.items() if v["not_claimed"]} == dict(unclaimed_by_province)
        assert sum(v["eligible"] for v in m.by_industry.values()) == eligible
    # Values reach every engine as bound parameters: a region, a province, a policy id that look like SQL stay data.
    policy = POLICIES[0]
    by_province = expected[policy["id"]][3]
    for region, count in (("44", by_province["44"]), ("11' OR '1'='1", 0), ("11' --", 0)):
        m = matching.match(engine, policy_id=policy["id"], rule_text=policy["rule"], audience=matching.Audience(region))
        [m_all] = matching.match_all(engine, [(policy["id"], policy["rule"])], audience=matching.Audience(region))
        assert m.eligible == m_all.eligible == count, region
    total, page = matching.taxpayers(engine, policy_id=policy["id"], rule_text=policy["rule"],
                                     period=expected[policy["id"]][2], province="440000", limit=5)
    assert total == by_province["44"] and all(r["region"].startswith("44") for r in page)
    assert matching.taxpayers(engine, policy_id="x' OR '1'='1", rule_text=policy["rule"], period=expected[policy["id"]][2],
                              province="4' OR '1'='1", limit=5)[0] == 0
    with pytest.raises(PushInvalid, match="所属期"):  # a period is checked against its pattern before any engine sees it
        matching.taxpayers(engine, policy_id=policy["id"], rule_text=policy["rule"], period="2022' OR '1'='1",
                           province="440000", limit=5)


def test_the_synthetic_extract_exercises_the_policies(expected):
    busy = [pid for pid, (eligible, unclaimed, period, *_) in expected.items() if eligible and unclaimed < eligible]
    assert len(busy) >= 20  # most policies have eligible taxpayers, some of whom claimed


def test_duckdb_matches_the_record_by_record_evaluator(duck, expected):
    _check(matching.DuckDBEngine(duck), expected)


def test_postgresql_gives_the_same_counts(duck, expected, _database):
    if _database.engine.dialect.name != "postgresql":
        pytest.skip("runs in the PostgreSQL pass of .ci/run (CHUNFENG_DATABASE_URL)")
    engine = PostgresEngine(_database.engine, schema="taxpayer_test")
    assert engine.load(duck)["registry"] == 3000
    _check(engine, expected)


def test_spark_gives_the_same_counts(duck, expected, tmp_path_factory):
    engine = SparkEngine.local(export_parquet(duck, tmp_path_factory.mktemp("parquet")))
    try:
        _check(engine, expected)
    finally:
        engine.spark.stop()


def test_the_drill_down_lists_exactly_the_counted_taxpayers(duck, expected):
    engine = matching.DuckDBEngine(duck)
    policy = max(POLICIES, key=lambda p: expected[p["id"]][1])
    eligible, unclaimed, period, by_province, _ = expected[policy["id"]]
    total, rows = matching.taxpayers(engine, policy_id=policy["id"], rule_text=policy["rule"], period=period,
                                     not_claimed_only=True, limit=None)
    assert total == len(rows) == unclaimed and not any(r["claimed"] for r in rows)
    assert [r["credit_code"] for r in rows] == sorted(r["credit_code"] for r in rows)
    province = by_province.most_common(1)[0][0]
    total, page = matching.taxpayers(engine, policy_id=policy["id"], rule_text=policy["rule"], period=period,
                                     province=province + "0000", offset=10, limit=10)
    assert total == by_province[province] and len(page) == min(10, max(0, total - 10))
    assert all(r["region"].startswith(province) for r in page)


def test_a_region_audience_narrows_the_match(duck, expected):
    policy = POLICIES[0]
    m = matching.match(matching.DuckDBEngine(duck), policy_id=policy["id"], rule_text=policy["rule"],
                       audience=matching.Audience(region="44"))
    assert m.eligible == expected[policy["id"]][3]["44"] and set(m.by_region) <= {"440000"}
    [m_all] = matching.match_all(matching.DuckDBEngine(duck), [(policy["id"], policy["rule"])],
                                 audience=matching.Audience(region="44"))
    assert m_all.as_json() == m.as_json()


def test_periods():
    assert matching.period_for("month", 2022, 1) == "2021-12"
    assert matching.period_for("quarter", 2022, 7) == "2022Q2"
    assert matching.period_for("year", 2022, 5) == "2021"
    assert [str(d) for d in matching.period_bounds("2022Q2")] == ["2022-04-01", "2022-06-30"]
    assert [str(d) for d in matching.period_bounds("2022-02")] == ["2022-02-01", "2022-02-28"]
    with pytest.raises(Exception, match="所属期"):
        matching.period_bounds("2022H1")
    assert matching.region_prefix("440300") == "4403" and matching.region_prefix("000000") == ""
    assert matching.region_prefix("110000") == "11" and matching.region_prefix("11000101") == "11000101"
