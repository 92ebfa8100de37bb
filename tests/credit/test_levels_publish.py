"""The register's levels as push rules see them (`credit_level`, `credit_year`, `credit_repair`): published in full
from each taxpayer's latest year (after an import, by the periodic job), and one taxpayer at a time after an
evaluation or a repair — which must read exactly as a full publish would, and never outlive the next full one."""

from __future__ import annotations

import threading

import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert, select, update

from chunfeng.credit import evaluation, repair
from chunfeng.credit.models import CreditRating
from chunfeng.org.models import Unit
from chunfeng.push import store
from tests.conftest import person
from tests.credit.test_evaluation import REGISTRY, _row
from tests.credit.test_repair import TODAY, file, register  # noqa: F401  (the fixture)
from tests.credit.test_services import A, B, C, code

OUTSIDE = code(4)  # in the extract, never rated: the extract's own level stands


def import_store(tmp_path):
    extract = tmp_path / "extract"
    extract.mkdir()
    (extract / "registry.csv").write_text(REGISTRY + "".join(
        _row(c, n, "一般纳税人", False, credit="M") for c, n in ((A, "甲公司"), (B, "乙公司"), (C, "丙公司"),
                                                             (OUTSIDE, "丁公司"))), encoding="utf-8")
    (extract / "contacts.csv").write_text("credit_code,role,person,channel,address,opted_out\n", encoding="utf-8")
    (extract / "claims.csv").write_text("credit_code,policy,period,amount\n", encoding="utf-8")
    (extract / "filings.csv").write_text("credit_code,return_type,period,filed_on\n", encoding="utf-8")
    taxpayers = tmp_path / "push" / "taxpayers.duckdb"
    store.import_extract(extract, taxpayers, workers=1)
    return taxpayers


def seen(taxpayers) -> list[tuple]:
    """What a rule reads for every taxpayer of the extract."""
    with store.connect_store(taxpayers) as conn:
        return conn.execute("SELECT credit_code, credit_level, credit_year, credit_repair FROM registry "
                            "ORDER BY credit_code").fetchall()


def publish_all(db, taxpayers) -> int:
    with db.read() as s:
        return evaluation.publish_levels(session=s, store=taxpayers)


def publish_one(db, taxpayers, credit_code: str) -> None:
    with db.read() as s:
        evaluation.publish_taxpayer(session=s, store=taxpayers, credit_code=credit_code)


def decide(db, repair_id: int, **fields) -> None:
    with db.write() as s:
        repair.decide(session=s, actor=person(s, "county_officer"), repair_id=repair_id, today=TODAY, **fields)


@pytest.fixture
def history(register):  # noqa: F811
    """A with an older year at a better level (the latest year counts, not the best level); C rated in two years."""
    with register.write() as s:
        county = s.scalar(select(Unit).where(Unit.code == "110101"))
        s.add_all([CreditRating(credit_code=A, name="甲公司", year=2024, score=95.0, level="A", deductions={}, unit=county),
                   CreditRating(credit_code=C, name="丙公司", year=2023, score=65.0, level="C", deductions={}, unit=county),
                   CreditRating(credit_code=C, name="丙公司", year=2024, score=88.0, level="B", deductions={}, unit=county)])
    return register


def test_a_full_publish_reads_each_taxpayers_latest_year(history, tmp_path):
    taxpayers = import_store(tmp_path)
    assert publish_all(history, taxpayers) == 3
    assert seen(taxpayers) == sorted([(A, "B", 2025, "无"), (B, "D", 2025, "无"), (C, "B", 2024, "无"),
                                      (OUTSIDE, "M", 0, "无")])


def test_one_taxpayer_published_after_a_change_reads_as_a_full_publish(history, tmp_path):
    db, taxpayers = history, import_store(tmp_path)
    publish_all(db, taxpayers)
    levels = store.credit_levels_path(taxpayers)
    written = levels.stat().st_mtime_ns

    pending = file(db, "payer", tmp_path)  # A applies: the rules see 待核定 at once
    publish_one(db, taxpayers, A)
    assert (A, "B", 2025, "待核定") in seen(taxpayers)
    decide(db, pending, approve=True, reason="已核实补报记录", score=80.0, level="A")
    publish_one(db, taxpayers, A)
    with db.write() as s:  # B's next year is evaluated
        s.add(CreditRating(credit_code=B, name="乙公司", year=2026, score=72.0, level="C", deductions={},
                           unit=s.scalar(select(Unit).where(Unit.code == "110101"))))
    publish_one(db, taxpayers, B)
    publish_one(db, taxpayers, OUTSIDE)  # never rated: nothing to publish, nothing changes

    assert levels.stat().st_mtime_ns == written  # the register was not rewritten, only the changes beside it
    incremental = seen(taxpayers)
    assert incremental == sorted([(A, "A", 2025, "已修复"), (B, "C", 2026, "无"), (C, "B", 2024, "无"),
                                  (OUTSIDE, "M", 0, "无")])
    publish_all(db, taxpayers)
    assert seen(taxpayers) == incremental


