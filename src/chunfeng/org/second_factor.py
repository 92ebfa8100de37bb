"""The TOTP second factor (RFC 6238): each code is accepted once, and only the server chooses secrets."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from chunfeng.db import utcnow
from chunfeng.org import audit
from chunfeng.org.models import User
from chunfeng.org.passwords import verify_password

STEP_SECONDS = 30
CODE = re.compile(r"\d{6}")


def matching_step(secret: str, code: str, now: datetime | None = None) -> int | None:
    """The time step `code` belongs to: now's or the one either side (phone clocks drift); None if none."""
    code = (code or "").strip()
    if not secret or not CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int((now or utcnow()).replace(tzinfo=UTC).timestamp()) // STEP_SECONDS
    found = None
    for step in (current - 1, current, current + 1):  # all three compared: the time taken says nothing
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def accept_code(session: Session, user: User, code: str, now: datetime | None = None) -> bool:
    """Whether `code` is a fresh code of the user's secret, claiming its time step if so (RFC 6238 §5.2: a code is
    good once, so one seen over a shoulder or in a proxy log cannot open a second session).

    The step is claimed by a conditional UPDATE rather than read-then-write: of two logins racing with one code,
    the second waits for the first's row lock and then finds the step taken."""
    step = matching_step(user.totp_secret or "", code, now)
    if step is None:
        return False
    claimed = session.execute(
        update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)).rowcount
    return claimed == 1


def issue_secret(*, session: Session, user: User) -> str:
    """A new secret for the user's authenticator app, kept server-side until a code from it confirms it."""
    user.totp_pending_secret = pyotp.random_base32()
    return user.totp_pending_secret


def confirm(*, session: Session, user: User, code: str, current: str = "", now: datetime | None = None) -> str:
    """Make the pending secret the user's second factor once their app shows a code from it. Replacing a secret
    already set also needs the current code or the password: an unattended session must not be enough to move the
    second factor to another phone. Returns the reason for a refusal, "" when done; a wrong current factor is
    audited as denied, so the caller commits either way."""
    if not user.totp_pending_secret:
        return "请先生成新的动态口令密钥"
    step = matching_step(user.totp_pending_secret, code, now)
    if step is None:
        return "动态口令不正确,请核对手机时间后重试"
    if user.totp_secret and not (accept_code(session, user, current, now)
                                 or verify_password(user.password_hash, current or "")):
        audit.record(session, actor=user, action="org.totp.change_refused", object_type="user",
                     object_id=user.username, outcome="denied")
        return "当前动态口令或登录密码不正确"
    user.totp_secret, user.totp_pending_secret, user.totp_last_step = user.totp_pending_secret, None, step
    audit.record(session, actor=user, action="org.totp.enrolled", object_type="user", object_id=user.username)
    return ""
