"""Backup and restore: every table and the file store in one archive, the same on SQLite and PostgreSQL.

The archive is a tar.gz of `manifest.json` (schema version, row counts, a SHA-256 of every member),
`tables/<table>.jsonl` (one row per line, in the schema's dependency order) and `files/…` (evidence and
attachments, stored by hash). It is logical rather than a copy of the database file, so a SQLite backup
restores into PostgreSQL and back. The manifest carries an HMAC-SM3 under a key derived from the data key:
whoever holds an archive but not the deployment's key can change a row (a county account made an
administrator) but not recompute the MAC. Restore checks the MAC, that every member is a plain file inside
its folder (`files/../..` would write outside the file store), and every checksum, all before it touches
anything; then it replaces everything in one transaction: a damaged or forged archive changes nothing.
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

from chunfeng import __version__, crypto
from chunfeng.db import Database
from chunfeng.errors import Invalid
from chunfeng.files import EXPORTS
from chunfeng.models import Base
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor

FORMAT = 2  # 2: the manifest carries an HMAC-SM3; 1 had none and is refused


class BackupError(Invalid):
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


def _manifest_mac(manifest: dict) -> str:
    return crypto.mac("backup", audit.canonical({k: v for k, v in manifest.items() if k != "hmac_sm3"}).encode())


def backup(db: Database, *, files: Path, out: Path, actor: Actor | None = None) -> BackupInfo:
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
            # Exports waiting to be fetched are personal lists kept a day at most: not copied into archives.
            for path in sorted(p for p in files.rglob("*") if p.is_file() and not p.name.endswith(".part")
                               and p.relative_to(files).parts[0] != EXPORTS):
                _add(tar, f"files/{path.relative_to(files).as_posix()}", path.read_bytes(), sums)
                count += 1
        schema = db.schema_version()
        manifest = {"format": FORMAT, "chunfeng": __version__, "schema": schema, "created": datetime.now().isoformat(),
                    "rows": rows, "sha256": sums}
        manifest["hmac_sm3"] = _manifest_mac(manifest)
        data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    partial.replace(out)
    with db.write() as session:
        audit.record(session, actor=actor or SystemActor(), action="backup.created", object_type="backup",
                     object_id=out.name, after={"rows": sum(rows.values()), "files": count, "schema": schema,
                                                "sha256": hashlib.sha256(out.read_bytes()).hexdigest()})
    return BackupInfo(out, rows, count, schema)


def _member_problem(member: tarfile.TarInfo, tables: set[str]) -> str | None:
    """Why a member may not be restored, or None: a plain file, named as backup() names them, inside its folder."""
    name = member.name
    if not member.isreg():
        kind = "链接" if member.issym() or member.islnk() else "目录" if member.isdir() else "设备或特殊文件"
        return f"“{name}”是{kind},备份中只应有普通文件"
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or "\x00" in name or any(p in ("", ".", "..") for p in parts):
        return f"“{name}”的路径越出了备份的目录(绝对路径或含 ..)"
    if name == "manifest.json" or (parts[0] == "files" and len(parts) > 1):
        return None
    if len(parts) == 2 and parts[0] == "tables" and parts[1].endswith(".jsonl") and parts[1][:-6] in tables:
        return None
    return f"“{name}”不是春风备份中的内容"


def restore(db: Database, *, files: Path, archive: Path, actor: Actor | None = None) -> BackupInfo:
    """Replace every table's rows and the file store with the archive's, after checking it whole: its MAC, every
    member's name and kind, every checksum. Nothing is written before all of them hold."""
    tables = Base.metadata.sorted_tables
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                if problem := _member_problem(member, {t.name for t in tables}):
                    raise BackupError(f"{archive}:拒绝恢复,{problem}")
                if member.name in members:
                    raise BackupError(f"{archive}:拒绝恢复,“{member.name}”在备份中出现了两次")
                members[member.name] = tar.extractfile(member).read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{archive}:无法读取备份文件({exc})") from None
    if "manifest.json" not in members:
        raise BackupError(f"{archive}:不是春风的备份(缺少 manifest.json)")
    try:
        manifest = json.loads(members.pop("manifest.json"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except ValueError:
        raise BackupError(f"{archive}:备份清单 manifest.json 无法读取") from None
    if manifest.get("format") == 1:
        raise BackupError("这是旧格式(1)的备份,清单没有认证码,无法确认未被改动,拒绝恢复;请用本版本重新备份")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"备份格式 {manifest.get('format')} 不受支持(本版本为 {FORMAT})")
    if not crypto.same(str(manifest.get("hmac_sm3", "")), _manifest_mac(manifest)):
        raise BackupError("备份清单的认证码(HMAC-SM3)不符:备份被改动过,或不是用本部署的数据密钥(CHUNFENG_DATA_KEY)"
                          "制作的;拒绝恢复,未做任何改动")
    sums = manifest["sha256"]
    if set(sums) != set(members):
        raise BackupError(f"备份内容与清单不符:{sorted(set(sums) ^ set(members))[:5]}")
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != sums[name]:
            raise BackupError(f"备份中的 {name} 已损坏(SHA-256 不符)")
    root = files.resolve()
    targets = {}
    for name in members:
        if name.startswith("files/"):
            target = (files / name[len("files/"):]).resolve()
            if not target.is_relative_to(root):  # a link already in the file store would lead out of it
                raise BackupError(f"{archive}:拒绝恢复,“{name}”会写到文件库 {files} 之外")
            targets[name] = target
    db.upgrade()
    if manifest["schema"] != db.schema_version():
        raise BackupError(f"备份的数据库版本 {manifest['schema']} 与当前版本 {db.schema_version()} 不同,"
                          f"请用相同版本的春风恢复")
    try:
        rows = {table.name: [{k: _decode(v) for k, v in json.loads(line).items()}
                             for line in members.get(f"tables/{table.name}.jsonl", b"").decode().splitlines() if line]
                for table in tables}
    except (ValueError, AttributeError) as exc:
        raise BackupError(f"{archive}:备份中的数据行无法读取({exc})") from None
    replaced, _ = audit.read_head()  # where the log ended before: the restore's entry says what it took back
    for name, target in targets.items():  # stored by content hash: writing them first never misleads the rows
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(members[name])
    with db.write() as session:
        for table in reversed(tables):
            session.execute(table.delete())
        for table in tables:
            batch = rows[table.name]
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
        entry = audit.record(session, actor=actor or SystemActor(), action="backup.restored", object_type="backup",
                             object_id=archive.name, before={"audit_head": replaced.seq if replaced else None},
                             after={"created": manifest.get("created"), "rows": sum(manifest["rows"].values()),
                                    "files": len(targets), "schema": manifest["schema"]})
        end = audit.Head(entry.seq, entry.digest)
    # The restored log legitimately ends earlier than the one it replaced: its head starts again from here.
    audit.reset_head(end.seq, end.digest)
    return BackupInfo(archive, manifest["rows"], len(targets), manifest["schema"])
