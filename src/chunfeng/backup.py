"""Backup and restore: every table and the file store in one archive, the same on SQLite and PostgreSQL.

The archive is a tar.gz of `manifest.json` (schema version, row counts, a SHA-256 of every member),
`tables/<table>.jsonl` (one row per line, in the schema's dependency order) and `files/…` (evidence and
attachments, stored by hash). It is logical rather than a copy of the database file, so a SQLite backup
restores into PostgreSQL and back. Restore checks every checksum first and replaces everything in one
transaction: a damaged archive changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, insert, select, text, type_coerce
from sqlalchemy.types import TypeDecorator

from chunfeng import __version__
from chunfeng.db import Database
from chunfeng.models import Base

FORMAT = 1


class BackupError(Exception):
    """An archive that cannot be restored, and why."""


def _encode(value):
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    return value


def _decode(value):
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "$dt":
            return datetime.fromisoformat(raw)
        if tag == "$d":
            return date.fromisoformat(raw)
        if tag == "$dec":
            return Decimal(raw)
        if tag == "$b64":
            return base64.b64decode(raw)
    return value


@dataclass
class BackupInfo:
    path: Path
    rows: dict[str, int]
    files: int
    schema: str | None


def _add(tar: tarfile.TarFile, name: str, data: bytes, sums: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))
    sums[name] = hashlib.sha256(data).hexdigest()


def backup(db: Database, *, files: Path, out: Path) -> BackupInfo:
    """Write every row of every table and every stored file to `out` (a .tar.gz)."""
    sums: dict[str, str] = {}
    rows: dict[str, int] = {}
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    with tarfile.open(partial, "w:gz") as tar, db.read() as session:
        for table in Base.metadata.sorted_tables:
            order = [c for c in table.primary_key.columns] or list(table.columns)
            # Encrypted columns are read as stored: personal data stays SM4 ciphertext inside the archive too.
            columns = [type_coerce(c, c.type.impl).label(c.name) if isinstance(c.type, TypeDecorator) else c
                       for c in table.columns]
            lines = [json.dumps({k: _encode(v) for k, v in row._mapping.items()}, ensure_ascii=False)
                     for row in session.execute(select(*columns).order_by(*order))]
            rows[table.name] = len(lines)
            _add(tar, f"tables/{table.name}.jsonl", ("\n".join(lines) + "\n" if lines else "").encode(), sums)
        if files.exists():
            for path in sorted(p for p in files.rglob("*") if p.is_file() and not p.name.endswith(".part")):
                _add(tar, f"files/{path.relative_to(files).as_posix()}", path.read_bytes(), sums)
                count += 1
        schema = db.schema_version()
        manifest = {"format": FORMAT, "chunfeng": __version__, "schema": schema, "created": datetime.now().isoformat(),
                    "rows": rows, "sha256": sums}
        data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    partial.replace(out)
    return BackupInfo(out, rows, count, schema)


def restore(db: Database, *, files: Path, archive: Path) -> BackupInfo:
    """Replace every table's rows and the file store with the archive's, after checking it whole."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{archive}:无法读取备份文件({exc})") from None
    if "manifest.json" not in members:
        raise BackupError(f"{archive}:不是春风的备份(缺少 manifest.json)")
    manifest = json.loads(members.pop("manifest.json"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"备份格式 {manifest.get('format')} 不受支持(本版本为 {FORMAT})")
    sums = manifest["sha256"]
    if set(sums) != set(members):
        raise BackupError(f"备份内容与清单不符:{sorted(set(sums) ^ set(members))[:5]}")
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != sums[name]:
            raise BackupError(f"备份中的 {name} 已损坏(SHA-256 不符)")
    db.upgrade()
    if manifest["schema"] != db.schema_version():
        raise BackupError(f"备份的数据库版本 {manifest['schema']} 与当前版本 {db.schema_version()} 不同,"
                          f"请用相同版本的春风恢复")
    tables = Base.metadata.sorted_tables
    with db.write() as session:
        for table in reversed(tables):
            session.execute(table.delete())
        for table in tables:
            raw = members.get(f"tables/{table.name}.jsonl", b"").decode()
            batch = [{k: _decode(v) for k, v in json.loads(line).items()} for line in raw.splitlines() if line]
            for i in range(0, len(batch), 1000):
                session.execute(insert(table), batch[i:i + 1000])
        if db.engine.dialect.name == "postgresql":  # identity sequences continue after the restored ids
            for table in tables:
                pk = list(table.primary_key.columns)
                if len(pk) == 1 and pk[0].autoincrement is not False and isinstance(pk[0].type.python_type, type) \
                        and pk[0].type.python_type is int:
                    top = session.scalar(select(func.max(pk[0])))
                    session.execute(text("SELECT setval(pg_get_serial_sequence(:t, :c), :v, :called)"),
                                    {"t": table.name, "c": pk[0].name, "v": top or 1, "called": top is not None})
    count = 0
    for name, data in members.items():
        if name.startswith("files/"):
            target = files / name[len("files/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            count += 1
    return BackupInfo(archive, manifest["rows"], count, manifest["schema"])
