"""Personal data at rest: SM4-GCM in the database, clear through the application, found by keyed SM3 digest."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from chunfeng import crypto
from chunfeng.appeals import services
from chunfeng.appeals.models import Appeal
from chunfeng.org.errors import Forbidden
from chunfeng.org.models import AuditEntry
from chunfeng.settings import Settings
from tests.appeals.test_services import complaint, office, user  # noqa: F401  (fixture and helpers)


def test_round_trip_fresh_nonces_and_tampering():
    a, b = crypto.encrypt("13812345678"), crypto.encrypt("13812345678")
    assert a != b and a.startswith("sm4gcm:") and "13812345678" not in a
    assert crypto.decrypt(a) == crypto.decrypt(b) == "13812345678"
    assert crypto.encrypt("") == "" and crypto.decrypt("plain, written before") == "plain, written before"
    raw = bytearray(a.encode())
    raw[-3] = ord("A") if raw[-3] != ord("A") else ord("B")
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(raw.decode())
    assert crypto.digest("13812345678") == crypto.digest(" 13812345678 ") != crypto.digest("13812345679")


def test_a_different_key_does_not_open_the_data():
    stored = crypto.encrypt("zhang@example.com")
    crypto.configure("00112233445566778899aabbccddeeff")  # the next test is configured afresh (conftest)
    with pytest.raises(crypto.DecryptionFailed, match="数据密钥不对"):
        crypto.decrypt(stored)
    with pytest.raises(ValueError, match="32 hex digits"):
        Settings(data_key="not-hex")
    with pytest.raises(ValueError):
        crypto.configure("not-hex")


def test_an_unconfigured_process_refuses_instead_of_reading_the_environment(monkeypatch):
    monkeypatch.setattr(crypto, "_data_key", None)  # as a process whose entry point never configured it
    with pytest.raises(RuntimeError, match="runtime.configure"):
        crypto.encrypt("13812345678")
    with pytest.raises(RuntimeError, match="runtime.configure"):
        crypto.mac("audit", b"x")


def test_contacts_are_encrypted_in_the_database_and_found_by_digest(office):  # noqa: F811
    appeal_id, _ = complaint(office, phone="138-1234-5678")
    with office.read() as s:
        raw = s.execute(text("SELECT submitter, phone, email, phone_digest FROM appeal WHERE id = :i"),
                        {"i": appeal_id}).one()
        assert all(v.startswith("sm4gcm:") for v in raw[:3]) and "张三" not in str(raw) and "5678" not in raw[1]
        a = s.get(Appeal, appeal_id)
        assert (a.submitter, a.phone, a.email) == ("张三", "138-1234-5678", "zhang@example.com")
    with office.write() as s:
        found = services.find_by_phone(session=s, actor=user(office, "handler"), phone="13812345678")
        assert [x.id for x in found] == [appeal_id]
        assert services.find_by_phone(session=s, actor=user(office, "handler"), phone="13900000000") == []
        assert s.scalar(select(AuditEntry.after).where(AuditEntry.action == "appeals.contact.searched"))
        with pytest.raises(Forbidden):
            services.find_by_phone(session=s, actor=user(office, "viewer"), phone="13812345678")


def test_many_values_sealed_together_are_the_bytes_openssl_seals_one_at_a_time():
    """`encrypt_with` seals a bulk (a push import's contacts) by one ECB pass of SM4 over the counter blocks and GHASH
    by tables; it must be SM4-GCM exactly: the same bytes as OpenSSL's GCM for the same nonces, on every length
    (empty to several blocks, partial last blocks, Chinese text), and opened by OpenSSL's decryption, which checks
    the tag."""
    import os
    import random

    key = crypto.encryption_key()
    rng = random.Random(20261207)
    plains = [bytes(rng.randrange(256) for _ in range(length)) for length in range(0, 200)]
    plains += [f"{rng.choice(['北京市朝阳区', '广东省深圳市南山区', '张三', 'Li Si'])}{n}号".encode() for n in range(300)]
    nonces = os.urandom(12 * len(plains))
    together = crypto._gcm_many(key, plains, nonces)
    one_by_one = [crypto._gcm_one(key, p, nonces[12 * k:12 * k + 12]) for k, p in enumerate(plains)]
    assert together == one_by_one
    texts = [None, "", "13812345678", crypto.encrypt("已加密的值")] + [f"测试地址{n}路{n * 7}号" for n in range(crypto.BULK_FROM)]
    sealed = crypto.encrypt_with(key, texts)
    assert sealed[:2] == [None, ""] and sealed[3] == texts[3]  # nothing to protect, or sealed already: as it was
    assert [crypto.decrypt(v) for v in sealed[2:]] == ["13812345678", "已加密的值"] + texts[4:]
    assert len(set(sealed[4:])) == len(sealed[4:]) and all(v.startswith(crypto.PREFIX) for v in sealed[2:])
