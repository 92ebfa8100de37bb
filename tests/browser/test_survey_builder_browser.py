"""From building to report in a browser: an official builds a questionnaire on the page (a matrix and a skip rule
among its questions), previews it at a phone's width (the matrix stacked) and a desk's (a table), publishes it; a
respondent on a phone, JavaScript off, answers through the open link — a missing matrix row is named, the skip rule
spares the second respondent the matrix — and the official sees the answers counted, the matrix row by row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login_as
from tests.web.test_survey_builder_pages import office  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
ARTIFACTS = Path(__file__).with_name("artifacts")


def sideways(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def add_question(page, *, code, kind, text, options="", rows="", required=False, show_if="", show_values=""):
    form = page.locator("#question-form form")
    form.locator("input[name=code]").fill(code)
    form.locator("select[name=kind]").select_option(kind)
    form.locator("textarea[name=text]").fill(text)
    form.locator("textarea[name=options]").fill(options)
    form.locator("textarea[name=rows]").fill(rows)
    form.locator("input[name=required]").set_checked(required)
    form.locator("select[name=show_if]").select_option(show_if)
    form.locator("textarea[name=show_values]").fill(show_values)
    form.get_by_role("button", name="添加这道题").click()
    expect(page.get_by_role("status")).to_have_text("已保存。")


def same_line(page, first, second) -> bool:
    a, b = page.locator(first).first.bounding_box(), page.locator(second).first.bounding_box()
    return abs((a["y"] + a["height"] / 2) - (b["y"] + b["height"] / 2)) < 8


def test_from_building_on_the_page_to_the_report(browser, server, office):  # noqa: F811
    desk_context = browser.new_context(locale="zh-CN", viewport=DESK)
    desk_context.set_default_timeout(10_000)
    desk = desk_context.new_page()
    login_as(desk, server, "county_officer")
    desk.goto(f"{server}/survey")
    draft = desk.locator("#new-draft")
    draft.locator("input[name=title]").fill("办税服务满意度调查")
    draft.get_by_role("button", name="新建并添加题目").click()
    expect(desk).to_have_url(re.compile(r"/survey/\d+/build$"))
    survey_id = int(re.search(r"/survey/(\d+)/build", desk.url)[1])

    add_question(desk, code="Q1", kind="single", text="您是否在办税服务厅办过业务?", options="是\n否", required=True)
    # A mistake first: a matrix needs at least two rows; the message stands beside the field, the typing kept.
    add = desk.locator("#question-form form")
    add.locator("input[name=code]").fill("Q2")
    add.locator("select[name=kind]").select_option("matrix")
    add.locator("textarea[name=text]").fill("您对以下各项服务的满意度")
    add.locator("textarea[name=rows]").fill("办税服务厅")
    add.get_by_role("button", name="添加这道题").click()
    expect(desk.locator("#error-rows")).to_contain_text("矩阵题至少要有两个不同的子项")
    expect(desk.locator("#question-form textarea[name=text]")).to_have_value("您对以下各项服务的满意度")
    add_question(desk, code="Q2", kind="matrix", text="您对以下各项服务的满意度", rows="办税服务厅\n12366\n电子税务局",
                 required=True, show_if="Q1", show_values="是")
    add_question(desk, code="Q3", kind="text", text="还有什么建议?")
    expect(desk.locator("#questions tbody tr")).to_have_count(3)
    desk.screenshot(path=str(ARTIFACTS / "survey-build-1280.png"), full_page=True)

    desk.get_by_role("link", name="预览(手机 / 电脑)").first.click()
    expect(desk.locator(".preview-frame")).to_have_attribute("data-width", "390")
    phone_frame = desk.locator(".preview-frame").bounding_box()
    assert round(phone_frame["width"]) == 390
    # At a phone's width each matrix row stacks: its name above its choices, the choices labelled.
    assert not same_line(desk, "#q-Q2\\.1 th", "#q-Q2\\.1 td")
    assert desk.locator("#q-Q2\\.1 .matrix-choice").first.bounding_box()["x"] > 0
    desk.screenshot(path=str(ARTIFACTS / "survey-preview-390.png"), full_page=True)
    desk.get_by_role("link", name=re.compile("电脑")).click()
    expect(desk.locator(".preview-frame")).to_have_attribute("data-width", "1280")
    assert same_line(desk, "#q-Q2\\.1 th", "#q-Q2\\.1 td")  # a table on a desk: the row and its choices in line
    assert desk.locator("#q-Q2\\.1 .matrix-choice").first.bounding_box()["x"] < 0  # the header names the choices

    desk.goto(f"{server}/survey/{survey_id}")
    desk.get_by_role("button", name=re.compile("发布此版本")).click()
    link = desk.locator("#public-link").get_attribute("href")

    phone_context = browser.new_context(locale="zh-CN", viewport=PHONE, java_script_enabled=False)
    phone_context.set_default_timeout(10_000)
    phone = phone_context.new_page()
    phone.goto(link)
    assert sideways(phone) == 0
    assert not same_line(phone, "#q-Q2\\.1 th", "#q-Q2\\.1 td")  # stacked on the phone too
    phone.locator("#q-Q1").get_by_label("是", exact=True).check()
    phone.locator("#q-Q2\\.1").get_by_label("5", exact=True).check()
    phone.locator("#q-Q2\\.2").get_by_label("4", exact=True).check()
    phone.get_by_role("button", name="提交问卷").click()
    expect(phone.locator("#q-Q2 .error-inline")).to_have_text("此题为必答题,每一项都要选择;还没有回答:电子税务局")
    expect(phone.locator("#q-Q2\\.1").get_by_label("5", exact=True)).to_be_checked()
    assert sideways(phone) == 0
    phone.screenshot(path=str(ARTIFACTS / "survey-matrix-390.png"), full_page=True)
    phone.locator("#q-Q2\\.3").get_by_label("3", exact=True).check()
    phone.get_by_role("button", name="提交问卷").click()
    expect(phone.locator("h1")).to_have_text("提交成功")
    # A second respondent never went to the hall: the matrix is skipped, required as it is.
    phone.goto(link)
    phone.locator("#q-Q1").get_by_label("否", exact=True).check()
    phone.locator("textarea[name=Q3]").fill("希望电子税务局更快")
    phone.get_by_role("button", name="提交问卷").click()
    expect(phone.locator("h1")).to_have_text("提交成功")
    phone_context.close()

    desk.goto(f"{server}/survey/{survey_id}/results")
    expect(desk.locator("body")).to_contain_text("答卷总数")
    expect(desk.locator("#result-Q2\\.1 h2")).to_contain_text("您对以下各项服务的满意度 — 办税服务厅")
    expect(desk.locator("#result-Q2\\.1")).to_contain_text("平均分 5.00")
    expect(desk.locator("#result-Q2\\.2")).to_contain_text("1 人作答")
    expect(desk.locator("#result-Q1")).to_contain_text("2 人作答")
    desk.goto(f"{server}/survey/{survey_id}/analysis?row=Q2.1&col=Q1")
    expect(desk.locator("body")).to_contain_text("您对以下各项服务的满意度 — 电子税务局")
    desk.screenshot(path=str(ARTIFACTS / "survey-analysis-1280.png"), full_page=True)
    desk_context.close()
