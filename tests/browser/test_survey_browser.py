"""The public answer page on a phone (390 px) with JavaScript switched off: it fits the screen, a missing required
answer is named under its question with the other answers kept, and a complete answer is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login_as
from tests.web.test_survey_pages import office, published  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).with_name("artifacts")


def sideways(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_answering_on_a_phone_without_javascript(browser, server, office, tmp_path):  # noqa: F811
    _, survey_id, link = published(server, tmp_path)
    context = browser.new_context(locale="zh-CN", viewport=PHONE, java_script_enabled=False)
    context.set_default_timeout(10_000)
    phone = context.new_page()
    phone.goto(f"{server}/s/{link}")
    assert sideways(phone) == 0
    phone.get_by_label("是", exact=True).check()
    phone.locator("textarea[name=Q5]").fill("希望周末也能办理")
    phone.get_by_role("button", name="提交问卷").click()
    expect(phone.locator("#q-Q2 .error-inline")).to_have_text("此题为必答题")
    expect(phone.locator("textarea[name=Q5]")).to_have_value("希望周末也能办理")
    assert sideways(phone) == 0
    phone.screenshot(path=str(ARTIFACTS / "survey-answer-390.png"), full_page=True)
    phone.locator("#q-Q2").get_by_label("4", exact=True).check()
    phone.get_by_role("button", name="提交问卷").click()
    expect(phone.locator("h1")).to_have_text("提交成功")
    login_as(phone, server, "county_officer")
    for path in (f"/survey/{survey_id}", f"/survey/{survey_id}/results", "/survey"):
        phone.goto(f"{server}{path}")
        assert sideways(phone) == 0, path
    context.close()
