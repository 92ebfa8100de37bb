"""The audit chain: intact after real changes, and broken at the right place by an edit, a deletion or a swap."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import delete, select, update

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


def test_outcome_and_source_are_part_of_the_digest(db, system):
    with db.write() as s:
        audit.record(s, actor=system, action="org.login.failed", outcome="failure", source="10.1.2.3")
        audit.record(s, actor=system, action="test.thing.changed")  # the command line: source "cli"
    with db.read() as s:
        first, second = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert (first.outcome, first.source, second.outcome, second.source) == ("failure", "10.1.2.3", "success", "cli")
    for column, forged in (("source", "192.168.0.9"), ("outcome", "success"), ("source", "")):
        with db.write() as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 1).values({column: forged}))
        with db.read() as s:
            assert audit.verify(s).broken_at == 1, column
        with db.write() as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(outcome="failure", source="10.1.2.3"))
    with db.read() as s:
        assert audit.verify(s).ok


def _as_written_before_the_key(db, *, outcome_column: bool) -> None:
    """Rewrite the log as the code before migration 0012 wrote it (unkeyed SM3; before 0010 also without outcome
    and source), when there was no head file either."""
    with db.write() as s:
        prev = audit.GENESIS
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            if not outcome_column:
                e.outcome, e.source = "", ""
            e.prev_digest, e.digest_version = prev, 0
            fields = [str(e.seq), e.at, e.actor, e.actor_unit, e.action, e.object_type, e.object_id, e.before, e.after,
                      e.prev_digest] + ([e.outcome, e.source] if outcome_column else [])
            e.digest = prev = audit.sm3("\x1f".join(fields))
    audit.head_path().unlink()


def test_entries_from_before_the_key_keep_their_digests(db, system):
    for outcome_column in (False, True):
        fill(db, system, n=3)
        _as_written_before_the_key(db, outcome_column=outcome_column)
        with db.write() as s:
            assert audit.verify(s).ok  # and the head file starts here
            audit.record(s, actor=system, action="test.after.upgrade")  # new entries chain on to the old, keyed
        with db.read() as s:
            assert audit.verify(s).ok and audit.verify(s).checked == 4
            assert [e.digest_version for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))] == [0, 0, 0, 1]
        with db.write() as s:
            s.execute(delete(AuditEntry))


def _recompute(s, *, start: int, keyed: bool) -> None:
    """What someone who can write the database but has no key can do: recompute every digest from `start` on,
    with plain SM3 (the scheme they can compute) — as keyed entries, or passed off as entries from before the key."""
    entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    prev = entries[start - 2].digest if start > 1 else audit.GENESIS
    for e in entries[start - 1:]:
        e.prev_digest = prev
        if not keyed:
            e.digest_version = 0
        fields = [str(e.seq), e.at, e.actor, e.actor_unit, e.action, e.object_type, e.object_id, e.before, e.after,
                  e.prev_digest, e.outcome, e.source] + ([str(e.digest_version)] if keyed else [])
        e.digest = prev = audit.sm3("\x1f".join(fields))


def test_a_rewritten_and_recomputed_chain_is_found(db, system):
    for start, keyed, broken_at, reason in ((3, True, 3, "摘要不符"), (3, False, 3, "摘要没有密钥"),
                                            (1, False, 5, "与链头不符")):
        fill(db, system)
        with db.write() as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="nobody"))
            _recompute(s, start=start, keyed=keyed)
        with db.read() as s:
            report = audit.verify(s)
        assert not report.ok and report.broken_at == broken_at and reason in report.reason, (start, keyed, report)
        with db.write() as s:
            s.execute(delete(AuditEntry))
        audit.head_path().unlink()


def test_deleting_the_newest_entries_is_found(db, system):
    fill(db, system)
    with db.write() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    with db.read() as s:
        report = audit.verify(s)
    assert not report.ok and "截断" in report.reason and "第 5 条" in report.reason and report.checked == 3
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url}
    run = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "verify"], env=env, capture_output=True, text=True)
    assert run.returncode == 1 and "截断" in run.stderr


def test_the_head_file_itself_is_checked(db, system):
    fill(db, system, n=1)
    fill(db, system, n=1)
    path = audit.head_path()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all('"mac":' in line for line in lines)  # one line after each commit
    path.write_text(lines[0].replace('"seq":1', '"seq":9') + "\n")  # pushed forward without the key
    with db.read() as s:
        assert "认证码不符" in audit.verify(s).reason
    path.unlink()  # the keyed log can no longer show it was not cut short
    with db.read() as s:
        assert "不存在" in audit.verify(s).reason
    audit.reset_head(2, s.scalar(select(AuditEntry.digest).where(AuditEntry.seq == 2)))
    path.write_text(path.read_text() + '{"seq": 3, "digest"')  # a line another process is still writing
    with db.read() as s:
        assert audit.verify(s).ok


def test_entries_of_several_processes_keep_the_head(db, system):
    fill(db, system, n=2)
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url}
    runs = [subprocess.Popen([sys.executable, "-m", "chunfeng", "audit", "export", "--out", os.devnull], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    assert all(run.wait() == 0 for run in runs)
    with db.read() as s:
        assert audit.verify(s).ok and audit.count(s) == 5
    head, problem = audit.read_head()
    assert not problem and head.seq == 5


def test_archive_of_a_period_verifies_on_its_own_and_shows_tampering(db, system, tmp_path):
    import gzip
    import json

    fill(db, system, n=6)
    with db.write() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq <= 2).values(at="2026-01-15T08:00:00.000000Z"))
        # Re-chained as if written then: the period boundary must cut a valid chain.
        prev = audit.GENESIS
        for entry in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            entry.prev_digest = prev
            entry.digest = prev = audit._digest_of(entry)
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url}
    archive = tmp_path / "audit-2026H1.jsonl.gz"
    run = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "export", "--out", str(archive),
                          "--since", "2026-01-01", "--until", "2026-07-01"], env=env, capture_output=True, text=True)
    assert run.returncode == 0 and "已导出 2 条" in run.stdout, run.stderr
    assert audit.verify_archive(archive).ok and audit.verify_archive(archive).checked == 2
    everything = tmp_path / "all.jsonl.gz"
    with db.write() as s:
        assert audit.export_archive(s, everything) == 7  # six, and the export of the first archive
    lines = gzip.open(everything, "rt", encoding="utf-8").read().splitlines()
    assert json.loads(lines[0])["format"] == audit.ARCHIVE_FORMAT
    checked = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "verify", "--archive", str(everything)],
                             env=env, capture_output=True, text=True)
    assert checked.returncode == 0 and "共 7 条记录" in checked.stdout
    for name, forged in (("edited", lines[:3] + [lines[3].replace('"object_id":"2"', '"object_id":"9"')] + lines[4:]),
                         ("deleted", lines[:3] + lines[4:]), ("swapped", lines[:3] + [lines[4], lines[3]] + lines[5:])):
        bad = tmp_path / f"{name}.jsonl.gz"
        with gzip.open(bad, "wt", encoding="utf-8") as f:
            f.write("\n".join(forged) + "\n")
        report = audit.verify_archive(bad)
        assert not report.ok and report.broken_at == 3, name
    not_an_archive = tmp_path / "x.jsonl.gz"
    not_an_archive.write_bytes(b"plain")
    assert "无法读取" in audit.verify_archive(not_an_archive).reason
    refused = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "export", "--out", str(tmp_path / "y.gz"),
                              "--since", "上个月"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "--since 应为日期" in refused.stderr and not (tmp_path / "y.gz").exists()


def test_configuration_changes_are_recorded_in_the_chain(db):
    from chunfeng.settings import Settings
    from tests.conftest import TEST_DATA_KEY

    base = Settings(database_url="sqlite:///x.db", secret_key="first-secret-" + "x" * 40, environment="test",
                    data_key=TEST_DATA_KEY)
    with db.write() as s:
        assert audit.record_configuration(s, base) is not None
        assert audit.record_configuration(s, base) is None  # unchanged: nothing written
        changed = base.model_copy(update={"login_max_failures": 3, "secret_key": "second-secret-" + "y" * 40})
        entry = audit.record_configuration(s, changed)
    assert entry.action == "config.changed" and '"changed":["login_max_failures","secret_key"]' in entry.before
    assert "second-secret" not in entry.after and "first-secret" not in entry.before + entry.after  # digests only
    assert '"login_max_failures":3' in entry.after
    with db.read() as s:
        assert audit.verify(s).ok and audit.count(s) == 2


def test_an_archive_kept_elsewhere_shows_the_newest_entries_deleted(db, system, tmp_path):
    fill(db, system, n=4)
    archive = tmp_path / "a.jsonl.gz"
    with db.write() as s:
        audit.export_archive(s, archive)
        assert audit.compare_with_archive(s, archive) is None
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 3))  # the newest two: the chain alone still holds
    with db.read() as s:
        assert "截断" in audit.verify(s).reason  # the signed head shows it too
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url}
    run = subprocess.run([sys.executable, "-m", "chunfeng", "audit", "verify", "--archive", str(archive)], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 1 and "第 3 条记录已不在审计日志中" in run.stderr


def test_an_archive_recomputed_without_the_key_is_found(db, system, tmp_path):
    import gzip
    import json

    fill(db, system, n=4)
    archive = tmp_path / "a.jsonl.gz"
    with db.read() as s:
        audit.export_archive(s, archive)
    header, *rows = [json.loads(line) for line in gzip.open(archive, "rt", encoding="utf-8")]
    assert all(row["digest_version"] == audit.KEYED for row in rows) and audit.verify_archive(archive).ok
    rows[1]["actor"], prev = "nobody", rows[0]["digest"]
    for row in rows[1:]:  # recomputed with what the archive's holder can compute
        row["prev_digest"] = prev
        row["digest"] = prev = audit.sm3("\x1f".join(str(row[k]) for k in (
            "seq", "at", "actor", "actor_unit", "action", "object_type", "object_id", "before", "after", "prev_digest",
            "outcome", "source", "digest_version")))
    forged = tmp_path / "forged.jsonl.gz"
    with gzip.open(forged, "wt", encoding="utf-8") as f:
        f.write("\n".join(audit.canonical(r) for r in [header, *rows]) + "\n")
    report = audit.verify_archive(forged)
    assert report.broken_at == 2 and "摘要不符" in report.reason


def test_every_operation_the_code_records_has_a_chinese_name():
    """Issue 14.10: the audit page said `ledger.report.approved`. Every code written in the source — and each
    appeal step recorded as appeals.<step> — reads as Chinese, not as itself."""
    import re
    from pathlib import Path

    from chunfeng.appeals.services import MOVES
    from chunfeng.org import audit_names

    source = Path(__file__).parents[2] / "src" / "chunfeng"
    codes = {m for p in source.rglob("*.py") for m in re.findall(r'action="([a-z_]+\.[a-z_.]+)"', p.read_text())}
    codes |= {f"appeals.{step}" for step in MOVES}
    assert len(codes) > 40
    unnamed = sorted(code for code in codes if audit_names.action_name(code) == code)
    assert not unnamed, unnamed
    assert audit_names.action_name("ledger.report.approved") == "台账·审核通过进展报告"
    assert audit_names.action_name("nothing.we.know") == "nothing.we.know"
    assert audit_names.changes('{"status": "ongoing", "percent": 60}', '{"status": "done", "percent": 100}') == [
        "状态: ongoing → done", "完成百分比: 60 → 100"]
    assert audit_names.beijing_time("2026-12-06T18:30:00.123456") == "2026-12-07 02:30:00"


def test_the_head_written_is_the_newest_entry_the_transaction_kept(db, system):
    """The head is taken from the entries the transaction wrote (no query while the chain's lock is held, issue 16):
    one in a savepoint rolled back is not it, and a transaction that kept none writes none."""
    fill(db, system, n=2)
    with db.write() as s:
        kept = audit.record(s, actor=system, action="test.thing.changed", object_id="kept")
        with s.begin_nested() as savepoint:
            audit.record(s, actor=system, action="test.thing.changed", object_id="dropped")
            savepoint.rollback()
    head, problem = audit.read_head()
    assert problem == "" and (head.seq, head.digest) == (kept.seq, kept.digest) == (3, kept.digest)
    with db.write() as s:
        with s.begin_nested() as savepoint:
            audit.record(s, actor=system, action="test.thing.changed", object_id="dropped")
            savepoint.rollback()
    assert audit.read_head()[0].seq == 3
    with db.read() as s:
        report = audit.verify(s)
        assert report.ok and report.checked == 3 and report.last.seq == 3
