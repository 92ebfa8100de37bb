"""The audit log: every change, who made it, when, before and after, as an SM3 hash chain.

Each entry's digest covers its own columns and the digest of the entry before it, so editing,
deleting or reordering a stored entry breaks the chain at that point, which `verify` reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chunfeng.db import lock_for_append
from chunfeng.org.models import AuditEntry

GENESIS = "0" * 64
_SECRET_KEYS = {"password", "password_hash", "token", "token_digest", "secret"}


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if k in _SECRET_KEYS else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def sm3(text: str) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(text.encode("utf-8"))
    return digest.finalize().hex()


def _digest_of(entry: AuditEntry) -> str:
    fields = [
        str(entry.seq), entry.at, entry.actor, entry.actor_unit, entry.action,
        entry.object_type, entry.object_id, entry.before, entry.after, entry.prev_digest,
    ]
    return sm3("\x1f".join(fields))


def record(
    session: Session,
    *,
    actor: Any,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction. `action` is namespaced: `org.user.created`."""
    lock_for_append(session, "chunfeng.audit")
    last = session.execute(select(AuditEntry.seq, AuditEntry.digest).order_by(AuditEntry.seq.desc()).limit(1)).first()
    entry = AuditEntry(
        seq=(last.seq + 1) if last else 1,
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        actor=actor.username,
        actor_unit=actor.unit_code,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=canonical(_mask(before)),
        after=canonical(_mask(after)),
        prev_digest=last.digest if last else GENESIS,
    )
    entry.digest = _digest_of(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None = None  # seq of the first entry that does not hold
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session) -> ChainReport:
    """Walk the chain in order and report the first link that does not hold."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(2000):
        if entry.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"第 {expected_seq} 条记录缺失(下一条是第 {entry.seq} 条)")
        if entry.prev_digest != expected_prev:
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录与前一条不相连(被删除、插入或调换了顺序)")
        if _digest_of(entry) != entry.digest:
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录的内容与其摘要不符(被改动过)")
        expected_prev, expected_seq, checked = entry.digest, entry.seq + 1, checked + 1
    return ChainReport(checked)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0
