"""Risk tiers (measure 95) on a real database and DuckDB store: the sample indicators are checked push rules, a run
replaces the tiers of the actor's subtree only, stores the indicators that fired and the tier's flag, is audited, and
the scheduled job runs it for the whole store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import duckdb
import pytest
from pydantic import ValidationError
from sqlalchemy import delete, func, inspect, select

from chunfeng.credit import bulk as bulk_writer
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
from tests.credit.test_evaluation import FIRM, OTHER, PROMPT, SHOP, SMALL, people, taxpayers  # noqa: F401  (fixtures)

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


def stored_rows(db) -> dict[str, tuple]:
    with db.read() as s:
        return {r.credit_code: (r.id, r.tier, r.indicators, r.computed_at) for r in s.scalars(select(CreditRisk))}


def last_run(db) -> dict:
    with db.read() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "credit.risk.computed")
                         .order_by(AuditEntry.id.desc()).limit(1))
        return json.loads(entry.after)


def last_written(db) -> dict:
    return last_run(db)["written"]


def test_a_run_writes_only_the_tiers_that_changed(people, taxpayers):  # noqa: F811
    """Each run compares the tiers it decides with those stored: a new 中/高 taxpayer is inserted, one whose tier or
    indicators changed is written again, one now 低 is deleted, and every other row is left as it was (same row,
    same computed_at); the lists read the result within the unit's subtree only."""
    db = people
    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024)])
    compute(db, "county_officer", taxpayers)
    first = stored_rows(db)
    assert set(first) == {SHOP, SMALL, FIRM, OTHER} and last_written(db)["inserted"] == 4

    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024), (PROMPT, "C", 2024)])  # PROMPT: 低 → 中
    compute(db, "county_officer", taxpayers)
    assert last_written(db) == {"inserted": 1, "updated": 0, "deleted": 0, "unchanged": 4}
    second = stored_rows(db)
    assert second[PROMPT][1:3] == ("中", ["纳税缴费信用为C级"])
    assert {c: second[c] for c in first} == first  # not one of the others rewritten

    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024), (SMALL, "A", 2024)])  # PROMPT 低 again; SMALL's C gone
    compute(db, "county_officer", taxpayers)
    assert last_written(db) == {"inserted": 0, "updated": 1, "deleted": 1, "unchanged": 3}
    third = stored_rows(db)
    assert PROMPT not in third and third[SMALL][1:3] == ("中", ["近12个月无申报记录"])
    assert third[SMALL][0] != first[SMALL][0]
    assert {c: third[c] for c in (SHOP, FIRM, OTHER)} == {c: first[c] for c in (SHOP, FIRM, OTHER)}

    compute(db, "county_officer", taxpayers)  # nothing changed: nothing written
    assert last_written(db) == {"inserted": 0, "updated": 0, "deleted": 0, "unchanged": 4} and stored_rows(db) == third
    with db.read() as s:
        listed = risk.list_risks(session=s, actor=person(s, "county_officer"), tier="中")
        assert {r.credit_code: r.indicators for r in listed.items}[SMALL] == ["近12个月无申报记录"]
        assert risk.list_risks(session=s, actor=person(s, "county2_officer")).total == 0
    # The neighbouring county's run compares only its own subtree's rows: it neither writes nor deletes 110101's.
    assert compute(db, "county2_officer", taxpayers) == {"低": 0, "中": 0, "高": 0}
    assert last_written(db) == {"inserted": 0, "updated": 0, "deleted": 0, "unchanged": 0} and stored_rows(db) == third


def national(db, path, today=DAY):
    with db.write() as s:
        return risk.compute(session=s, actor=SystemActor(username="test"), store=path, today=today)


