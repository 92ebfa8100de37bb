"""Issue 14.7: citizens typed a 6-digit region code and officials typed unit codes. In chromium, on a desktop and at
390 px: the region picker narrows by province, city and search and files the chosen city or county; the unit picker offers the
user's units as they type; both pages stay within a phone's width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from chunfeng.appeals.models import Appeal
from chunfeng.org.models import Unit
from tests.browser.conftest import login_as
from tests.browser.test_phone_browser import PHONE, sideways
from tests.web.test_appeals_pages import office  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, PHONE], ids=["1366", "390"])
def test_region_picker_files_the_chosen_city(browser, server, office, viewport):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{server}/appeals/new")
    assert page.locator("select[name=region]").input_value() == ""  # untouched: no place chosen for the citizen
    page.get_by_label("省份").select_option(label="北京市")
    assert page.locator("select[name=region]").input_value() == "110000"
    page.get_by_label("搜索地区").fill("石家庄")  # the chosen province narrows the search
    assert page.locator("select[name=region]").input_value() == ""
    page.get_by_label("省份").select_option(label="全部省份")
    page.get_by_label("搜索地区").fill("")
    page.get_by_label("搜索地区").fill("1101")
    assert page.locator("select[name=region]").input_value() == "110101"
    page.get_by_label("搜索地区").fill("北京市 朝阳")
    assert page.locator("select[name=region]").input_value() == "110105"
    assert sideways(page) == 0
    page.locator("textarea[name=text]").fill("办税服务厅排队时间太长")
    page.locator("input[name=phone]").fill("13800138000")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#number")).to_be_visible()
    assert page.locator("#track-link").inner_text().startswith(server)
    assert sideways(page) == 0
    with office.read() as s:
        appeal = s.scalar(select(Appeal).order_by(Appeal.id.desc()))
        assert appeal.region == "110105" and s.get(Unit, appeal.unit_id).code == "110100"  # the test tree's city bureau
    context.close()


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, PHONE], ids=["1366", "390"])
def test_region_picker_goes_down_to_the_county(browser, server, office, viewport):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{server}/appeals/new")
    region = page.locator("select[name=region]")
    assert region.locator("option[value='440106']").is_hidden()  # no city chosen: counties stay out of the way
    assert page.get_by_label("城市").is_disabled()
    page.get_by_label("省份").select_option(label="广东省")
    assert region.input_value() == "440000"
    page.get_by_label("城市").select_option(label="广州市")
    assert region.input_value() == "440100"
    shown = region.locator("optgroup option:not([hidden])")
    assert shown.count() == 12 and shown.first.get_attribute("value") == "440100"  # the city and its 11 districts
    page.get_by_label("搜索地区").fill("天河")
    assert region.input_value() == "440106"
    page.get_by_label("城市").select_option(label="深圳市")  # a new city: the search narrows within it
    assert region.input_value() == ""
    page.get_by_label("搜索地区").fill("")
    page.get_by_label("省份").select_option(label="全部省份")
    page.get_by_label("搜索地区").fill("两江")  # a search reaches counties anywhere, and the 2025 district
    assert region.input_value() == "500157"
    page.get_by_label("搜索地区").fill("和康县")
    assert region.input_value() == "653228"
    assert sideways(page) == 0
    page.locator("textarea[name=text]").fill("办税服务厅排队时间太长")
    page.locator("input[name=phone]").fill("13800138000")
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#number")).to_be_visible()
    with office.read() as s:
        assert s.scalar(select(Appeal).order_by(Appeal.id.desc())).region == "653228"
    context.close()


def test_region_picker_keeps_a_county_after_a_refusal(browser, server, office):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{server}/appeals/new")
    page.get_by_label("省份").select_option(label="河北省")
    page.get_by_label("城市").select_option(label="石家庄市")
    page.get_by_label("搜索地区").fill("长安")
    page.locator("textarea[name=text]").fill("发票申领太慢")
    page.get_by_role("button", name="提交").click()  # no phone or e-mail: refused, the form comes back
    assert page.locator("select[name=region]").input_value() == "130102"
    assert page.get_by_label("省份").input_value() == "130000" and page.get_by_label("城市").input_value() == "130100"
    context.close()


def test_region_picker_works_without_javascript(browser, server, office):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{server}/appeals/new")
    page.locator("select[name=region]").select_option("130102")  # a county, straight from the grouped list
    page.locator("textarea[name=text]").fill("发票申领太慢")
    page.locator("input[name=phone]").fill("13800138000")
    page.get_by_role("button", name="提交").click()
    assert page.locator("#number").is_visible()
    with office.read() as s:
        assert s.scalar(select(Appeal).order_by(Appeal.id.desc())).region == "130102"
    context.close()


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, PHONE], ids=["1366", "390"])
def test_unit_picker_offers_the_users_units(browser, server, office, viewport):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    login_as(page, server, "handler")
    page.goto(f"{server}/appeals/analysis")
    picker = page.locator("input[data-unit-picker]")
    picker.fill("1101")
    expect(page.locator("#unit-units option[value='110101']")).to_have_count(1)
    picker.fill("广东")
    expect(page.locator("#unit-units option")).to_have_count(0)
    assert sideways(page) == 0
    context.close()
