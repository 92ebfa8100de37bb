"""The audit chain: intact after real changes, and broken at the right place by an edit, a deletion or a swap."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select, update

from chunfeng.org import audit
from chunfeng.org.models import AuditEntry


def fill(db, system, n=5):
    with db.write() as s:
        for i in range(n):
            audit.record(s, actor=system, action="test.thing.changed", object_type="thing", object_id=i,
                         before={"value": i}, after={"value": i + 1, "password": "secret"})


def test_chain_holds_and_masks_secrets(db, system):
    fill(db, system)
    with db.read() as s:
        report = audit.verify(s)
        assert report.ok and report.checked == 5
        entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert entries[0].prev_digest == audit.GENESIS
        assert all(b.prev_digest == a.digest for a, b in zip(entries, entries[1:], strict=False))
        assert "secret" not in entries[0].after and '"password":"***"' in entries[0].after


def test_edited_entry_is_found(db, system):
    fill(db, system)
    with db.write() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(after='{"value":100}'))
    with db.read() as s:
        report = audit.verify(s)
    assert not report.ok and report.broken_at == 3 and "改动" in report.reason and report.checked == 2


def test_deleted_entry_is_found(db, system):
    fill(db, system)
    with db.write() as s:
        s.delete(s.scalar(select(AuditEntry).where(AuditEntry.seq == 2)))
    with db.read() as s:
        report = audit.verify(s)
    assert report.broken_at == 2 and "缺失" in report.reason


def test_deleted_entry_with_renumbering_is_found(db, system):
    fill(db, system)
    with db.write() as s:
        s.delete(s.scalar(select(AuditEntry).where(AuditEntry.seq == 2)))
        s.flush()
        for seq in (3, 4, 5):
            s.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(seq=seq - 1))
    with db.read() as s:
        report = audit.verify(s)
    assert report.broken_at == 2 and "不相连" in report.reason


def test_swapped_entries_are_found(db, system):
    fill(db, system)
    with db.write() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(seq=-1))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=4))
        s.execute(update(AuditEntry).where(AuditEntry.seq == -1).values(seq=3))
    with db.read() as s:
        assert audit.verify(s).broken_at == 3


def test_cli_reports_the_first_broken_link(db, system):
    fill(db, system)
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url}
    ok = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "verify"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "共 5 条记录" in ok.stdout
    with db.write() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(actor="mallory"))
    bad = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "verify"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "第 4 条" in bad.stderr
