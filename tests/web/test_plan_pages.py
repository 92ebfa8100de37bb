"""Plan pages over HTTP: browse, search (full page and htmx fragment), measure pages, xlsx export."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.conftest import login


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
    assert response.status_code == 404 and "chunfeng plan import" in response.text
