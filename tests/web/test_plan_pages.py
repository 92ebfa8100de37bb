"""Plan pages over HTTP: browse, search (full page and htmx fragment), measure pages, xlsx export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from chunfeng.plan.models import PlanMeasure
from tests.conftest import csrf_from, login

HTML = (Path(__file__).parent.parent / "plan" / "data" / "notice.html").read_bytes()


def test_plan_overview(with_plan, server, make_user):
    client = login(server, make_user("viewer1", "440000", ["viewer"]))
    page = client.get("/plan").text
    assert "税总纳服函〔2022〕32号" in page and "2022年3月31日" in page
    assert page.count('class="measure"') == 121 and page.count('class="badge new"') == 16
    for name in ("诉求响应更及时", "智慧办理更便捷", "分类服务更精细", "执法监管更公正", "税收共治更聚力"):
        assert name in page


def test_item_and_measure_pages(with_plan, server, make_user):
    client = login(server, make_user("viewer2", "110000", ["viewer"]))
    item = client.get("/plan/items/9").text
    assert "提速退税办理" in item and item.count('class="measure"') == 3
    measure = client.get("/plan/measures/17").text
    assert "新增措施第 4 条" in measure and "分层次开展精准推送" in measure and "办税(费)人员" in measure
    plain = client.get("/plan/measures/54").text
    assert "新增措施" not in plain and "7个工作日" in plain
    assert client.get("/plan/measures/122").status_code == 404
    assert client.get("/plan/items/abc").status_code == 400


def test_search_page_and_fragment(with_plan, server, make_user):
    client = login(server, make_user("viewer3", "110000", ["viewer"]))
    full = client.get("/plan/search", params={"q": "发票"})
    assert full.status_code == 200 and "<html" in full.text and "找到" in full.text
    fragment = client.get("/plan/search", params={"q": "发票", "per_page": 5}, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and fragment.text.count('class="measure"') == 5
    assert "第 1 / 2 页,共 9 条" in fragment.text
    second = client.get("/plan/search", params={"q": "发票", "page": 2, "per_page": 5}, headers={"HX-Request": "true"})
    assert second.text.count('class="measure"') == 4
    new = client.get("/plan/search", params={"new": "true", "per_page": 50}, headers={"HX-Request": "true"})
    assert new.text.count('class="badge new"') == 16
    nothing = client.get("/plan/search", params={"q": "不存在的词语"}, headers={"HX-Request": "true"})
    assert "没有符合条件的措施" in nothing.text


def test_export_xlsx(with_plan, server, make_user):
    client = login(server, make_user("viewer4", "110000", ["viewer"]))
    response = client.get("/plan/export.xlsx")
    assert response.status_code == 200 and "spreadsheetml" in response.headers["content-type"]
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("序号", "任务类别", "任务事项", "具体措施", "新增措施")
    assert len(rows) == 122 and rows[54][0] == 54 and rows[54][2] == "提速退税办理"
    assert sum(1 for r in rows[1:] if r[4]) == 16


def test_no_plan_yet(db, server, make_user):
    client = login(server, make_user("viewer5", "110000", ["viewer"]))
    response = client.get("/plan")
    assert response.status_code == 404 and "尚未导入任何通知" in response.text and 'type="file"' not in response.text


def plan_size(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(PlanMeasure))


def test_action_office_imports_the_notice_by_upload(db, server, make_user, seed_bytes):
    client = login(server, make_user("office", "000000", ["action_office"]))
    page = client.get("/plan")
    assert page.status_code == 404 and 'type="file"' in page.text
    token = csrf_from(page.text)
    broken = seed_bytes.decode().replace("拓展信用应用420条", "拓展信用应用421条").encode()
    response = client.post("/plan/import", data={"csrf_token": token}, files={"file": ("bad.txt", broken, "text/plain")})
    assert response.status_code == 400 and "税收共治更聚力" in response.text and "21" in response.text
    assert plan_size(db) == 0
    assert client.post("/plan/import", files={"file": ("n.html", HTML, "text/html")}).status_code == 403  # no token
    assert plan_size(db) == 0

    response = client.post("/plan/import", data={"csrf_token": token}, files={"file": ("notice.html", HTML, "text/html")})
    assert response.status_code == 303 and plan_size(db) == 121
    assert "通知已导入" in client.get(response.headers["location"]).text
    again = client.post("/plan/import", data={"csrf_token": token}, files={"file": ("n.txt", seed_bytes, "text/plain")})
    assert again.status_code == 400 and "已于" in again.text
    replaced = client.post("/plan/import", data={"csrf_token": token, "replace": "true"},
                           files={"file": ("n.txt", seed_bytes, "text/plain")})
    assert replaced.status_code == 303 and plan_size(db) == 121


@pytest.mark.parametrize("unit, roles", [("110000", ["action_office"]), ("000000", ["viewer"]), ("000000", ["agent"])])
def test_others_cannot_import_the_notice(db, server, make_user, unit, roles):
    client = login(server, make_user("someone", unit, roles))
    token = csrf_from(client.get("/login").text)
    response = client.post("/plan/import", data={"csrf_token": token}, files={"file": ("n.html", HTML, "text/html")})
    assert response.status_code == 403 and plan_size(db) == 0
