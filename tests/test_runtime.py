"""The process-wide state the settings decide is set by the entry points, and a process that never set it refuses
instead of reading the environment behind the caller's back."""

from __future__ import annotations

from pathlib import Path

import pytest

from chunfeng import crypto, runtime, workdays
from chunfeng.org import audit
from chunfeng.settings import Settings

KEY = "00112233445566778899aabbccddeeff"


def test_configure_sets_the_data_key_the_calendar_and_the_audit_head(tmp_path):
    holidays = tmp_path / "holidays.json"
    holidays.write_bytes((Path(workdays.__file__).parent / "data" / "holidays.json").read_bytes())
    runtime.configure(Settings(data_key=KEY, holidays_file=str(holidays), data_dir=str(tmp_path / "files"),
                               audit_head_file=""))  # beside the data directory
    stored = crypto.encrypt("13812345678")
    assert audit.head_path() == tmp_path / "audit-head.log" and 2026 in workdays.file_calendar().years
    runtime.configure(Settings(data_key="ff" * 16))
    with pytest.raises(crypto.DecryptionFailed):  # the key is the one configured, not one read on the side
        crypto.decrypt(stored)


@pytest.mark.parametrize("module, name, use", [
    (crypto, "_data_key", lambda: crypto.digest("13812345678")),
    (workdays, "_holidays_file", workdays.file_calendar),
    (audit, "_head_file", audit.head_path),
])
def test_an_unconfigured_process_refuses(monkeypatch, module, name, use):
    monkeypatch.setattr(module, name, None)  # a process whose entry point never called runtime.configure
    monkeypatch.setenv("CHUNFENG_DATA_KEY", KEY)  # set, and still not read
    with pytest.raises(RuntimeError, match=r"runtime\.configure"):
        use()
