"""`chunfeng credit …` in its own process, as an operator runs it: import, list, and the violator list's steps;
a refusal exits 1 with the reason, writes nothing and is recorded as denied."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

from sqlalchemy import func, select

from chunfeng.credit.models import CreditRating, Violator
from chunfeng.org.models import AuditEntry
from tests.credit.test_services import HEADER, A, B

LAST = date.today().year - 1


def cli(db, *args, push_store=None) -> subprocess.CompletedProcess:
    """`chunfeng *args` in its own process; `push_store`: where it publishes the levels (else the default under var/)."""
    env = {**os.environ, "CHUNFENG_DATABASE_URL": db.url, "COLUMNS": "200"}
    if push_store is not None:
        env["CHUNFENG_PUSH_STORE"] = str(push_store)
    return subprocess.run([sys.executable, "-m", "chunfeng", *args], capture_output=True, text=True, env=env)


def test_the_cli(bureau, add_users, tmp_path):
    db = bureau
    add_users({"county2_officer": ("110102", ["service_officer"])})
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + f"{A},甲公司,{LAST},92,A,,110101\n{B},乙公司,{LAST},30,D,逃避缴纳税款:70,110102\n",
                    encoding="utf-8")
    imported = cli(db, "credit", "import", str(path), push_store=tmp_path / "taxpayers.duckdb")
    assert imported.returncode == 0, imported.stderr
    assert "已导入 2 条评价结果" in imported.stdout
    listed = cli(db, "--as", "county2_officer", "credit", "list")
    assert listed.returncode == 0 and "乙公司" in listed.stdout and "甲公司" not in listed.stdout

    refused = cli(db, "--as", "county2_officer", "credit", "import", str(path))
    assert refused.returncode == 1 and "不在您的管辖范围内" in refused.stderr

    today = date.today()
    added = cli(db, "credit", "violators", "add", A, "甲公司", "--unit", "110101", "--case", "偷税",
                "--unpaid", "1500000", "--published", str(today - timedelta(days=400)), "--off", str(today))
    assert added.returncode == 0, added.stderr
    no_off = cli(db, "credit", "violators", "add", B, "乙公司", "--unit", "110101", "--case", "偷税",
                 "--published", str(today))
    assert no_off.returncode == 1 and "请填写撤出日期" in no_off.stderr
    assert "公布中" in cli(db, "credit", "violators", "list").stdout
    expired = cli(db, "credit", "violators", "expire")
    assert expired.returncode == 0 and "期满撤出 1 条" in expired.stdout
    again = cli(db, "credit", "violators", "remove", "1", "--reason", "repaired", "--note", "修复决定")
    assert again.returncode == 1 and "已于" in again.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 2
        assert s.scalar(select(Violator.removal_reason)) == "expired"
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied", AuditEntry.outcome == "denied")) == 1
