"""`chunfeng plan …` as a user runs it: a real process, a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from chunfeng.plan.models import PlanMeasure
from tests.conftest import SEED


def run(db, *args, **env):
    return subprocess.run([sys.executable, "-m", "chunfeng", *args], capture_output=True, text=True,
                          env={**os.environ, "CHUNFENG_DATABASE_URL": db.url, **env})


@pytest.fixture
def seed_file(seed_bytes, tmp_path):
    if SEED.exists():
        return SEED
    path = tmp_path / "notice.txt"
    path.write_bytes(seed_bytes)
    return path


def test_parse_json(db, seed_file):
    result = run(db, "plan", "parse", str(seed_file), "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["doc_number"] == "税总纳服函〔2022〕32号" and plan["issued"] == "2022-03-31"
    assert len(plan["categories"]) == 5
    assert sum(len(c["items"]) for c in plan["categories"]) == 20
    assert sum(len(i["measures"]) for c in plan["categories"] for i in c["items"]) == 121
    assert len(plan["new_measures"]) == 16
    first = plan["categories"][0]
    assert (first["no"], first["name"], first["stated_items"], first["stated_measures"]) == (1, "诉求响应更及时", 4, 29)
    assert first["items"][0]["no"] == 1 and first["items"][0]["name"] == "需求快速响应"
    assert plan["new_measures"][0] == {"no": 1, "group": 1, "title": "开展“一把手走流程”工作",
                                       "text": "通过积极开展“一把手走流程”工作,找准办税缴费过程中的痛点难点堵点,及时加以解决。",
                                       "table_no": 1}


def test_parse_broken_file(db, seed_bytes, tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_bytes(seed_bytes.decode().replace("提速退税办理527条", "提速退税办理526条").encode())
    result = run(db, "plan", "parse", str(broken), "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert "智慧办理更便捷" in result.stderr and "26" in result.stderr and "27" in result.stderr
    missing = run(db, "plan", "parse", str(tmp_path / "nope.txt"))
    assert missing.returncode == 1 and "文件不存在" in missing.stderr


def test_import_twice_and_replace(db, seed_file):
    first = run(db, "plan", "import", str(seed_file))
    assert first.returncode == 0 and "121 条具体措施" in first.stdout and "新增措施 16 条" in first.stdout
    again = run(db, "plan", "import", str(seed_file))
    assert again.returncode == 1 and "已于" in again.stderr and "--replace" in again.stderr
    replaced = run(db, "plan", "import", str(seed_file), "--replace")
    assert replaced.returncode == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PlanMeasure)) == 121


def test_import_refused_for_a_county_user(db, make_user, county, seed_file):
    make_user("countyuser", county, ["unit_reporter"])
    result = run(db, "--as", "countyuser", "plan", "import", str(seed_file))
    assert result.returncode == 1 and "无权" in result.stderr
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(PlanMeasure)) == 0


def test_demo_no_serve_fills_once(db):
    first = run(db, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "admin" in first.stdout and "Chunfeng2022!" in first.stdout
    second = run(db, "demo", "--no-serve")
    assert second.returncode == 0
    with db.read() as s:
        from chunfeng.org.models import Unit
        synthetic = s.scalar(select(func.count()).select_from(Unit).where(Unit.synthetic.is_(True)))
        assert synthetic == 36 * (3 + 3 * 3 + 3)
        assert all("演示" in name for name in s.scalars(select(Unit.name).where(Unit.synthetic.is_(True))))
    with db.read() as s:
        from chunfeng.ledger.models import Assignment, ProgressReport, SupervisionNotice
        assert s.scalar(select(func.count()).select_from(Assignment)) > 4000
        assert {r.state for r in s.scalars(select(ProgressReport))} == {"submitted", "returned", "approved"}
        assert {n.state for n in s.scalars(select(SupervisionNotice))} == {"open", "answered", "escalated"}
        assert {a.light for a in s.scalars(select(Assignment))} == {"red", "yellow", "green"}
    assert run(db, "audit", "verify").returncode == 0
