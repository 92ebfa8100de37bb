"""Grouped writes (`Database.write_grouped`, issue 16): on PostgreSQL each commits without waiting for the disk (the
audit chain's lock is not held across a flush) and is answered after a flush shared with the others. One failing
loses none of the others, nothing is answered before it is on disk, and the audit chain the filings write under its
lock still holds, with filings coming in at once over HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import event, func, select, text

from chunfeng.appeals.models import Appeal
from chunfeng.db import NulInText
from chunfeng.org import audit
from chunfeng.org.models import AuditEntry, Unit


def _unit(session, code: str) -> Unit:
    unit = Unit(code=code, name=f"单位{code}", level="county", path=f"{code}/")
    session.add(unit)
    session.flush()
    audit.record(session, actor=audit.SystemActor(username="tester"), action="test.unit.created",
                 object_type="unit", object_id=unit.id)
    return unit


def _grouped(db, works) -> list:
    """Each of `works` handed to `write_grouped` from its own thread while a first write is still open (on SQLite
    they queue behind it, on PostgreSQL they run beside it and queue for the audit chain's lock). Per work, its
    answer or its error."""
    hold, started = threading.Event(), threading.Event()

    def first(session):
        started.set()
        hold.wait(10)
        return _unit(session, "G0").code

    results: list = [None] * len(works)

    def call(i, work):
        try:
            results[i] = db.write_grouped(work)
        except Exception as exc:  # noqa: BLE001 - the error is the answer under test
            results[i] = exc

    with ThreadPoolExecutor(len(works) + 1) as pool:
        lead = pool.submit(db.write_grouped, first)
        assert started.wait(10)
        futures = [pool.submit(call, i, work) for i, work in enumerate(works)]
        threading.Event().wait(0.3)  # all started while the first is open
        hold.set()
        assert lead.result(10) == "G0"
        for future in futures:
            future.result(10)
    return results


def test_one_failing_write_of_a_group_loses_none_of_the_others(db):
    def good(code):
        def work(session):
            unit = _unit(session, code)
            with db.read() as other:  # not yet visible to anyone else: the group has not committed
                assert other.scalar(select(Unit).where(Unit.code == code)) is None
            return unit.code
        return work

    def refused(session):
        _unit(session, "BAD1")
        raise ValueError("refused half-way")

    def nul(session):  # a statement the database layer refuses
        session.add(Unit(code="BAD2", name="空字符\x00", level="county", path="BAD2/"))
        session.flush()

    results = _grouped(db, [good("G1"), refused, good("G2"), nul, good("G3")])
    assert results[0] == "G1" and results[2] == "G2" and results[4] == "G3"
    assert isinstance(results[1], ValueError) and isinstance(results[3], NulInText)
    with db.read() as session:
        codes = set(session.scalars(select(Unit.code).where(Unit.code.like("G%") | Unit.code.like("BAD%"))))
        assert codes == {"G0", "G1", "G2", "G3"}  # answered ⇒ stored; refused ⇒ nothing of it
        assert audit.verify(session).ok  # the refused writes' entries went with their savepoints
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "test.unit.created")) == 4


def test_a_group_whose_commit_fails_is_tried_again_write_by_write(db):
    def good(code):
        return lambda session: _unit(session, code).code

    def fails_at_commit(session):
        _unit(session, "C9")

        def refuse(_session):
            raise RuntimeError("the commit failed")
        event.listen(session, "before_commit", refuse, once=True)

    results = _grouped(db, [good("C1"), fails_at_commit, good("C2")])
    assert results[0] == "C1" and results[2] == "C2" and isinstance(results[1], RuntimeError)
    with db.read() as session:
        assert set(session.scalars(select(Unit.code).where(Unit.code.like("C%")))) == {"C1", "C2"}
        assert audit.verify(session).ok


def test_a_write_is_answered_once_on_disk_and_the_audit_head_not_before(db):
    """PostgreSQL commits these writes without waiting for the disk (the audit lock is not held across a flush):
    the answer must still wait for the flush, and the head written outside the database must not run ahead of it."""
    if db.is_sqlite:
        pytest.skip("SQLite commits each write with its flush")

    def work(session):
        _unit(session, "D1")
        return session.scalar(text("SELECT pg_current_wal_insert_lsn()"))  # the commit record comes after this

    written = db.write_grouped(work)
    with db.read() as session:
        assert session.scalar(text("SELECT pg_current_wal_flush_lsn() >= CAST(:written AS pg_lsn)"),
                              {"written": written})
        head, problem = audit.read_head()
        assert not problem and head.seq == session.scalar(select(func.max(AuditEntry.seq)))
        assert audit.verify(session).ok


@pytest.fixture
def public(with_plan, server):
    return server


def test_filings_at_once_over_http_are_all_stored_and_the_audit_chain_holds(db, public):
    def file(n):
        with httpx.Client(base_url=public, timeout=60) as client:
            return client.post("/api/appeals", json={"kind": "complaint", "text": f"窗口排队太久(#{n})",
                                                     "phone": f"139{n:08d}"})
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(file, range(48)))
    assert [a.status_code for a in answers] == [201] * 48
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 48 and len({a.json()["number"] for a in answers}) == 48
    with db.read() as session:
        assert set(session.scalars(select(Appeal.id))) == ids
        received = list(session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "appeals.received")))
        assert sorted(map(int, received)) == sorted(ids)  # one entry per filing, each its own
        report = audit.verify(session)
        assert report.ok, report.reason