def test_a_national_run_trusts_its_snapshot_only_while_the_table_is_as_it_left_it(people, taxpayers):  # noqa: F811
    """A national run compares with the previous national run's snapshot (beside the store) instead of reading the
    table back — but only while the table's fingerprint is the one the snapshot was written with: a run whose
    transaction rolled back after writing the snapshot, or a row changed behind its back, sends the next run to
    the table itself, so the tiers shown are never the snapshot's."""
    db = people
    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024)])
    national(db, taxpayers)
    assert risk.snapshot_path(taxpayers).exists() and tiers(db)[SMALL][0] == "中" and last_run(db)["compared"] == "table"
    national(db, taxpayers)  # the table is as the snapshot says
    assert last_run(db)["compared"] == "snapshot" and last_written(db)["unchanged"] == 4

    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024), (SMALL, "D", 2024)])
    with pytest.raises(RuntimeError), db.write() as s:  # the run's snapshot is written, its transaction undone
        risk.compute(session=s, actor=SystemActor(username="test"), store=taxpayers, today=DAY)
        raise RuntimeError("the caller failed after the run")
    assert tiers(db)[SMALL][0] == "中"
    national(db, taxpayers)  # the snapshot says SMALL is 高 already; the table says 中: the table is read
    assert last_run(db)["compared"] == "table"
    assert last_written(db) == {"inserted": 0, "updated": 1, "deleted": 0, "unchanged": 3}
    assert tiers(db)[SMALL] == ("高", ["纳税缴费信用为D级", "近12个月无申报记录"])

    with db.write() as s:  # a row gone behind the runs' back (a restored backup, a hand edit)
        s.execute(delete(CreditRisk).where(CreditRisk.credit_code == SHOP))
    national(db, taxpayers)
    assert last_written(db) == {"inserted": 1, "updated": 0, "deleted": 0, "unchanged": 3} and SHOP in tiers(db)
    assert last_run(db)["compared"] == "table"
    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024)])  # SMALL back to 中, by the snapshot of the last run
    national(db, taxpayers)
    assert last_run(db)["compared"] == "snapshot" and tiers(db)[SMALL][0] == "中"
    assert last_written(db) == {"inserted": 0, "updated": 1, "deleted": 0, "unchanged": 3}
    national(db, taxpayers)  # nothing changed: the snapshot stays and still holds
    assert last_run(db)["compared"] == "snapshot" and last_written(db)["unchanged"] == 4
    # An official's run of the county brings the snapshot up to date: the next national run still trusts it.
    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024), (SHOP, "D", 2024)])
    compute(db, "county_officer", taxpayers)
    assert last_run(db)["compared"] == "table" and last_written(db)["updated"] == 1
    national(db, taxpayers)
    assert last_run(db)["compared"] == "snapshot" and last_written(db)["unchanged"] == 4 and tiers(db)[SHOP][0] == "高"
    risk.snapshot_path(taxpayers).write_bytes(b"half a file")  # a disk that filled up: the table is read
    national(db, taxpayers)
    assert last_run(db)["compared"] == "table" and last_written(db)["unchanged"] == 4


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


def indexes(db) -> set[str]:
    with db.read() as s:
        return {index["name"] for index in inspect(s.connection()).get_indexes("credit_risk")}


def test_a_first_run_into_an_empty_table_writes_in_bulk_and_keeps_the_indexes(people, taxpayers, monkeypatch):  # noqa: F811
    """Into an empty table SQLite writes the rows with the secondary indexes dropped and builds them after, in the
    run's transaction: the same rows as a run into a table already holding tiers, the indexes there afterwards,
    and a run that fails half-way leaves the table empty and indexed as before."""
    db = people
    monkeypatch.setattr(bulk_writer, "BULK_BATCH", 3)  # several batches from the fixture's four rows,
    monkeypatch.setattr(bulk_writer, "ROWS_A_STATEMENT", 2)  # each with whole statements of rows and one left over
    store.publish_credit_levels(taxpayers, [(FIRM, "D", 2024)])
    declared = indexes(db)
    assert {"ix_credit_risk_tier", "ix_credit_risk_unit_id"} <= declared

    def failing(done, total, message):
        if message.startswith("正在写入"):  # after the first batch: SQLite's indexes are dropped by then
            raise RuntimeError("the run failed while writing")

    with pytest.raises(RuntimeError), db.write() as s:
        risk.compute(session=s, actor=SystemActor(username="test"), store=taxpayers, today=DAY, progress=failing)
    assert tiers(db) == {} and indexes(db) == declared

    messages = []
    with db.write() as s:
        risk.compute(session=s, actor=SystemActor(username="test"), store=taxpayers, today=DAY,
                     progress=lambda done, total, message: messages.append((done, message)))
    bulk = tiers(db)
    assert set(bulk) == {SHOP, SMALL, FIRM, OTHER} and last_written(db)["inserted"] == 4
    assert indexes(db) == declared
    assert ((4, "正在建立索引") in messages) == db.is_sqlite  # PostgreSQL keeps COPY into the indexed table
    with db.read() as s:  # the lists page through the rebuilt index
        page = risk.list_risks(session=s, actor=person(s, "county_officer"), tier="高")
        assert [r.credit_code for r in page.items] == [FIRM]

    with db.write() as s:  # the same run into a table already holding a row: written row by row, the same tiers
        s.execute(delete(CreditRisk).where(CreditRisk.credit_code != FIRM))
    national(db, taxpayers)
    assert tiers(db) == bulk and last_written(db)["inserted"] == 3 and indexes(db) == declared
