"""The 12366 consultation as a taxpayer and an agent see it in chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login_as
from tests.consult.test_services import kb  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
AGENT_ANSWER = "这不属于税费问题,请咨询当地动物防疫机构。"


def ask(page: Page, question: str) -> None:
    page.get_by_label("您的问题").fill(question)
    page.get_by_role("button", name="提问").click()
    expect(page).to_have_url(re.compile(r"/ask\?.*q="))


def body_font_px(page: Page) -> float:
    return float(page.evaluate("getComputedStyle(document.body).fontSize").removesuffix("px"))


def test_taxpayer_asks_rates_and_reads_large(page, server, kb):  # noqa: F811
    page.goto(f"{server}/ask")
    ask(page, "个税汇算什么时候办")
    first = page.locator("ol.answers > li.answer").first
    expect(first).to_contain_text("3月1日至6月30日")
    expect(first.locator(".basis")).to_have_text(re.compile(r"依据:.*第十一条"))
    expect(page.locator("p.notice")).to_have_count(0)

    page.get_by_role("button", name="有帮助").click()
    expect(page.get_by_role("status")).to_contain_text("感谢您的评价")

    expect(page.locator("body")).not_to_have_class(re.compile(r"\blarge\b"))
    normal = body_font_px(page)
    page.get_by_role("link", name="大字模式").click()
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge\b"))
    assert body_font_px(page) > normal

    ask(page, "个税汇算什么时候办")  # the form keeps the large mode
    expect(page.locator("body")).to_have_class(re.compile(r"\blarge\b"))
    expect(page.locator("li.answer").first).to_contain_text("3月1日至6月30日")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "ask-large.png", full_page=True)


def test_handoff_answered_by_agent_becomes_knowledge(page, server, kb):  # noqa: F811
    page.goto(f"{server}/ask")
    ask(page, "我家小狗的疫苗怎么打")
    expect(page.locator("p.notice")).to_contain_text("没有十足的把握")
    page.get_by_role("button", name="转人工").click()  # a GET never hands off: the asker's POST does
    expect(page.get_by_role("status")).to_contain_text("已转给 12366 人工坐席")

    login_as(page, server, "agent")
    page.goto(f"{server}/consult/queue")
    waiting = page.locator("li.handoff").filter(has_text="我家小狗的疫苗怎么打")
    waiting.get_by_label("答复").fill(AGENT_ANSWER)
    waiting.get_by_role("button", name="提交答复").click()
    expect(page.get_by_role("status")).to_contain_text("答复已保存")
    expect(page.locator("li.handoff").filter(has_text="我家小狗的疫苗怎么打")).to_have_count(0)

    page.get_by_role("link", name="已答复").click()
    answered = page.locator("li.handoff").filter(has_text="我家小狗的疫苗怎么打")
    expect(answered).to_contain_text(AGENT_ANSWER)
    answered.get_by_label("标签").fill("其他")
    answered.get_by_role("button", name="加入知识库").click()
    expect(page).to_have_url(re.compile(r"/consult/kb/kb-0003(\?.*)?$"))
    expect(page.locator("h1")).to_contain_text("kb-0003")
    expect(page.get_by_role("status")).to_contain_text("已加入知识库")
    expect(page.locator("textarea[name=answer]")).to_have_value(AGENT_ANSWER)

    page.context.clear_cookies()
    page.goto(f"{server}/ask")
    ask(page, "小狗疫苗怎么打")
    first = page.locator("ol.answers > li.answer").first
    expect(first).to_contain_text(AGENT_ANSWER)
    expect(first).to_contain_text("kb-0003")


def test_queue_only_for_agents(page, server, kb):  # noqa: F811
    login_as(page, server, "viewer")
    expect(page.locator("header nav")).to_be_visible()
    expect(page.get_by_role("link", name="12366坐席")).to_have_count(0)
    response = page.goto(f"{server}/consult/queue")
    assert response.status == 403
    expect(page.locator("h1")).to_contain_text("无权访问")

    page.context.clear_cookies()
    login_as(page, server, "agent")
    page.get_by_role("link", name="12366坐席").click()
    expect(page).to_have_url(f"{server}/consult/queue")
    expect(page.locator("h1")).to_contain_text("12366 坐席")
