"""Risk tiers (measure 95) on a real database and DuckDB store: the sample indicators are checked push rules, a run
replaces the tiers of the actor's subtree only, stores the indicators that fired and the tier's flag, is audited, and
the scheduled job runs it for the whole store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import duckdb
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from chunfeng.credit import jobs as credit_jobs
from chunfeng.credit import risk
from chunfeng.credit.models import CreditRisk
from chunfeng.db import NulInText
from chunfeng.org.access import SystemActor
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry
from chunfeng.push import store, synthetic
from chunfeng.settings import Settings
from tests.conftest import person
from tests.credit.test_evaluation import FIRM, PROMPT, SHOP, people, taxpayers  # noqa: F401  (fixtures)

DAY = date(2025, 12, 31)


def compute(db, username, path, today=DAY):
    with db.write() as s:
        return risk.compute(session=s, actor=person(s, username), store=path, today=today)


def tiers(db) -> dict[str, tuple[str, list]]:
    with db.read() as s:
        return {r.credit_code: (r.tier, r.indicators) for r in s.scalars(select(CreditRisk))}


def test_tiers_with_the_indicators_that_fired(people, taxpayers):  # noqa: F811
    db = people
    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024)])  # the register's D overrides the extract's C
    counts = compute(db, "county_officer", taxpayers)
    assert counts == {"低": 1, "中": 3, "高": 1}
    got = tiers(db)
    assert got[FIRM] == ("高", ["纳税缴费信用为D级", "近12个月无申报记录"])
    # Four returns of the window filed after their deadline, and the extract's C.
    assert got[SHOP] == ("中", ["纳税缴费信用为C级", "近12个月逾期申报2次及以上"])
    assert PROMPT not in got  # 低: evaluated and counted, but no row (officials page through 中 and 高)
    assert risk.consequence(got[FIRM][0])["action"] == "paused" and risk.consequence("低")["action"] == "eased"
    with db.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.risk.computed"))
        assert entry is not None and entry.actor == "county_officer" and json.loads(entry.after)["counts"]["低"] == 1
        page = risk.list_risks(session=s, actor=person(s, "county_officer"), tier="高")
        assert [r.credit_code for r in page.items] == [FIRM]
        assert risk.list_risks(session=s, actor=person(s, "county2_officer")).total == 0


def test_a_run_replaces_only_the_actors_subtree(people, taxpayers):  # noqa: F811
    db = people
    compute(db, "county_officer", taxpayers)
    assert compute(db, "county2_officer", taxpayers) == {"低": 0, "中": 0, "高": 0}
    assert len(tiers(db)) == 4  # the neighbouring county's run left 110101's tiers alone (its 低 one has no row)
    with pytest.raises(Forbidden):
        compute(db, "viewer2", taxpayers)
    with pytest.raises(Forbidden):
        compute(db, "shop", taxpayers)


def test_the_job_computes_the_whole_store_and_skips_without_one(people, taxpayers, tmp_path):  # noqa: F811
    db = people
    settings = Settings(push_store=str(taxpayers))
    summary = credit_jobs.compute_risk(db, settings, datetime(2026, 12, 7, 2, tzinfo=UTC).replace(tzinfo=None))
    assert sum(summary.values()) == 5
    with db.read() as s:
        # 低 is counted, not written (on this day the window holds no returns: every taxpayer is 中 or 高)
        assert s.scalar(select(func.count()).select_from(CreditRisk)) == 5 - summary["低风险"] == 5
    assert "尚未导入" in str(credit_jobs.compute_risk(db, Settings(push_store=str(tmp_path / "none.duckdb")),
                                                   datetime(2026, 12, 7)))


def test_every_sample_indicator_is_a_checked_rule():
    assert len(risk.indicators()) == len(risk.data()["indicators"]) and risk.data()["samples"] is True
    assert {i["tier"] for i, _ in risk.indicators()} <= {"中", "高"}


def test_spark_decides_the_same_tiers_as_duckdb(db, tmp_path):
    """The setting credit_risk_engine=spark: the same SQL, translated for Spark, over a small synthetic registry
    whose register rates some taxpayers differently from the extract; the same counts and the same rows written."""
    extract, path = tmp_path / "extract", tmp_path / "taxpayers.duckdb"
    synthetic.generate(extract, taxpayers=2000, seed=11)
    store.import_extract(extract, path)
    with store.connect_store(path) as conn:
        codes = [c for (c,) in conn.execute("SELECT credit_code FROM registry ORDER BY credit_code LIMIT 60").fetchall()]
    store.publish_credit_levels(path, [(c, "D" if n % 2 else "A", 2024) for n, c in enumerate(codes)])
    results = {}
    for engine in risk.ENGINES:
        with db.write() as s:
            counts = risk.compute(session=s, actor=SystemActor(username="test"), store=path, today=date(2022, 8, 1),
                                  engine=engine)
        with db.read() as s:
            rows = {r.credit_code: (r.name, r.unit_id, r.tier, r.indicators) for r in s.scalars(select(CreditRisk))}
        results[engine] = counts, rows
    assert results["duckdb"] == results["spark"]
    counts, rows = results["spark"]
    assert all(counts.values()) and sum(counts.values()) == 2000 and len(rows) == counts["中"] + counts["高"]
    assert {rows[c][2] for c in codes[1::2]} == {"高"}  # the register's D, not the extract's level
    late = [r for r in rows.values() if "近12个月逾期申报2次及以上" in r[3]]
    assert late and all(r[3] == [i["name"] for i, _ in risk.indicators() if i["name"] in r[3]] for r in rows.values())


def test_the_engine_setting_takes_only_the_engines_there_are():
    assert Settings(credit_risk_engine="spark").credit_risk_engine == "spark"
    with pytest.raises(ValidationError):
        Settings(credit_risk_engine="hive")


def test_a_name_with_nul_is_refused_and_the_tiers_stay(people, taxpayers):  # noqa: F811
    """The 中/高 rows bypass the statement hook that refuses NUL on every other write: checked before writing."""
    db = people
    compute(db, "county_officer", taxpayers)
    before = tiers(db)
    with duckdb.connect(str(taxpayers)) as conn:
        conn.execute("UPDATE registry SET name = 'a' || chr(0) || 'b' WHERE credit_code = $code", {"code": FIRM})
    with pytest.raises(NulInText):
        compute(db, "county_officer", taxpayers)
    assert tiers(db) == before
