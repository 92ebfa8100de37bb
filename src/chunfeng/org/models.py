"""Tables of the organisation: the bureau hierarchy, its users and their sessions, the audit log."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from chunfeng.crypto import Encrypted
from chunfeng.db import Base, utcnow


class Unit(Base):
    """A unit of the tax administration: the national bureau, a department, a provincial bureau, …"""

    __tablename__ = "org_unit"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"), index=True)
    # Codes from the root down, each followed by "/": a subtree is one prefix match.
    path: Mapped[str] = mapped_column(String(400), index=True)
    sort: Mapped[int] = mapped_column(Integer, default=0)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])

    def contains(self, other: Unit) -> bool:
        return other.path.startswith(self.path)

    @validates("code")
    def _check_code(self, _key: str, code: str) -> str:
        # The last guard for any path that creates a unit; imports refuse such rows first, naming the row.
        if not re.fullmatch(r"[0-9A-Za-z_-]{1,32}", code or ""):
            raise ValueError(f"unit code {code!r}: letters, digits, _ and - only, at most 32")
        return code


class User(Base):
    __tablename__ = "org_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    roles: Mapped[str] = mapped_column(String(200), doc="comma-separated role names")
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A taxpayer's account: whose person it is (credit code) and in which capacity (法定代表人, 财务负责人, 办税人员).
    taxpayer_code: Mapped[str | None] = mapped_column(String(18), index=True)
    taxpayer_role: Mapped[str | None] = mapped_column(String(16))
    # An initial or reset password must be changed at the next login; any password expires after a while.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The TOTP second factor's shared secret (RFC 6238), set when the user enrols; required of administrators.
    totp_secret: Mapped[str | None] = mapped_column(Encrypted, doc="SM4: whoever reads the table cannot make codes")
    # RFC 6238 §5.2: the time step of the last code accepted; a code of that step or an earlier one is refused.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # A secret the server issued for (re-)enrolment, kept until a code from it confirms it: the client never chooses.
    totp_pending_secret: Mapped[str | None] = mapped_column(Encrypted)

    unit: Mapped[Unit] = relationship(lazy="joined")

    @property
    def unit_code(self) -> str:
        return self.unit.code

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(r for r in self.roles.split(",") if r)


class PasswordHistory(Base):
    """A user's earlier password hashes: a new password may not be one of the last few."""

    __tablename__ = "org_password_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("org_user.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LoginFailure(Base):
    """Wrong passwords (or second factors) typed for a user name from one address, and until when that address is
    locked out of that user name. The lock is per address, so a stranger typing wrong passwords cannot lock an
    official out of their own desk; the user name is kept as typed, so an unknown name locks exactly like a real
    one and the lockout does not tell which names exist."""

    __tablename__ = "org_login_failure"
    __table_args__ = (UniqueConstraint("username", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class UserSession(Base):
    """A login. The cookie carries a random token; only its digest is stored."""

    __tablename__ = "org_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("org_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship(lazy="joined")


class AuditEntry(Base):
    """One link of the audit chain. `digest` covers every other column and the previous digest."""

    __tablename__ = "org_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[str] = mapped_column(String(32), doc="UTC, ISO 8601 with microseconds: hashed as stored")
    actor: Mapped[str] = mapped_column(String(64))
    actor_unit: Mapped[str] = mapped_column(String(32), default="")
    action: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str] = mapped_column(String(50), default="")
    object_id: Mapped[str] = mapped_column(String(100), default="")
    before: Mapped[str] = mapped_column(Text, default="null", doc="canonical JSON")
    after: Mapped[str] = mapped_column(Text, default="null", doc="canonical JSON")
    outcome: Mapped[str] = mapped_column(String(16), default="", doc="success, failure or denied")
    source: Mapped[str] = mapped_column(String(64), default="", doc="the request's address, or cli")
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    digest_version: Mapped[int] = mapped_column(Integer, default=0, doc="0: unkeyed SM3 (entries written before "
                                                "migration 0012); 1: HMAC-SM3 under the audit key")
