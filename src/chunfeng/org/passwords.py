"""Argon2id password hashes, and a login check that costs the same whether or not the user exists."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that both paths run one Argon2 verification.
_DUMMY_HASH = _hasher.hash("chunfeng-no-such-user")

MIN_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None. (Issue 7 brings the full policy.)"""
    if len(password) < MIN_LENGTH:
        return f"密码至少需要 {MIN_LENGTH} 位"
    if password.isdigit() or password.isalpha():
        return "密码需同时包含字母和数字或符号"
    return None
