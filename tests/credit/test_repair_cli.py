"""`chunfeng credit repair list|decide` in its own process: the queue of the acting user's subtree, a decision
that needs the official's score and level while the rules await review, and a refusal that exits 1 and changes
nothing."""

from __future__ import annotations

import pyarrow.parquet as pq
from sqlalchemy import select

from chunfeng.credit.models import CreditRating, CreditRepair
from chunfeng.push import store
from tests.credit.test_cli import cli
from tests.credit.test_repair import file, register  # noqa: F401  (the fixture)
from tests.credit.test_services import A


def test_list_and_decide(register, tmp_path):  # noqa: F811
    db = register
    repair_id = file(db, "payer", tmp_path)
    listed = cli(db, "--as", "county_officer", "credit", "repair", "list")
    assert listed.returncode == 0, listed.stderr
    assert "甲公司" in listed.stdout and "待核定" in listed.stdout
    assert "甲公司" not in cli(db, "--as", "county2_officer", "credit", "repair", "list").stdout

    manual = cli(db, "--as", "county_officer", "credit", "repair", "decide", str(repair_id), "--approve",
                 "--reason", "已核实")
    assert manual.returncode == 1 and "待人工核定" in manual.stderr
    outside = cli(db, "--as", "county2_officer", "credit", "repair", "decide", str(repair_id), "--refuse",
                  "--reason", "不符")
    assert outside.returncode == 1 and f"没有编号为 {repair_id} 的信用修复申请" in outside.stderr
    with db.read() as s:
        assert s.get(CreditRepair, repair_id).state == "pending"

    taxpayers = tmp_path / "push" / "taxpayers.duckdb"
    done = cli(db, "--as", "county_officer", "credit", "repair", "decide", str(repair_id), "--approve",
               "--reason", "已核实补报记录", "--score", "80", "--level", "b", push_store=taxpayers)
    assert done.returncode == 0, done.stderr
    assert "修复后 B级 80 分" in done.stdout
    # Published for push rules as it is decided (the first publish writes the whole register).
    published = pq.read_table(store.credit_levels_path(taxpayers)).to_pylist()
    assert {"credit_code": A, "level": "B", "year": 2025, "repair": "已修复"} in published
    with db.read() as s:
        assert s.scalar(select(CreditRating.score).where(CreditRating.credit_code == A, CreditRating.year == 2025)) == 80
