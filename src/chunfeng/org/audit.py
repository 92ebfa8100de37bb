"""The audit log: every change, who made it, when, before and after, as an SM3 hash chain.

Each entry's digest covers its own columns and the digest of the entry before it, so editing,
deleting or reordering a stored entry breaks the chain at that point, which `verify` reports.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chunfeng.db import lock_for_append
from chunfeng.org.access import SystemActor
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import AuditEntry

GENESIS = "0" * 64
OUTCOMES = ("success", "failure", "denied")

# Where the current request came from: set by the web layer for each request, "cli" for the command line, so
# services record the source address without knowing about requests.
request_source: ContextVar[str] = ContextVar("request_source", default="cli")
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
    if entry.outcome or entry.source:  # entries written before these columns existed keep their digests
        fields += [entry.outcome, entry.source]
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
    outcome: str = "success",
    source: str | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction. `action` is namespaced: `org.user.created`; the source is the
    current request's address unless given."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
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
        outcome=outcome,
        source=(request_source.get() if source is None else source)[:64],
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
    return _check_chain(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(2000), GENESIS, 1)


def _check_chain(entries: Iterable[AuditEntry], expected_prev: str | None, expected_seq: int | None) -> ChainReport:
    """`None` for where the chain starts when the entries begin part-way (an archive of a period)."""
    checked = 0
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"第 {expected_seq} 条记录缺失(下一条是第 {entry.seq} 条)")
        if expected_prev is not None and entry.prev_digest != expected_prev:
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录与前一条不相连(被删除、插入或调换了顺序)")
        if _digest_of(entry) != entry.digest:
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录的内容与其摘要不符(被改动过)")
        expected_prev, expected_seq, checked = entry.digest, entry.seq + 1, checked + 1
    return ChainReport(checked)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


ARCHIVE_FORMAT = "chunfeng-audit-archive/1"
_ARCHIVED = ("seq", "at", "actor", "actor_unit", "action", "object_type", "object_id", "before", "after", "outcome",
             "source", "prev_digest", "digest")


def check_period(since: str, until: str) -> None:
    for name, value in (("起始日期 --since", since), ("截止日期 --until", until)):
        try:
            if value:
                date.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(f"{name} 应为日期,如 2026-01-01,而不是“{value}”") from None


def export_archive(session: Session, out: Path, *, since: str = "", until: str = "") -> int:
    """Write the entries of a period (`at` from `since` up to, not including, `until`; ISO dates) to a gzipped
    JSON Lines file with every column, so the archive can be verified on its own, years later, by `verify_archive`.
    Chunfeng never deletes audit entries: archives are for keeping them beyond the database."""
    query = select(AuditEntry).order_by(AuditEntry.seq)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    count = 0
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.write(canonical({"format": ARCHIVE_FORMAT, "since": since, "until": until,
                           "exported_at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n")
        for entry in session.scalars(query).yield_per(2000):
            f.write(canonical({name: getattr(entry, name) for name in _ARCHIVED}) + "\n")
            count += 1
    return count


def verify_archive(path: Path) -> ChainReport:
    """Check an archive's entries against their digests and each other: an edited, deleted or reordered line
    breaks it. Its first entry links to one before the period, which only the full log can confirm."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            header = json.loads(f.readline() or "{}")
            if header.get("format") != ARCHIVE_FORMAT:
                return ChainReport(0, 0, "不是春风审计日志归档文件")
            return _check_chain((AuditEntry(**json.loads(line)) for line in f), None, None)
    except (OSError, EOFError, ValueError, TypeError) as exc:
        return ChainReport(0, 0, f"归档文件无法读取:{exc}")


_CONFIG_SECRETS = {"secret_key", "data_key", "database_url", "push_channels"}


def record_configuration(session: Session, settings: Any) -> AuditEntry | None:
    """Integrity of the configuration by SM3: the settings a server starts with are compared with those recorded
    last; a difference is written to the chain, with what changed (secrets, the database URL and channel URLs, which
    may carry passwords, only as their SM3 digests). Nothing is written when nothing changed."""
    values = {k: (sm3(canonical(v)) if k in _CONFIG_SECRETS else v) for k, v in sorted(settings.model_dump().items())}
    digest = sm3(canonical(values))
    last = session.scalar(select(AuditEntry).where(AuditEntry.action == "config.changed").order_by(AuditEntry.seq.desc())
                          .limit(1))
    previous = json.loads(last.after) if last is not None else {}
    if previous.get("digest") == digest:
        return None
    before = previous.get("settings", {})
    changed = sorted(k for k in values.keys() | before.keys() if values.get(k) != before.get(k))
    return record(session, actor=SystemActor(), action="config.changed", object_type="settings", object_id=digest[:16],
                  before={"digest": previous.get("digest"), "changed": changed} if last else None,
                  after={"digest": digest, "settings": values})


def compare_with_archive(session: Session, path: Path) -> str | None:
    """An archive kept outside the database anchors the log: every entry it holds must still be in the log with
    the same digest, so deleting the newest entries (which leaves a shorter chain that verifies) shows up here.
    Returns what disagrees, or None."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        f.readline()
        archived = {(row := json.loads(line))["seq"]: row["digest"] for line in f}
    if not archived:
        return None
    stored = dict(session.execute(select(AuditEntry.seq, AuditEntry.digest).where(AuditEntry.seq.in_(archived))).all())
    for seq in sorted(archived):
        if seq not in stored:
            return f"归档中的第 {seq} 条记录已不在审计日志中(日志被截断或删除)"
        if stored[seq] != archived[seq]:
            return f"第 {seq} 条记录与归档不一致(日志被改写)"
    return None
