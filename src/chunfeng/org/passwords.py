"""Argon2id password hashes, and a login check that costs the same whether or not the user exists."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chunfeng.settings import DEFAULTS

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that both paths run one Argon2 verification.
_DUMMY_HASH = _hasher.hash("chunfeng-no-such-user")

MIN_LENGTH = 8  # the floor under any configured length
DEFAULT_MIN_LENGTH = DEFAULTS.password_min_length  # the entry points pass the configured one


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, *, username: str = "", min_length: int = DEFAULT_MIN_LENGTH) -> str | None:
    """Why a new password is refused, or None: length, three of four character classes, not the user name."""
    least = max(MIN_LENGTH, min_length)
    if len(password) < least:
        return f"密码至少需要 {least} 位"
    classes = sum((any(c.isupper() for c in password), any(c.islower() for c in password),
                   any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))
    if classes < 3:
        return "密码需包含大写字母、小写字母、数字、符号中的至少三类"
    if len(username) >= 3 and username.lower() in password.lower():  # "li" in "Li-si-…" is no weakness
        return "密码不能包含用户名"
    return None
