"""Voluntary evaluation, incentives and risk over HTTP: an individual business applies, its county evaluates (the
neighbouring county is told there is no such application), the result is a register year on the taxpayer's page
with what that level earns (marked for review); the public incentives page says what awaits review; risk tiers are
computed as a task, filtered by tier within the unit's subtree and exported."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.credit.models import CreditEvaluation, CreditRating
from chunfeng.org.models import AuditEntry
from chunfeng.push import store
from chunfeng.settings import Settings
from tests.conftest import TEST_DATA_KEY, csrf_from, exported, finished, login, serving
from tests.credit.test_evaluation import SHOP, SMALL, people, write_extract  # noqa: F401  (the fixture)


@pytest.fixture
def site(people, _database, tmp_path):  # noqa: F811
    taxpayers = tmp_path / "store" / "taxpayers.duckdb"
    store.import_extract(write_extract(tmp_path / "extract"), taxpayers, workers=1)
    settings = Settings(database_url=_database.url, secret_key="test-secret-not-for-production", environment="test",
                        data_key=TEST_DATA_KEY, scan_interval_minutes=0, data_dir=str(tmp_path / "files"),
                        push_store=str(taxpayers), rate_limits={}, rate_ceilings={}, totp_required_roles=[])
    with serving(_database, settings) as url:
        yield url, taxpayers


def test_apply_evaluate_and_see_what_the_level_earns(site, people):  # noqa: F811
    url, taxpayers = site
    shop = login(url, "shop")
    page = shop.get("/credit/evaluations")
    assert page.status_code == 200 and "待复核" in page.text
    token = csrf_from(page.text)
    small = shop.post("/credit/evaluations", data={"csrf_token": token, "credit_code": SMALL, "year": "2025"})
    assert small.status_code == 404 and "只能为本户" in small.text
    assert shop.post("/credit/evaluations", data={"csrf_token": token, "year": "2025"}).status_code == 303
    with people.read() as s:
        eid = s.scalar(select(CreditEvaluation.id))

    neighbour = login(url, "county2_officer")
    assert "张三便利店" not in neighbour.get("/credit/evaluations").text
    refused = neighbour.post(f"/credit/evaluations/{eid}/evaluate",
                             data={"csrf_token": csrf_from(neighbour.get("/credit/evaluations").text)})
    assert refused.status_code == 404
    assert shop.post(f"/credit/evaluations/{eid}/evaluate", data={"csrf_token": token}).status_code == 403

    officer = login(url, "county_officer")
    queue = officer.get("/credit/evaluations", params={"state": "applied"})
    assert "张三便利店" in queue.text and "开展评价" in queue.text
    done = officer.post(f"/credit/evaluations/{eid}/evaluate", data={"csrf_token": csrf_from(queue.text)})
    assert done.status_code == 303 and "evaluated=1" in done.headers["location"]
    with people.read() as s:
        assert s.scalar(select(CreditRating.level).where(CreditRating.credit_code == SHOP)) == "B"
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action.like("credit.evaluation.%"))) == 2
    # Published for push rules once committed.
    with store.connect_store(taxpayers) as conn:
        assert conn.execute("SELECT credit_level, credit_year FROM registry WHERE credit_code = $c",
                            {"c": SHOP}).fetchone() == ("B", 2025)

    mine = shop.get(f"/credit/taxpayers/{SHOP}")
    assert mine.status_code == 200 and "B级适用的激励措施" in mine.text and "一次可领取不超过2个月" in mine.text
    assert "待复核" in mine.text and "未按规定期限纳税申报:扣 15.0 分" in mine.text


def test_the_incentives_page_is_public_and_names_what_awaits_review(site):
    url, _ = site
    page = httpx.get(url + "/credit/incentives")
    assert page.status_code == 200
    assert "跨省迁移、发票使用、税收证明" in page.text and "待复核" in page.text and "D级(限制)" in page.text


def test_risk_page_compute_filter_and_export(site, people):  # noqa: F811
    url, _ = site
    viewer = login(url, "viewer2")
    page = viewer.get("/credit/risk")
    assert page.status_code == 200 and "立即重新计算" not in page.text and "示例" in page.text
    assert viewer.post("/credit/risk/compute", data={"csrf_token": csrf_from(page.text)}).status_code == 403

    officer = login(url, "county_officer")
    token = csrf_from(officer.get("/credit/risk").text)
    done = finished(officer, officer.post("/credit/risk/compute", data={"csrf_token": token}))
    assert done.status_code == 200 and "已计算风险等级" in done.text
    middle = officer.get("/credit/risk", params={"tier": "中"})
    assert "张三便利店" in middle.text and "近12个月无申报记录" in middle.text and "提醒预警" in middle.text
    assert "张三便利店" not in officer.get("/credit/risk", params={"tier": "高"}).text
    assert "张三便利店" not in login(url, "county2_officer").get("/credit/risk").text
    _, download = exported(officer, officer.post("/credit/risk/export.xlsx",
                                                  data={"csrf_token": token, "tier": "中"}))
    sheet = load_workbook(io.BytesIO(download.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("统一社会信用代码", "纳税人名称", "风险等级") and len(rows) == 1 + 5  # none filed in the last 12 months
    with people.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action.in_(["credit.risk.computed", "credit.risk.exported"]))) == 2


def test_a_second_run_shows_the_changed_tier_within_the_subtree_only(site, people):  # noqa: F811
    """The second run writes only the taxpayer whose tier changed; the list and the API show it to its county, and
    the neighbouring county's official neither sees it nor can recompute it."""
    url, taxpayers = site
    officer = login(url, "county_officer")
    token = csrf_from(officer.get("/credit/risk").text)
    assert finished(officer, officer.post("/credit/risk/compute", data={"csrf_token": token})).status_code == 200
    assert "李四小吃店" not in officer.get("/credit/risk", params={"tier": "高"}).text
    store.publish_credit_levels(taxpayers, [(SMALL, "D", 2024)])
    assert finished(officer, officer.post("/credit/risk/compute", data={"csrf_token": token})).status_code == 200
    high = officer.get("/credit/risk", params={"tier": "高"})
    assert "李四小吃店" in high.text and "纳税缴费信用为D级" in high.text and "张三便利店" not in high.text
    assert "李四小吃店" not in officer.get("/credit/risk", params={"tier": "中"}).text
    neighbour = login(url, "county2_officer")
    assert "李四小吃店" not in neighbour.get("/credit/risk", params={"tier": "高"}).text
    assert neighbour.get("/api/credit/risk", params={"q": SMALL}).json()["total"] == 0
    assert [r["tier"] for r in officer.get("/api/credit/risk", params={"q": SMALL}).json()["items"]] == ["高"]
    with people.read() as s:
        runs = s.scalars(select(AuditEntry.after).where(AuditEntry.action == "credit.risk.computed")
                         .order_by(AuditEntry.id)).all()
        assert json.loads(runs[-1])["written"] == {"inserted": 0, "updated": 1, "deleted": 0, "unchanged": 4}


def test_measures_95_115_119_link_what_serves_them(site):
    url, _ = site
    viewer = login(url, "viewer2")
    assert 'href="/credit/risk"' in viewer.get("/plan/measures/95").text
    assert 'href="/credit/evaluations"' in viewer.get("/plan/measures/115").text
    assert 'href="/credit/incentives"' in viewer.get("/plan/measures/119").text
