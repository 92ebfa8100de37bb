"""Credit repair in chromium (issue 17, measure 117): the taxpayer applies with an evidence file, the county's
service officer approves from the queue with the score and level the rules leave to a person, and the taxpayer's
credit page shows the restored level."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login_as
from tests.credit.test_repair import PDF, register  # noqa: F401  (the fixture)
from tests.credit.test_services import A

pytestmark = pytest.mark.browser


def test_apply_approve_and_the_register_shows_the_new_level(page, server, register, tmp_path):  # noqa: F811
    evidence = tmp_path / "补报申报表.pdf"
    evidence.write_bytes(PDF)
    login_as(page, server, "payer")
    page.goto(f"{server}/credit/mine")
    expect(page.locator("#history")).to_contain_text("B级")
    page.get_by_role("link", name="申请信用修复").click()
    page.get_by_label("要修复的失信行为").select_option(value="2025:发票违规")
    page.get_by_label("失信行为的应办日期").fill("2025-03-01")
    page.get_by_label("纠正日期").fill("2025-03-03")
    page.get_by_label("如何纠正").fill("已按规定补开发票并作废错误发票")
    page.locator("input[name=file_correction]").set_input_files(str(evidence))
    page.get_by_role("button", name="提交申请").click()
    expect(page.locator("[role=status]")).to_contain_text("已提交")
    expect(page.locator("#state")).to_have_text("待核定")
    expect(page.locator("#proposal")).to_contain_text("待人工核定")
    number = page.locator("#number").inner_text()

    page.context.clear_cookies()
    login_as(page, server, "county_officer")
    page.goto(f"{server}/credit/repairs")
    page.locator("#queue").get_by_role("link", name=number, exact=True).click()
    page.get_by_label("修复后得分").fill("95")
    page.get_by_label("修复后级别").select_option("A")
    page.get_by_label("核定理由").fill("已核实补开发票记录,3日内纠正")
    page.get_by_role("button", name="予以修复").click()
    expect(page.locator("#state")).to_have_text("已修复")
    expect(page.locator("#level-after")).to_have_text("A级")

    page.context.clear_cookies()
    login_as(page, server, "payer")
    page.goto(f"{server}/credit/taxpayers/{A}")
    expect(page.locator("#history")).to_contain_text("A级")
    expect(page.locator("#history")).to_contain_text("95.0")
    expect(page.locator("#repair-history")).to_contain_text("已修复")
