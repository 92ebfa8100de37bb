"""Evidence files: checked by content (not by name), kept in the file store (chunfeng.files), and served back
only as downloads with their checked type."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from chunfeng.files import TYPES, safe_name, sniff, store_after_commit, stored_path, upload_problem
from chunfeng.ledger.errors import LedgerInvalid, LedgerNotFound
from chunfeng.ledger.models import Evidence, ProgressReport
from chunfeng.ledger.reporting import get_report
from chunfeng.org import audit
from chunfeng.org.access import Actor, SystemActor, authorize
from chunfeng.org.errors import Forbidden


def check_file(filename: str, data: bytes, max_bytes: int) -> str:
    """The file's checked type, or LedgerInvalid naming the file: run on every file before anything is stored."""
    if (problem := upload_problem(filename, data, max_bytes)) is not None:
        raise LedgerInvalid(problem, field="evidence")
    return sniff(data)


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
