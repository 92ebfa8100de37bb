"""The plan and the unit pages as a user sees them in chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login_as
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"


def test_login_wrong_then_right_password(page, server, with_plan, make_user):
    make_user("alice", "110000", ["viewer"])
    page.goto(f"{server}/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("用户名、密码或动态口令错误")
    expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))

    page.fill("input[name=password]", PASSWORD)  # the username is kept by the form
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{server}/ledger")  # a viewer lands on the ledger
    page.goto(f"{server}/plan")
    expect(page.locator("h1")).to_contain_text("春风行动2.0版")
    stats = page.locator("p.stats")
    expect(stats).to_contain_text("121 条具体措施")
    expect(stats).to_contain_text("新增 16 条")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "plan.png", full_page=True)


def test_browse_category_item_measure(page, server, with_plan, make_user):
    login_as(page, server, make_user("alice", "110000", ["viewer"]))
    page.goto(f"{server}/plan")
    page.locator("#c1 ol.items > li").first.locator("summary a").filter(has_text="需求快速响应").click()
    expect(page).to_have_url(f"{server}/plan/items/1")
    expect(page.locator("ul.measures > li.measure")).to_have_count(10)

    page.locator("#m1 a.no").click()
    expect(page).to_have_url(f"{server}/plan/measures/1")
    heading = page.locator("h1")
    expect(heading).to_contain_text("具体措施第 1 条")
    expect(heading.locator(".badge.new")).to_have_text("新增措施")
    note = page.locator("aside.new-note")
    expect(note).to_contain_text("新增措施第 1 条")
    expect(note).to_contain_text("开展“一把手走流程”工作")

    page.get_by_role("link", name="第 2 条 ›").click()
    expect(page).to_have_url(f"{server}/plan/measures/2")
    expect(page.locator("h1")).to_contain_text("具体措施第 2 条")
    expect(page.locator(".badge.new")).to_have_count(0)
    expect(page.locator("aside.new-note")).to_have_count(0)


def test_live_search_and_new_only(page, server, with_plan, make_user):
    login_as(page, server, make_user("alice", "110000", ["viewer"]))
    page.goto(f"{server}/plan")
    # Typed key by key, never submitted: only htmx can fill #results.
    page.locator("input[type=search][name=q]").press_sequentially("留抵退税", delay=50)
    items = page.locator("#results ul.measures > li.measure")
    expect(items.first).to_be_visible()
    expect(page).to_have_url(re.compile(r"/plan/search\?q="))  # hx-push-url
    expect(page.locator("h1").first).to_contain_text("春风行动2.0版")  # still the /plan page, no navigation

    count_line = page.locator("#results p.muted").filter(has_text="找到")
    n = int(re.search(r"找到 (\d+) 条", count_line.inner_text()).group(1))
    assert 0 < n < 20
    expect(items).to_have_count(n)
    for text in items.all_inner_texts():
        assert "留抵退税" in text

    page.get_by_label("只看新增措施").check()
    expect(count_line).to_contain_text("新增措施")
    expect(items.first).to_be_visible()
    m = int(re.search(r"找到 (\d+) 条", count_line.inner_text()).group(1))
    assert 0 < m <= n
    expect(items).to_have_count(m)
    expect(items.locator(".badge.new")).to_have_count(m)
    for text in items.all_inner_texts():
        assert "留抵退税" in text


def test_units_visible_only_in_own_subtree(page, server, with_plan, county, make_user):
    login_as(page, server, make_user("countyuser", county, ["unit_reporter"]))
    response = page.goto(f"{server}/org/units/110101")
    assert response.status == 200
    expect(page.locator("h1")).to_contain_text("北京测试县税务局")
    assert page.goto(f"{server}/plan").status == 200

    for code in ("440000", "110000"):  # 广东, and the user's own province above them
        response = page.goto(f"{server}/org/units/{code}")
        assert response.status == 403, code
        expect(page.locator("h1")).to_contain_text("无权访问")

    page.context.clear_cookies()
    login_as(page, server, make_user("province", "110000", ["viewer"]))
    response = page.goto(f"{server}/org/units/110101")
    assert response.status == 200
    expect(page.locator("h1")).to_contain_text("北京测试县税务局")


def test_logout(page, server, with_plan, make_user):
    login_as(page, server, make_user("alice", "110000", ["viewer"]))
    session_cookies = page.context.cookies()
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(f"{server}/login")
    page.goto(f"{server}/plan")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)plan$"))
    expect(page.locator("input[name=password]")).to_be_visible()

    # The old session cookie, replayed, must be dead on the server too, not only deleted in the browser.
    page.context.add_cookies(session_cookies)
    page.goto(f"{server}/plan")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)plan$"))
