"""The review queue and the assignment form in chromium (issue 14, items 8 and 5): filter the queue, tick the
reports of one unit, approve them at once; a mistyped unit code shown beside its field with everything typed kept."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login_as
from tests.web.test_review_queue_pages import crowded

pytestmark = pytest.mark.browser


def test_filter_and_approve_several(page, server, bureau):
    crowded(bureau, first=4, second=3)
    login_as(page, server, "city_office")
    page.goto(f"{server}/ledger/review")
    queue = page.locator("table.review-queue tbody tr")
    expect(queue).to_have_count(7)
    page.get_by_label("单位").select_option(label="甲市一县税务局(4)")
    page.get_by_role("button", name="筛选").click()
    expect(page).to_have_url(re.compile(r"unit=110101"))
    expect(queue).to_have_count(4)
    expect(queue.first).to_contain_text("第 1 条")
    page.get_by_label("全选本页").check()
    queue.nth(3).locator("input[name=reports]").uncheck()
    page.get_by_label("批量审核意见").fill("同意")
    page.get_by_role("button", name="通过勾选的报告").click()
    expect(page.locator("[role=status]")).to_contain_text("已批量通过 3 份报告")
    expect(queue).to_have_count(1)  # the one left unticked, and the filter still applies
    expect(page.get_by_label("单位")).to_have_value("110101")
    page.get_by_role("link", name="清除筛选").click()
    expect(queue).to_have_count(4)


def test_mistyped_unit_code_keeps_the_form(page, server, bureau):
    login_as(page, server, "bj_office")
    page.goto(f"{server}/ledger/assign")
    page.get_by_label("单个单位", exact=True).check()
    page.locator("input[name=unit]").fill("110010")
    page.locator("input[name=measures]").fill("54")
    page.locator("input[name=deadline]").fill("2026-12-31")
    page.locator("input[name=owner]").fill("李四")
    page.get_by_role("button", name="分配").click()
    expect(page.locator("#error-unit")).to_contain_text("没有代码为“110010”的单位")
    expect(page.locator("input[name=unit]")).to_have_value("110010")
    expect(page.locator("input[name=unit]")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("input[name=owner]")).to_have_value("李四")
    page.locator("input[name=unit]").fill("110100")
    page.get_by_role("button", name="分配").click()
    expect(page).to_have_url(re.compile(r"/ledger\?assigned=1"))
