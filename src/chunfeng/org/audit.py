"""The audit log: every change, who made it, when, before and after, as a keyed SM3 hash chain.

Each entry's digest covers its own columns and the digest of the entry before it, so editing,
deleting or reordering a stored entry breaks the chain at that point, which `verify` reports.
The digest is an HMAC-SM3 under a key derived from the data key, which the database does not
hold: whoever can write the database cannot recompute the chain after rewriting an entry. And
the chain's head (sequence, digest, time, MAC) is appended after each commit to a file outside
the database (`audit_head_file`), so deleting the newest entries, which leaves a shorter chain
that holds, shows too. Entries written before the key (digest_version 0) keep their unkeyed
digests and verify as before, but only as the chain's beginning.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from chunfeng import crypto
from chunfeng.db import AFTER_DURABLE, lock_for_append
from chunfeng.org.access import SystemActor
from chunfeng.org.errors import ValidationFailed
from chunfeng.org.models import AuditEntry

GENESIS = "0" * 64
KEYED = 1  # the digest_version of entries written now
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
    if entry.digest_version:
        return crypto.mac("audit", "\x1f".join([*fields, entry.outcome, entry.source, str(entry.digest_version)]).encode())
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
        digest_version=KEYED,
    )
    entry.digest = _digest_of(entry)
    session.add(entry)
    session.flush()
    _head_after_commit(session, entry)
    return entry


# --- the signed head, outside the database -----------------------------------------------------------------

log = logging.getLogger(__name__)
_COMPACT_AT = 1 << 20  # bytes: the head file is rewritten to its newest line when it grows past this


@dataclass
class Head:
    seq: int
    digest: str


# Where this process writes the signed head (`Settings.audit_head_path`), set by `configure` at each entry point:
# every write transaction appends to it, from deep inside any service.
_head_file: Path | None = None



def record_denied(db, *, actor: Any, object_type: str, object_id: str, reason: str) -> None:
    """A refused access, a security event, in a transaction of its own (the refused work's is rolled back). The id
    may be a request's path, which can carry %00 that no database stores: recorded escaped."""
    with db.write() as session:
        record(session, actor=actor, action="access.denied", object_type=object_type,
               object_id=object_id.replace("\x00", "\\x00")[:100], after={"reason": reason}, outcome="denied")


def configure(head_file: Path) -> None:
    global _head_file
    _head_file = Path(head_file)


def head_path() -> Path:
    if _head_file is None:
        raise RuntimeError("chunfeng.org.audit: no audit head file configured; the entry point must call "
                           "chunfeng.runtime.configure(settings) before the audit log is written or checked")
    return _head_file


def _head_line(seq: int, digest: str) -> str:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    return canonical({"seq": seq, "digest": digest, "at": at,
                      "mac": crypto.mac("audit", f"head\x1f{seq}\x1f{digest}\x1f{at}".encode())}) + "\n"


def _append_head(seq: int, digest: str) -> None:
    """One line in one O_APPEND write: lines of several processes interleave whole, in any order (the reader takes
    the highest sequence). A lost line only makes the head older, which never raises a false alarm."""
    path = head_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, _head_line(seq, digest).encode())
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > _COMPACT_AT:
            head, _ = read_head()
            if head is not None:
                reset_head(head.seq, head.digest)
    except OSError as exc:  # the change is committed: an unwritable head weakens the check, it must not fail the request
        log.warning("audit head not written to %s: %s", path, exc)


