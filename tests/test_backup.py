"""Backup and restore: back up a database with a plan, a ledger, appeals and stored files, destroy it all,
restore, and compare every table and file; a damaged archive is refused and changes nothing."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import select

from chunfeng import backup
from chunfeng.appeals import intake
from chunfeng.models import Base
from chunfeng.org import audit

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
    info = backup.backup(db, files=files, out=archive)
    assert info.files == len(stored) == 3 and info.rows["appeal"] == 3 and info.rows["org_audit"] > 0
    assert b"13812345678" not in gzip.decompress(archive.read_bytes())  # personal data stays encrypted
    with db.write() as s:  # destroy
        for t in reversed(Base.metadata.sorted_tables):
            s.execute(t.delete())
    for p in files.rglob("*"):
        if p.is_file():
            p.unlink()
    backup.restore(db, files=files, archive=archive)
    assert snapshot(db) == before
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
