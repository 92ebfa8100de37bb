"""The ledger as its users work it in chromium: reporting and review, supervision notices, the dashboard."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login_as
from tests.web.test_ledger_pages import make_chain

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"


def switch_to(page: Page, server: str, username: str) -> None:
    page.context.clear_cookies()
    login_as(page, server, username)


def test_report_return_resubmit_approve(page, server, bureau):
    _, _, county = make_chain(bureau)
    assignment_url = f"{server}/ledger/assignments/{county}"

    login_as(page, server, "county_reporter")
    page.goto(f"{server}/ledger/todo")
    page.locator("ul.plain a").filter(has_text="第 54 条").first.click()
    expect(page).to_have_url(assignment_url)
    form = page.locator("form.report-form")
    form.locator("select[name=status]").select_option(label="推进中")
    form.locator("input[name=percent]").fill("40")
    form.locator("textarea[name=narrative]").fill("已梳理资料清单")
    form.get_by_role("button", name="提交报告").click()
    expect(page).to_have_url(f"{assignment_url}?submitted=1")
    report_rows = page.locator("section.card", has=page.locator("h2", has_text="进展报告")).locator("tbody tr")
    expect(report_rows).to_have_count(1)
    expect(report_rows.first).to_contain_text("待审核")
    expect(report_rows.first).to_contain_text("40%")

    switch_to(page, server, "city_office")
    page.goto(f"{server}/ledger/review")
    row = page.locator("tbody tr").filter(has_text="已梳理资料清单")
    expect(row).to_contain_text("甲市一县税务局")
    row.get_by_label("审核意见").fill("请补充数据")
    row.get_by_role("button", name="退回").click()
    expect(page).to_have_url(f"{server}/ledger/review?reviewed=return")
    expect(page.locator("tbody tr").filter(has_text="已梳理资料清单")).to_have_count(0)

    switch_to(page, server, "county_reporter")
    page.goto(f"{server}/ledger/todo")
    returned = page.locator("li").filter(has_text="退回意见")
    expect(returned).to_contain_text("请补充数据")
    returned.get_by_role("link").click()
    expect(page).to_have_url(assignment_url)
    expect(page.locator("h2").filter(has_text="修改被退回的报告")).to_be_visible()
    expect(page.locator("p.error")).to_contain_text("请补充数据")
    expect(form.locator("input[name=percent]")).to_have_value("40")  # the returned report is edited, not a new one
    form.locator("input[name=percent]").fill("55")
    form.locator("textarea[name=narrative]").fill("已补充数据")
    form.get_by_role("button", name="提交报告").click()
    expect(page).to_have_url(f"{assignment_url}?submitted=1")
    expect(report_rows).to_have_count(1)
    expect(report_rows.first).to_contain_text("待审核")
    expect(report_rows.first).to_contain_text("55%")

    switch_to(page, server, "city_office")
    page.goto(f"{server}/ledger/review")
    row = page.locator("tbody tr").filter(has_text="已补充数据")
    row.get_by_role("button", name="通过").click()
    expect(page).to_have_url(f"{server}/ledger/review?reviewed=approve")
    expect(page.locator("td.empty")).to_have_text("没有待审核的报告")

    switch_to(page, server, "county_reporter")
    page.goto(assignment_url)
    expect(report_rows.first).to_contain_text("已通过")
    expect(report_rows.first).to_contain_text("55%")
    expect(page.locator("dl.facts meter")).to_have_attribute("value", re.compile(r"^55(\.0)?$"))
    expect(page.locator("dl.facts")).to_contain_text(re.compile(r"进度\s*55(\.0)?%"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "assignment.png", full_page=True)

    switch_to(page, server, "city_office")
    page.goto(f"{server}/ledger?unit=110100")
    expect(page.locator("table.dashboard tbody tr").filter(has_text="甲市一县税务局")).to_contain_text("55.0%")


def test_supervision_notice(page, server, bureau):
    _, _, county = make_chain(bureau)
    respond_by = (date.today() + timedelta(days=5)).isoformat()

    login_as(page, server, "city_office")
    page.goto(f"{server}/ledger/assignments/{county}")
    page.locator("summary").filter(has_text="发督办单 / 催办").click()
    page.get_by_label("标题").fill("请加快出口退税进度")
    page.get_by_label("督办内容").fill("请于期限内说明进展")
    page.get_by_label("答复期限").fill(respond_by)
    page.get_by_role("button", name="发督办单").click()
    expect(page).to_have_url(re.compile(r"/ledger/notices/\d+$"))
    notice_url = page.url
    expect(page.locator("h1")).to_contain_text("请加快出口退税进度")
    expect(page.locator("h1 .badge")).to_have_text("待答复")
    expect(page.locator("p.meta")).to_contain_text(respond_by)

    switch_to(page, server, "county_reporter")
    expect(page.locator("header nav a[href='/inbox'] .nav-count")).to_have_text("1")
    page.locator("header nav a[href='/inbox']").click()
    page.get_by_role("button", name=re.compile("督办单:请加快出口退税进度")).click()
    expect(page).to_have_url(notice_url)
    expect(page.locator("header nav a[href='/inbox'] .nav-count")).to_have_count(0)  # opening it marked it read
    page.get_by_label("答复").fill("已部署专人推进,本月底完成")
    page.get_by_role("button", name="提交答复").click()
    expect(page).to_have_url(notice_url)
    expect(page.locator("ol.thread li.answer")).to_contain_text("已部署专人推进,本月底完成")
    expect(page.locator("h1 .badge")).to_have_text("已答复")

    switch_to(page, server, "city_office")
    page.goto(notice_url)
    page.get_by_label("办结意见").fill("同意办结")
    page.get_by_role("button", name="办结").click()
    expect(page).to_have_url(notice_url)
    expect(page.locator("h1 .badge")).to_have_text("已办结")
    expect(page.locator("ol.thread li.close")).to_contain_text("同意办结")
    expect(page.get_by_role("button", name="办结")).to_have_count(0)

    switch_to(page, server, "county2_reporter")
    assert page.goto(notice_url).status == 403


def test_dashboard_drill_down(page, server, bureau):
    _, _, county = make_chain(bureau)
    login_as(page, server, "nat_office")
    page.goto(f"{server}/ledger")
    rows = page.locator("table.dashboard tbody tr")
    rows.get_by_role("link", name="国家税务总局北京市税务局").click()
    expect(page).to_have_url(f"{server}/ledger?unit=110000")
    rows.get_by_role("link", name="北京甲市税务局").click()
    expect(page).to_have_url(f"{server}/ledger?unit=110100")
    expect(page.locator("h1")).to_contain_text("北京甲市税务局")
    expect(rows.get_by_role("link", name="甲市一县税务局")).to_be_visible()

    page.goto(f"{server}/ledger/units/110101")
    row = page.locator("tbody tr").filter(has=page.locator("td:first-child", has_text=re.compile(r"^54$")))
    row.get_by_role("link").click()
    expect(page).to_have_url(f"{server}/ledger/assignments/{county}")
    expect(page.locator("h1")).to_contain_text("第 54 条 · 甲市一县税务局")


def test_lights_follow_the_decision_and_rolled_up_tasks_take_a_narrative(page, server, bureau):
    """Issue 14, items 3 and 4 as officials meet them: a county reports 85 % and the city approves — the light turns at
    once, not at the next scan, and again when the city moves the deadline; the city's own task rolls up from its
    county, so it offers a narrative only."""
    _, city, county = make_chain(bureau)
    county_url, city_url = f"{server}/ledger/assignments/{county}", f"{server}/ledger/assignments/{city}"
    last = (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    heading_light = page.locator("h1 .light")

    login_as(page, server, "county_reporter")
    page.goto(county_url)
    expect(heading_light).to_have_text("黄灯")  # last month's report is missing
    form = page.locator("form.report-form")
    form.locator("select[name=period]").select_option(last)
    form.locator("select[name=status]").select_option(label="推进中")
    form.locator("input[name=percent]").fill("85")
    form.locator("textarea[name=narrative]").fill("已完成八成,两个分局已上线")
    form.get_by_role("button", name="提交报告").click()
    expect(page).to_have_url(f"{county_url}?submitted=1")

    switch_to(page, server, "city_office")
    page.goto(county_url)
    expect(heading_light).to_have_text("黄灯")
    page.locator("form.review-form").get_by_role("button", name="通过").click()
    expect(page).to_have_url(re.compile(re.escape(county_url) + r"\?reviewed=approve"))
    expect(heading_light).to_have_text("绿灯·正常推进")
    expect(page.locator("dl.facts")).to_contain_text("85")
    # The city brings the county's deadline forward: the light warns at once.
    page.locator("details", has_text="调整时限").locator("summary").click()
    page.locator("input[name=deadline]").fill((date.today() + timedelta(days=3)).isoformat())
    page.get_by_role("button", name="保存时限").click()
    expect(page).to_have_url(f"{county_url}?rescheduled=1")
    expect(heading_light).to_have_text("黄灯")
    expect(page.locator("dl.facts")).to_contain_text("距完成时限还有 3 天")

    switch_to(page, server, "city_reporter")
    page.goto(city_url)
    expect(page.locator("dl.facts")).to_contain_text("由 1 个下级任务汇总")
    form = page.locator("form.report-form")
    expect(form.locator("input[name=percent]")).to_have_count(0)
    expect(form.locator("select[name=status]")).to_have_count(0)
    expect(page.locator("#narrative-only")).to_contain_text("不填状态和完成百分比")
    form.get_by_label("情况说明(仅文字)").fill("一县已完成八成,二县待分解")
    form.get_by_role("button", name="提交情况说明").click()
    expect(page).to_have_url(f"{city_url}?submitted=1")
    rows = page.locator("section.card", has=page.locator("h2", has_text="进展报告")).locator("tbody tr")
    expect(rows.first).to_contain_text("一县已完成八成")
    expect(page.locator("dl.facts meter")).to_have_attribute("value", re.compile(r"^85(\.0)?$"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "assignment-rolled-up.png", full_page=True)