def reset_head(seq: int, digest: str) -> None:
    """Replace the head file with one line (after a restore, whose chain legitimately ends earlier)."""
    path = head_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    partial.write_text(_head_line(seq, digest), encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(path)


def read_head() -> tuple[Head | None, str]:
    """The head with the highest sequence, or what is wrong with the file; (None, "") when there is none."""
    path = head_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"链头文件 {path} 无法读取:{exc}"
    best = None
    lines = text.split("\n")
    for number, line in enumerate(lines[:-1], 1):  # the last piece is empty, or a line still being written
        try:
            row = json.loads(line)
            good = crypto.same(row["mac"], crypto.mac(
                "audit", f"head\x1f{row['seq']}\x1f{row['digest']}\x1f{row['at']}".encode()))
        except (ValueError, KeyError, TypeError, AttributeError):
            good = False
        if not good:
            return None, f"链头文件 {path} 第 {number} 行的认证码不符(链头文件被改动,或数据密钥不同)"
        if best is None or row["seq"] > best.seq:
            best = Head(int(row["seq"]), str(row["digest"]))
    return best, ""


def _head_after_commit(session: Session, entry: AuditEntry) -> None:
    session.info.setdefault("audit_entries", []).append(entry)
    if not session.info.get("audit_hooked"):
        session.info["audit_hooked"] = True
        event.listen(session, "before_commit", _note_chain_end)
        event.listen(session, "after_commit", _write_chain_end)
        event.listen(session, "after_rollback", _forget_chain_end)


def _note_chain_end(session: Session) -> None:
    # The newest of this transaction's entries that is still in it (a savepoint rolled back takes its entries out
    # of the session): the end about to be committed, known without a query. Asking the database instead cost a
    # round trip while the chain's lock is held, which every filing in every process waits for (issue 16).
    written = [entry for entry in session.info.pop("audit_entries", ()) if inspect(entry).persistent]
    if written:
        end = max(written, key=lambda entry: entry.seq)
        session.info["audit_head"] = Head(end.seq, end.digest)


def _write_chain_end(session: Session) -> None:
    if end := session.info.pop("audit_head", None):
        if (later := session.info.get(AFTER_DURABLE)) is not None:  # never a head the disk might not hold yet
            later.append(lambda: _append_head(end.seq, end.digest))
        else:
            _append_head(end.seq, end.digest)


def _forget_chain_end(session: Session) -> None:
    # Fired by a savepoint's rollback too, after which the transaction's other entries still stand: those rolled
    # back are told apart by `persistent` at the commit, not forgotten here.
    session.info.pop("audit_head", None)


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None = None  # seq of the first entry that does not hold
    reason: str = ""
    last: Head | None = None  # the newest entry checked
    keyed: bool = False  # whether any entry carries a keyed digest

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(session: Session) -> ChainReport:
    """Walk the chain in order and report the first link that does not hold; then hold its end against the signed
    head outside the database, which shows a chain recomputed from an earlier point or cut short."""
    head, problem = read_head()  # before the chain: every head read belongs to a transaction already committed
    report = _check_chain(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(2000), GENESIS, 1)
    if not report.ok:
        return report
    if problem:
        return ChainReport(report.checked, 0, problem)
    if head is None:
        if report.keyed:
            return ChainReport(report.checked, 0, f"链头文件 {head_path()} 不存在,无法确认最新的记录未被删除")
    elif report.last is None or head.seq > report.last.seq:
        # Entries committed after this session's snapshot began are not in it: look again, outside it.
        with session.get_bind().connect() as conn:
            newest = conn.execute(select(func.max(AuditEntry.seq))).scalar() or 0
            digest = conn.execute(select(AuditEntry.digest).where(AuditEntry.seq == head.seq)).scalar()
        if digest is None:
            return ChainReport(report.checked, head.seq, f"审计日志被截断:链头记录到第 {head.seq} 条,"
                                                         f"日志中只到第 {newest} 条")
        if digest != head.digest:
            return ChainReport(report.checked, head.seq, f"第 {head.seq} 条记录与链头不符(日志被改写)")
        return report
    else:
        digest = session.scalar(select(AuditEntry.digest).where(AuditEntry.seq == head.seq))
        if digest != head.digest:
            return ChainReport(report.checked, head.seq, f"第 {head.seq} 条记录与链头不符(日志被改写)")
    if report.last is not None and (head is None or head.seq < report.last.seq):
        _append_head(report.last.seq, report.last.digest)  # a chain from before the head file starts being anchored
    return report


def _check_chain(entries: Iterable[AuditEntry], expected_prev: str | None, expected_seq: int | None) -> ChainReport:
    """`None` for where the chain starts when the entries begin part-way (an archive of a period)."""
    checked, keyed, last = 0, False, None
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"第 {expected_seq} 条记录缺失(下一条是第 {entry.seq} 条)")
        if expected_prev is not None and entry.prev_digest != expected_prev:
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录与前一条不相连(被删除、插入或调换了顺序)")
        if keyed and not entry.digest_version:  # unkeyed digests exist only from before the key: never after one
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录的摘要没有密钥,却在有密钥的记录之后(被改写)")
        if not crypto.same(_digest_of(entry), str(entry.digest)):
            return ChainReport(checked, entry.seq, f"第 {entry.seq} 条记录的内容与其摘要不符(被改动过)")
        keyed = keyed or bool(entry.digest_version)
        expected_prev, expected_seq, checked = entry.digest, entry.seq + 1, checked + 1
        last = Head(entry.seq, entry.digest)
    return ChainReport(checked, last=last, keyed=keyed)


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


ARCHIVE_FORMAT = "chunfeng-audit-archive/1"
_ARCHIVED = ("seq", "at", "actor", "actor_unit", "action", "object_type", "object_id", "before", "after", "outcome",
             "source", "prev_digest", "digest", "digest_version")


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
            # Archives written before digest_version existed hold only unkeyed entries.
            return _check_chain((AuditEntry(**{"digest_version": 0, **json.loads(line)}) for line in f), None, None)
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
