"""Evidence files: checked by content (not by name), stored once by SHA-256 outside the web root,
and served back only as downloads with their checked type."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound
from chunfeng.ledger.models import Evidence, ProgressReport
from chunfeng.ledger.services import get_report
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.errors import Forbidden

TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ofd": "application/ofd",
}


_DIGEST = re.compile(r"[0-9a-f]{64}")


def sniff(data: bytes) -> str | None:
    """The file's real type from its bytes, or None when it is not one of the accepted kinds."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return None
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if "OFD.xml" in names:
            return "ofd"
    return None


def safe_name(filename: str, kind: str) -> str:
    stem = re.sub(r"[^\w\u4e00-\u9fff.()（）-]+", "_", Path(filename or "evidence").stem).strip("._") or "evidence"
    return f"{stem[:80]}.{kind}"


def stored_path(store: Path, digest: str) -> Path:
    return store / digest[:2] / digest


def store_bytes(store: Path, data: bytes) -> str:
    """Keep `data` once under its SHA-256 (shared by evidence and complaint attachments); the digest."""
    digest = hashlib.sha256(data).hexdigest()
    path = stored_path(store, digest)
    if path.exists():
        path.touch()  # fresh again: the orphan collector leaves young files alone while their rows commit
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # never a half-written file under the final name
    return digest


def store_after_commit(session: Session, store: Path, data: bytes) -> str:
    """The digest `data` is kept under once the session's transaction commits, and only then: a refused or
    rolled-back change leaves no file behind."""
    event.listen(session, "after_commit", lambda _session: store_bytes(store, data), once=True)
    return hashlib.sha256(data).hexdigest()


def collect_orphans(store: Path, referenced: set[str], *, older_than: timedelta = timedelta(hours=1),
                    now: datetime | None = None) -> list[Path]:
    """Remove stored files (and half-written .part files) no row references, once older than `older_than`
    (younger ones may belong to a transaction about to commit); the paths removed."""
    cutoff = (now or datetime.now()).timestamp() - older_than.total_seconds()
    removed = []
    if not store.is_dir():
        return removed
    for path in store.rglob("*"):
        name = path.name.removesuffix(".part")
        if not path.is_file() or path.is_symlink() or not _DIGEST.fullmatch(name) or path.parent.name != name[:2]:
            continue
        if (path.suffix == ".part" or name not in referenced) and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def check_file(filename: str, data: bytes, max_bytes: int) -> str:
    """The file's checked type, or LedgerInvalid naming the file: run on every file before anything is stored."""
    if not data:
        raise LedgerInvalid(f"{filename}:文件为空")
    if len(data) > max_bytes:
        raise LedgerInvalid(f"{filename}:文件 {len(data) / 1048576:.1f} MB,超过上限 {max_bytes // 1048576} MB")
    kind = sniff(data)
    if kind is None:
        raise LedgerInvalid(f"{filename}:不是允许的文件类型(按内容识别);可上传 {'、'.join(TYPES).upper()}")
    return kind


def attach(*, session: Session, actor: Actor, report_id: int, filename: str, data: bytes, store: Path,
           max_bytes: int) -> Evidence:
    """Evidence for a report; its file is written when the transaction commits."""
    kind = check_file(filename, data, max_bytes)
    report: ProgressReport = get_report(session=session, actor=actor, report_id=report_id)
    authorize(actor, "ledger.report", report.assignment.unit)
    if not isinstance(actor, SystemActor) and actor.unit.id != report.assignment.unit_id:
        raise Forbidden("只能为本单位的报告上传佐证材料")
    if report.state == "approved":
        raise LedgerInvalid("报告已审核通过,不能再添加佐证材料")
    digest = store_after_commit(session, store, data)
    evidence = Evidence(report_id=report.id, sha256=digest, filename=safe_name(filename, kind), content_type=TYPES[kind],
                        size=len(data), uploaded_by=actor.username)
    session.add(evidence)
    session.flush()
    audit.record(session, actor=actor, action="ledger.evidence.attached", object_type="report", object_id=report.id,
                 after={"file": evidence.filename, "sha256": digest, "size": len(data), "type": kind})
    return evidence


def open_evidence(*, session: Session, actor: Actor, evidence_id: int, store: Path) -> tuple[Path, Evidence]:
    evidence = session.get(Evidence, evidence_id)
    if evidence is None:
        raise LedgerNotFound(f"没有编号为 {evidence_id} 的佐证材料")
    get_report(session=session, actor=actor, report_id=evidence.report_id)  # authorises the read
    path = stored_path(store, evidence.sha256)
    if not path.exists():
        raise LedgerNotFound(f"佐证材料 {evidence.filename} 的文件已不在存储中")
    return path, evidence
