"""The application follows the Settings it was built with (`create_app(db, settings)`), not whatever the
environment of the process says: before settings were passed down, the topic routes, the import caps, the password
length and the data key of the app's settings were ignored in favour of CHUNFENG_* read deep inside the services."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, text

from chunfeng import crypto
from chunfeng.appeals.models import Appeal
from chunfeng.org.models import Unit
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, csrf_from, finished, login, serving

OWN_KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture
def own_server(bureau, _database, server_files):
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=OWN_KEY, scan_interval_minutes=0, data_dir=str(server_files), rate_limits={},
                        totp_required_roles=[], appeal_topic_routes={"出口退税": "110100"}, import_max_rows=2,
                        password_min_length=14)
    with serving(_database, settings) as url:
        yield url
    crypto.configure(TEST_DATA_KEY)  # the rest of the test session's key


def test_the_app_uses_its_own_settings(bureau, own_server):
    item = {"kind": "complaint", "text": "出口退税申报后等了十几个工作日还没有到账", "region": "120105",
            "topic": "出口退税", "phone": "13812345678"}
    receipt = httpx.post(f"{own_server}/api/appeals", json=item, timeout=30)
    assert receipt.status_code == 201 and receipt.json()["unit"] == "110100"  # the topic route, not 天津's bureau
    with bureau.read() as s:
        raw = s.execute(text("SELECT phone FROM appeal")).scalar()
        assert s.scalar(select(Appeal.phone)) == "13812345678"  # opened with the app's key
    crypto.configure(TEST_DATA_KEY)
    with pytest.raises(crypto.DecryptionFailed):  # not the one the environment would give
        crypto.decrypt(raw)
    crypto.configure(OWN_KEY)

    admin = login(own_server, "nat_admin")
    token = csrf_from(admin.get("/org/units/110000").text)
    rows = "".join(f"11019{n},110000,某局{n},市级\n" for n in range(3))
    refused = finished(admin, admin.post("/org/units/110000/import", data={"csrf_token": token},
                                         files={"file": ("units.csv", ("代码,上级代码,名称,层级\n" + rows).encode(),
                                                         "text/csv")}))
    assert refused.status_code == 400 and "超过 2 行数据的上限" in refused.text
    short = admin.post("/org/units/110000/users", data={"csrf_token": token, "username": "dave",
                                                        "display_name": "dave", "password": "Twelve-char1"})
    assert short.status_code == 400 and "至少需要 14 位" in short.text
    with bureau.read() as s:
        assert not s.scalar(select(Unit.id).where(Unit.code == "110190"))
