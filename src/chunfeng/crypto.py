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

import numpy as np
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
    all of them): `encrypt` for many values at once, e.g. the millions of contacts of a push store import. From
    `BULK_FROM` values the whole list is encrypted together (`_gcm_many`); the stored form is the same."""
    todo = [n for n, text in enumerate(texts) if text and not text.startswith(PREFIX)]
    # already a ciphertext (a restored backup carries them as they were): never encrypted twice
    out, nonces = list(texts), os.urandom(12 * len(todo))
    plains = [texts[n].encode() for n in todo]
    sealed = _gcm_many(key, plains, nonces) if len(todo) >= BULK_FROM else [
        _gcm_one(key, plain, nonces[12 * k:12 * k + 12]) for k, plain in enumerate(plains)]
    for n, body in zip(todo, sealed, strict=True):
        out[n] = PREFIX + base64.b64encode(body).decode()
    return out


def _gcm_one(key: bytes, plain: bytes, nonce: bytes) -> bytes:
    """nonce + ciphertext + tag, by OpenSSL's SM4-GCM."""
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    body = enc.update(plain) + enc.finalize()
    return nonce + body + enc.tag


# From this many values `encrypt_with` seals them together: below it numpy's per-call costs outweigh the saving.
BULK_FROM = 64


def _gcm_many(key: bytes, plains: list[bytes], nonces: bytes) -> list[bytes]:
    """`_gcm_one` of each value, byte for byte, for many at once. OpenSSL's SM4-GCM builds a cipher context (a key
    schedule) per value, most of the cost for names and addresses; here the block cipher runs once over every
    value's counter blocks (SM4 in ECB over J0, J0+1, … — GCM's CTR, NIST SP 800-38D §7.1) and GHASH is computed
    for all values together, block by block, by tables of multiplication by H. Decryption stays OpenSSL's, which
    checks every tag: `tests/test_crypto.py` holds the two to the same bytes on every length."""
    n = len(plains)
    lengths = np.fromiter(map(len, plains), dtype=np.int64, count=n)
    blocks = (lengths + 15) // 16
    first = np.zeros(n, np.int64)  # each value's first data block
    np.cumsum(blocks[:-1], out=first[1:])
    owner = np.repeat(np.arange(n), blocks)
    index = np.arange(owner.size) - first[owner]  # a data block's place in its value
    nonce_rows = np.frombuffer(nonces, np.uint8).reshape(n, 12)
    counters = np.empty((n + owner.size, 16), np.uint8)  # every J0 (counter 1), then each data block's (2, 3, …)
    counters[:n, :12], counters[n:, :12] = nonce_rows, nonce_rows[owner]
    counters[:n, 12:] = np.frombuffer((1).to_bytes(4, "big"), np.uint8)
    counters[n:, 12:] = (index + 2).astype(">u4").view(np.uint8).reshape(-1, 4)
    ecb = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    stream = np.frombuffer(ecb.update(counters.tobytes()) + ecb.finalize(), np.uint8).reshape(-1, 16)
    padded = b"".join(p + bytes(-len(p) % 16) for p in plains)
    sealed = np.frombuffer(padded, np.uint8).reshape(-1, 16) ^ stream[n:]
    # GHASH reads the last block of each value padded with zeros, not with the keystream's bytes.
    hashed = np.where(np.arange(16) < (lengths[owner] - 16 * index)[:, None], sealed, 0).astype(np.uint8)
    table, state = _ghash_table(key), np.zeros((n, 16), np.uint8)
    for j in range(int(blocks.max(initial=0))):
        rows = np.flatnonzero(blocks > j)
        state[rows] = _times_h(table, state[rows] ^ hashed[first[rows] + j])
    lengths_block = np.zeros((n, 16), np.uint8)
    lengths_block[:, 8:] = (lengths * 8).astype(">u8").view(np.uint8).reshape(-1, 8)  # no associated data
    tags = (_times_h(table, state ^ lengths_block) ^ stream[:n]).tobytes()
    data, out = sealed.tobytes(), []
    for k, (begin, length) in enumerate(zip((first * 16).tolist(), lengths.tolist(), strict=True)):
        out.append(nonces[12 * k:12 * k + 12] + data[begin:begin + length] + tags[16 * k:16 * k + 16])
    return out


def _gf_times(x: int, y: int) -> int:
    """x·y in GCM's GF(2^128), blocks as big-endian integers (SP 800-38D §6.3, Algorithm 1)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ (0xE1 << 120) if v & 1 else v >> 1
    return z


@lru_cache(maxsize=4)
def _ghash_table(key: bytes) -> np.ndarray:
    """T[k, b] = (the block with byte b at position k) · H, H = SM4_K(0¹²⁸): multiplying by H is linear, so
    X·H is the XOR of T[k, X_k] over the 16 bytes of X."""
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    h = int.from_bytes(enc.update(bytes(16)) + enc.finalize(), "big")
    table = np.zeros((16, 256, 16), np.uint8)
    for k in range(16):
        for bit in range(8):
            product = _gf_times(1 << (8 * (15 - k) + bit), h)
            table[k, 1 << bit] = np.frombuffer(product.to_bytes(16, "big"), np.uint8)
        for b in range(3, 256):
            low = b & -b
            if b != low:
                table[k, b] = table[k, low] ^ table[k, b ^ low]
    return table.view(np.uint64).reshape(16, 256, 2)


def _times_h(table: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    columns = np.ascontiguousarray(blocks.T)  # np.take over a contiguous column: tens of times faster than indexing
    product = np.take(table[0], columns[0], axis=0)
    for k in range(1, 16):
        product ^= np.take(table[k], columns[k], axis=0)
    return product.view(np.uint8).reshape(-1, 16)


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

    def bind_many(self, values: list[str | None]) -> list[str | None]:
        """`process_bind_param` of a column's values at once (`db.copy_rows`)."""
        return encrypt_with(encryption_key(), values)

    def process_result_value(self, value, dialect):
        return decrypt(value)