def test_a_full_publish_voids_the_changes_written_before_it(history, tmp_path):
    """A change published one taxpayer at a time, then changed again without being published (a rewrite that
    failed): the next full publish shows the register as it is, not the older change."""
    db, taxpayers = history, import_store(tmp_path)
    publish_all(db, taxpayers)
    with db.write() as s:
        s.execute(update(CreditRating).where(CreditRating.credit_code == A, CreditRating.year == 2025).values(level="A"))
    publish_one(db, taxpayers, A)
    assert (A, "A", 2025, "无") in seen(taxpayers)
    with db.write() as s:
        s.execute(update(CreditRating).where(CreditRating.credit_code == A, CreditRating.year == 2025).values(level="C"))
    publish_all(db, taxpayers)
    assert store.credit_changes_path(taxpayers).exists()  # left where it is: its mark is the replaced file's
    assert (A, "C", 2025, "无") in seen(taxpayers)
    publish_one(db, taxpayers, C)  # a change after that starts the changes afresh, without A's old one
    assert (A, "C", 2025, "无") in seen(taxpayers)


def test_the_first_publish_of_one_taxpayer_publishes_them_all(history, tmp_path):
    db, taxpayers = history, import_store(tmp_path)
    publish_one(db, taxpayers, A)  # nothing published yet (a fresh install): the whole register, once
    assert seen(taxpayers) == sorted([(A, "B", 2025, "无"), (B, "D", 2025, "无"), (C, "B", 2024, "无"),
                                      (OUTSIDE, "M", 0, "无")])


def test_one_taxpayers_publish_waits_for_a_full_publish_in_progress(history, tmp_path):
    """A change committed while a full publish is reading the register is written after it, never under it."""
    db, taxpayers = history, import_store(tmp_path)
    publish_all(db, taxpayers)
    with db.write() as s:
        s.execute(update(CreditRating).where(CreditRating.credit_code == B).values(level="C"))
    done = threading.Event()

    def one():
        publish_one(db, taxpayers, B)
        done.set()

    with store.credit_levels_lock(taxpayers):  # as a full publish holds it from before its read
        worker = threading.Thread(target=one)
        worker.start()
        assert not done.wait(0.5)
    worker.join(10)
    assert done.is_set() and (B, "C", 2025, "无") in seen(taxpayers)


def test_the_levels_are_read_from_the_index_alone(history):
    """The latest-year query is an index-only read in credit-code order: SQLite's covering index over a range of
    codes, PostgreSQL's DISTINCT ON reading the same index backwards (asked not to scan the table, since a test's
    table is tiny)."""
    with history.read() as s:
        bind = s.connection()
        dialect = bind.dialect.name
        if dialect == "postgresql":
            bind.exec_driver_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
            plan = " ".join(r[0] for r in bind.exec_driver_sql("EXPLAIN " + evaluation._LATEST_LEVELS_POSTGRESQL))
            assert "Index Only Scan Backward using ix_credit_rating_latest" in plan, plan
            assert "Sort" not in plan, plan
        else:
            for query in (evaluation._COLUMNS_IN_RANGE, evaluation._LINES_IN_RANGE):
                for upper in ("", "AND credit_code < ? "):
                    sql = "EXPLAIN QUERY PLAN " + query.format(upper=upper)
                    plan = bind.exec_driver_sql(sql, (A,) if not upper else (A, C)).fetchall()
                    assert any("COVERING INDEX ix_credit_rating_latest (credit_code>?" in row[-1] for row in plan), plan
                    assert not any("TEMP B-TREE" in row[-1] for row in plan), plan


def test_a_register_read_in_ranges_publishes_every_taxpayer_once_at_its_latest_year(db, tmp_path, monkeypatch):
    """SQLite reads the register a range of codes at a time on several connections at once, each column joined by
    SQLite and cut at its fixed width, a taxpayer's older years dropped after: every taxpayer appears once, at its
    latest year's level, whatever the ranges, as PostgreSQL's one query gives. A range holding a code that is not 18
    characters (a record from before the codes were checked) is read line by line instead, and the same."""
    monkeypatch.setattr(evaluation, "BATCH_ROWS", 97)  # dozens of ranges from a few thousand entries
    monkeypatch.setattr(evaluation, "READERS", 3)
    levels = "ABMCD"
    with db.write() as s:
        unit_id = s.scalar(select(Unit.id).order_by(Unit.id).limit(1))
        rows, expected = [], {}
        for n in range(1500):  # inserted out of code order, as an import of several years is
            taxpayer = code(10_000 + (n * 7919) % 1500) if n % 500 else f"1234567890{n:07d}"  # 3 of 17 characters
            for year in range(2024 - n % 3, 2025):
                rows.append(dict(credit_code=taxpayer, name="某公司", year=year, score=80.0, level=levels[(n + year) % 5],
                                 deductions={}, unit_id=unit_id))
            expected[taxpayer] = (levels[(n + 2024) % 5], 2024, "无")
        s.execute(insert(CreditRating), rows)
    threads, lines = set(), []
    read, cut = evaluation._csv_batches, evaluation._latest_of
    monkeypatch.setattr(evaluation, "_csv_batches", lambda text: lines.append(text) or read(text))
    monkeypatch.setattr(evaluation, "_latest_of",
                        lambda *a: threads.add(threading.current_thread().name) or cut(*a))
    taxpayers = tmp_path / "taxpayers.duckdb"
    assert publish_all(db, taxpayers) == 1500
    published = pq.read_table(store.credit_levels_path(taxpayers)).to_pylist()
    assert {r["credit_code"]: (r["level"], r["year"], r["repair"]) for r in published} == expected
    assert len(published) == 1500
    if db.is_sqlite:
        with db.read() as s:
            assert len(evaluation._code_ranges(s.connection())) > 10
        assert len(threads) > 1 and all(t.startswith("credit-levels") for t in threads), threads
        assert 1 <= len(lines) <= 3 and all(b"1234567890" in text for text in lines)  # only the odd codes' ranges
