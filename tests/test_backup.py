"""Backup and restore: back up a database with a plan, a ledger, appeals and stored files, destroy it all,
restore, and compare every table and file; a damaged archive is refused and changes nothing, and so are hostile
ones: a member that leads out of the file store, a link, an archive whose rows were changed with the checksums
recomputed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import date

import pytest
from sqlalchemy import select

from chunfeng import backup
from chunfeng.appeals import intake
from chunfeng.models import Base
from chunfeng.org import audit
from chunfeng.org.access import SystemActor
from chunfeng.org.models import AuditEntry, User

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def snapshot(db) -> dict:
    with db.read() as s:
        return {t.name: [tuple(r) for r in s.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Base.metadata.sorted_tables}


@pytest.fixture
def filled(bureau, tmp_path):
    files = tmp_path / "files"
    with bureau.write() as s:
        for n in range(3):
            intake.submit(session=s, today=date(2022, 9, 29), files=files, attachments=[(f"证明{n}.pdf", PDF + bytes([n]))],
                           submission=intake.Submission(kind="complaint", text=f"办税服务厅排队太久了({n})",
                                                         region="110101", phone="13812345678"))
    return bureau, files


def test_backup_destroy_restore_compare(filled, tmp_path):
    db, files = filled
    before = snapshot(db)
    stored = {p.relative_to(files): p.read_bytes() for p in files.rglob("*") if p.is_file()}
    archive = tmp_path / "b.tar.gz"
    waiting = files / "exports" / "9" / "纳税人清单.xlsx"  # an export not yet fetched: a personal list for a day
    waiting.parent.mkdir(parents=True)
    waiting.write_bytes(b"91110000MA01 13812345678")
    info = backup.backup(db, files=files, out=archive)
    assert "exports/" not in str(tarfile.open(archive).getnames()) and b"91110000MA01" not in gzip.decompress(
        archive.read_bytes())
    waiting.unlink()
    assert info.files == len(stored) == 3 and info.rows["appeal"] == 3 and info.rows["org_audit"] > 0
    assert b"13812345678" not in gzip.decompress(archive.read_bytes())  # personal data stays encrypted
    with db.write() as s:  # destroy
        for t in reversed(Base.metadata.sorted_tables):
            s.execute(t.delete())
    for p in files.rglob("*"):
        if p.is_file():
            p.unlink()
    backup.restore(db, files=files, archive=archive)
    after = snapshot(db)
    restored = after.pop("org_audit")
    assert after == {k: v for k, v in before.items() if k != "org_audit"}
    assert restored[:-1] == before["org_audit"]  # the backup's own entry came after it was written
    with db.read() as s:
        assert s.scalar(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(1)) == "backup.restored"
    assert {p.relative_to(files): p.read_bytes() for p in files.rglob("*") if p.is_file()} == stored
    with db.read() as s:
        assert audit.verify(s).ok
    with db.write() as s:  # new rows continue after the restored ids
        made, _ = intake.submit(session=s, submission=intake.Submission(kind="demand", text="新的诉求", phone="13900001111"))
        assert made.id == max(r[0] for r in before["appeal"]) + 1


def test_a_damaged_archive_is_refused_and_changes_nothing(filled, tmp_path):
    db, files = filled
    archive = tmp_path / "b.tar.gz"
    backup.backup(db, files=files, out=archive)
    raw = bytearray(gzip.decompress(archive.read_bytes()))
    at = raw.find("办税服务厅".encode())
    raw[at:at + 3] = "税".encode()  # one character changed inside a table's rows
    damaged = tmp_path / "d.tar.gz"
    damaged.write_bytes(gzip.compress(bytes(raw)))
    before = snapshot(db)
    with pytest.raises(backup.BackupError, match="已损坏"):
        backup.restore(db, files=files, archive=damaged)
    not_an_archive = tmp_path / "x.tar.gz"
    not_an_archive.write_bytes(b"hello")
    with pytest.raises(backup.BackupError, match="无法读取"):
        backup.restore(db, files=files, archive=not_an_archive)
    assert snapshot(db) == before


def test_the_commands(filled, tmp_path):
    db, files = filled
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "CHUNFENG_DATA_DIR": str(files), "COLUMNS": "200"}
    archive = tmp_path / "cli.tar.gz"
    made = subprocess.run([sys.executable, "-m", "chunfeng", "backup", str(archive)], env=env, capture_output=True,
                          text=True)
    assert made.returncode == 0 and "3 个文件" in made.stdout, made.stderr
    restored = subprocess.run([sys.executable, "-m", "chunfeng", "restore", str(archive), "--yes"], env=env,
                              capture_output=True, text=True)
    assert restored.returncode == 0 and "已恢复" in restored.stdout, restored.stderr
    bad = subprocess.run([sys.executable, "-m", "chunfeng", "restore", str(tmp_path / "none.tar.gz"), "--yes"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "无法读取" in bad.stderr
    hostile = _rebuilt(archive, tmp_path / "hostile.tar.gz", lambda members: [*members, _file("files/../../x.txt")])
    refused = subprocess.run([sys.executable, "-m", "chunfeng", "restore", str(hostile), "--yes"], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "拒绝恢复" in refused.stderr and not (tmp_path / "x.txt").exists()
    with db.read() as s:  # the good restore before stands, audited, and the log holds
        assert s.scalar(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(1)) == "backup.restored"
        assert audit.verify(s).ok


def _rebuilt(archive, out, change, *, sign=False):
    """The archive as someone holding it could rebuild it: members changed, the manifest's SHA-256 sums recomputed
    (and, with `sign`, its MAC recomputed under a key of their own)."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()]
    manifest = json.loads(dict((m.name, d) for m, d in members)["manifest.json"])
    members = change([(m, d) for m, d in members if m.name != "manifest.json"])
    manifest["sha256"] = {m.name: hashlib.sha256(d).hexdigest() for m, d in members if m.isfile()}
    if sign:
        manifest["hmac_sm3"] = hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
    with tarfile.open(out, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out


def _file(name, data=b"written by the archive"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def test_members_outside_their_folder_are_refused_before_anything_changes(filled, tmp_path):
    db, files = filled
    archive = tmp_path / "b.tar.gz"
    backup.backup(db, files=files, out=archive)
    before, head = snapshot(db), audit.read_head()
    escaped = files.parent / "escaped.txt"
    for extra, reason in ((_file("files/../../escaped.txt"), "越出"), (_file("files/../escaped.txt"), "越出"),
                          (_file("/tmp/chunfeng-escaped.txt"), "越出"), (_file("tables/../../escaped.txt"), "越出"),
                          (_file("files/a\\..\\..\\escaped.txt"), "越出"),
                          (_link("files/passwd", "/etc/passwd"), "链接"),
                          (_link("files/hard", "manifest.json", tarfile.LNKTYPE), "链接"),
                          (_link("files/dev", "", tarfile.CHRTYPE), "设备"), (_file("notes.txt"), "不是春风备份"),
                          (_file("tables/not_a_table.jsonl"), "不是春风备份")):
        hostile = _rebuilt(archive, tmp_path / "h.tar.gz", lambda members, extra=extra: [*members, extra])
        with pytest.raises(backup.BackupError, match=reason) as refused:
            backup.restore(db, files=files, archive=hostile)
        assert extra[0].name in str(refused.value)
    twice = _rebuilt(archive, tmp_path / "t.tar.gz", lambda members: [*members, members[-1]])
    with pytest.raises(backup.BackupError, match="两次"):
        backup.restore(db, files=files, archive=twice)
    assert not escaped.exists() and not (tmp_path.parent / "escaped.txt").exists()
    assert snapshot(db) == before and audit.read_head() == head


def test_changed_rows_with_recomputed_checksums_are_refused(filled, make_user, tmp_path):
    db, files = filled
    make_user("county_user", "110000", ["viewer"])
    archive = tmp_path / "b.tar.gz"
    backup.backup(db, files=files, out=archive)

    def promote(members):
        changed = []
        for member, data in members:
            if member.name == "tables/org_user.jsonl":
                rows = [json.loads(line) for line in data.decode().splitlines()]
                for row in rows:
                    row["roles"] = "admin" if row["username"] == "county_user" else row["roles"]
                data = ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()
                member.size = len(data)
            changed.append((member, data))
        return changed

    before = snapshot(db)
    for sign in (False, True):
        forged = _rebuilt(archive, tmp_path / f"forged-{sign}.tar.gz", promote, sign=sign)
        with pytest.raises(backup.BackupError, match="认证码.*不符"):
            backup.restore(db, files=files, archive=forged)
    manifest_less = _rebuilt(archive, tmp_path / "old.tar.gz", promote)
    with tarfile.open(manifest_less, "r:gz") as tar:  # as the format before the MAC wrote it
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(manifest_less, "w:gz") as tar:
        for member, data in members:
            if member.name == "manifest.json":
                old = {k: v for k, v in json.loads(data).items() if k != "hmac_sm3"} | {"format": 1}
                data = json.dumps(old).encode()
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(backup.BackupError, match="旧格式"):
        backup.restore(db, files=files, archive=manifest_less)
    assert snapshot(db) == before
    with db.read() as s:
        assert s.scalar(select(User.roles).where(User.username == "county_user")) == "viewer"


def test_backup_and_restore_are_audited_and_the_log_verifies_after(filled, tmp_path):
    db, files = filled
    archive = tmp_path / "b.tar.gz"
    backup.backup(db, files=files, out=archive)
    with db.read() as s:
        made = s.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert made.action == "backup.created" and made.object_id == "b.tar.gz"
        assert hashlib.sha256(archive.read_bytes()).hexdigest() in made.after
    with db.write() as s:  # the log goes on after the backup: the restore takes it back to the archive's end
        for n in range(3):
            audit.record(s, actor=SystemActor(), action="test.after.backup", object_id=n)
    backup.restore(db, files=files, archive=archive)
    with db.read() as s:
        report = audit.verify(s)  # against the head too, which the restore started again
        assert report.ok, report.reason
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions[-1] == "backup.restored" and "test.after.backup" not in actions and "backup.created" not in actions
    with db.read() as s:  # and it says where the log it replaced ended
        restored = s.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    assert json.loads(restored.before) == {"audit_head": made.seq + 3}
