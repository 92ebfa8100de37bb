"""国密 at rest: personal data encrypted with SM4-GCM, found by exact value through a keyed SM3 digest.

Two subkeys are derived from the configured data key (`CHUNFENG_DATA_KEY`, 32 hex digits) with HMAC-SM3, one
to encrypt and one to digest, so a digest never helps decrypt. A stored value reads `sm4gcm:` + base64 of the
12-byte nonce, the ciphertext and the 16-byte tag; an empty value stays empty (nothing to protect, and "no
phone" stays a cheap comparison). The `cryptography` package's SM4 and SM3 are the software implementation; a
certified cryptographic module (a PCI-E card or a server cipher machine) would hold the key and do these two
operations in production, behind the same two functions.
"""

from __future__ import annotations

import base64
import hmac as _hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator

from chunfeng.errors import ServerFault

PREFIX = "sm4gcm:"
# Process-wide, as the `Encrypted` column type that uses it is: set by `configure` at each entry point (the app
# factory, the CLI, test fixtures), never read from the environment behind the caller's back.
_data_key: str | None = None


class DecryptionFailed(ServerFault):
    """A stored value that the configured key does not open (a wrong key, or a changed value)."""


def configure(data_key: str) -> None:
    """Set this process's data key (32 hex digits; `Settings.effective_data_key`)."""
    global _data_key
    bytes.fromhex(data_key)  # a malformed key fails here, at start-up, not at the first encrypted row
    _data_key = data_key


def _master() -> str:
    if _data_key is None:
        raise RuntimeError("chunfeng.crypto: no data key configured; the entry point must call "
                           "chunfeng.runtime.configure(settings) before personal data is read or written")
    return _data_key


def _sm3_hmac(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


@lru_cache(maxsize=4)
def _subkeys(master_hex: str) -> tuple[bytes, bytes]:
    master = bytes.fromhex(master_hex)
    return _sm3_hmac(master, b"chunfeng encrypt")[:16], _sm3_hmac(master, b"chunfeng digest")


def _keys() -> tuple[bytes, bytes]:
    return _subkeys(_master())


@lru_cache(maxsize=8)
def _purpose_key(master_hex: str, purpose: str) -> bytes:
    return _sm3_hmac(bytes.fromhex(master_hex), b"chunfeng " + purpose.encode())


def mac(purpose: str, data: bytes) -> str:
    """HMAC-SM3 of `data` under a key derived from the data key for one purpose ("audit", "backup"): whoever holds
    the database or a backup but not the deployment's key can neither forge nor recompute it."""
    return _sm3_hmac(_purpose_key(_master(), purpose), data).hex()


def same(a: str, b: str) -> bool:
    """Compare two MACs in constant time."""
    return _hmac.compare_digest(a.encode(), b.encode())


def encrypt(text: str | None) -> str | None:
    return encrypt_with(encryption_key(), [text])[0]


def encryption_key() -> bytes:
    """The SM4 key personal data is encrypted under: for `encrypt_with` in worker processes, which read no settings."""
    return _keys()[0]


def encrypt_with(key: bytes, texts: list[str | None]) -> list[str | None]:
    """Each text SM4-GCM-encrypted under `key`, each with its own random nonce (one read of the random source for
    all of them): `encrypt` for many values at once, e.g. the millions of contacts of a push store import."""
    algorithm, nonces, out = algorithms.SM4(key), os.urandom(12 * len(texts)), []
    for n, text in enumerate(texts):
        if not text or text.startswith(PREFIX):
            out.append(text)  # already a ciphertext (a restored backup carries them as they were): never encrypted twice
            continue
        nonce = nonces[12 * n:12 * n + 12]
        enc = Cipher(algorithm, modes.GCM(nonce)).encryptor()
        body = enc.update(text.encode()) + enc.finalize()
        out.append(PREFIX + base64.b64encode(nonce + body + enc.tag).decode())
    return out


def decrypt(value: str | None) -> str | None:
    if not value or not value.startswith(PREFIX):
        return value  # empty, or written before encryption was turned on
    key, _ = _keys()
    raw = base64.b64decode(value[len(PREFIX):])
    nonce, body, tag = raw[:12], raw[12:-16], raw[-16:]
    try:
        dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        return (dec.update(body) + dec.finalize()).decode()
    except InvalidTag:
        raise DecryptionFailed("个人信息无法解密:数据密钥不对,或密文已被改动") from None


def digest(text: str) -> str:
    """The keyed SM3 digest that finds a value by exact match without decrypting anything."""
    _, key = _keys()
    return _sm3_hmac(key, text.strip().encode()).hex() if text else ""


class Encrypted(TypeDecorator):
    """A text column stored SM4-encrypted and read back in clear."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return encrypt(value)

    def process_result_value(self, value, dialect):
        return decrypt(value)
