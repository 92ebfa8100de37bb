"""Demands and complaints in chromium: a taxpayer files a complaint with an attachment and tracks it, an official
unmasks the contact and handles it, the taxpayer rates and reopens, and the official reads the analysis report."""

from __future__ import annotations

import hashlib
import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from chunfeng.appeals.models import Appeal, AppealAttachment
from chunfeng.org.models import AuditEntry
from tests.browser.conftest import login_as
from tests.web.test_appeals_pages import file_complaint, office  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

TITLE = "出口退税慢,办税服务厅排队久"
TEXT = "出口退税申报后等了十几个工作日还没有到账,去办税服务厅排队两个小时也没有结果,希望加快"
PHONE = "13812345678"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
REPLY = "已督促审核,退税款三个工作日内到账;办税服务厅已增开窗口。"


def fill_complaint(page: Page, *, phone: str = PHONE) -> None:
    form = page.locator("#appeal-form")
    form.get_by_label("投诉", exact=True).check()
    form.get_by_label("标题").fill(TITLE)
    form.get_by_label("内容").fill(TEXT)
    form.locator("select[name=region]").select_option("110101")  # the region picker (province → city)
    form.get_by_label("涉及事项").fill("出口退税")
    form.get_by_label("称呼").fill("张三")
    form.get_by_label("手机或电话").fill(phone)


def count(db, model, *where) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_missing_contact_is_refused_and_the_form_keeps_what_was_typed(page, server, office):  # noqa: F811
    page.goto(f"{server}/appeals/new")
    fill_complaint(page, phone="")
    page.get_by_role("button", name="提交").click()
    expect(page).to_have_url(f"{server}/appeals/new")
    expect(page.get_by_role("alert")).to_contain_text("电话或电子邮箱")
    form = page.locator("#appeal-form")
    expect(form.get_by_label("投诉", exact=True)).to_be_checked()
    expect(form.get_by_label("标题")).to_have_value(TITLE)
    expect(form.get_by_label("内容")).to_have_value(TEXT)
    expect(form.locator("select[name=region]")).to_have_value("110101")
    expect(form.get_by_label("称呼")).to_have_value("张三")
    assert count(office, Appeal) == 0


@pytest.mark.parametrize("width", [1366, 390])
def test_a_malformed_phone_is_shown_beside_the_phone_on_a_desk_and_a_phone(browser, server, office, width):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": width, "height": 844})
    page = context.new_page()
    page.goto(f"{server}/appeals/new")
    fill_complaint(page, phone="1381234")
    page.get_by_role("button", name="提交").click()
    expect(page.get_by_role("alert")).to_contain_text("电话“1381234”格式不对")  # the summary, read out first
    phone = page.locator("#appeal-form input[name=phone]")
    expect(phone).to_have_value("1381234")
    expect(phone).to_have_attribute("aria-invalid", "true")
    message = page.locator("#error-phone").bounding_box()
    field = phone.bounding_box()
    assert message and field and 0 <= message["y"] - (field["y"] + field["height"]) < 40  # right under its field
    assert message["x"] + message["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0
    expect(page.locator("#appeal-form").get_by_label("内容")).to_have_value(TEXT)
    assert count(office, Appeal) == 0
    context.close()


def test_complaint_from_filing_through_handling_rating_and_reopening(page, browser, server, server_files, office,  # noqa: F811
                                                                     tmp_path):
    # 1. The taxpayer, not logged in, files a complaint with a PDF attached.
    attachment = tmp_path / "退税申报回执.pdf"
    attachment.write_bytes(PDF)
    page.goto(f"{server}/appeals/new")
    fill_complaint(page)
    page.get_by_label("附件").set_input_files(attachment)
    page.get_by_role("button", name="提交").click()
    expect(page).to_have_url(re.compile(r"/appeals/track/[\w-]+\?new=1$"))
    expect(page.locator("#number")).to_have_text(re.compile(r"^\d{14}$"))
    expect(page.locator("#state")).to_have_text("已接收")
    expect(page.locator("h1")).to_have_text(f"投诉 · {TITLE}")
    expect(page.locator("dl.facts")).to_contain_text("北京测试县税务局")  # routed by region 110101
    track_url = page.url.removesuffix("?new=1")
    expect(page.locator("#track-link")).to_have_text(track_url)  # the full address, to keep or send on
    number = page.locator("#number").inner_text()

    with office.read() as s:
        appeal = s.scalar(select(Appeal))
        appeal_id = appeal.id
        assert (appeal.number, appeal.kind, appeal.channel, appeal.state) == (number, "complaint", "web", "received")
        assert appeal.phone == PHONE and appeal.region == "110101" and 54 in appeal.measures
        stored = s.scalars(select(AppealAttachment).where(AppealAttachment.appeal_id == appeal_id)).all()
    assert [(a.kind, a.size) for a in stored] == [("pdf", len(PDF))]
    digest = hashlib.sha256(PDF).hexdigest()
    assert stored[0].sha256 == digest and (server_files / digest[:2] / digest).read_bytes() == PDF

    # 2. An official finds it, unmasks the contact (audited) and handles it to a reply.
    context = browser.new_context(locale="zh-CN")
    context.set_default_timeout(10_000)
    try:
        official = context.new_page()
        login_as(official, server, "handler")
        official.goto(f"{server}/appeals")
        row = official.locator("#appeals tbody tr").filter(has_text=number)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(TITLE)
        expect(row).to_contain_text("已接收")
        row.get_by_role("link", name=TITLE).click()
        expect(official).to_have_url(f"{server}/appeals/{appeal_id}")
        contact = official.locator("#contact")
        expect(contact).to_contain_text("138****5678")
        expect(contact).not_to_contain_text(PHONE)
        expect(official.locator("dl.facts").get_by_role("link", name="第54条")).to_have_attribute("href", "/plan/measures/54")
        assert count(office, AuditEntry, AuditEntry.action == "appeals.contact.viewed") == 0

        official.get_by_role("button", name="查看完整联系方式").click()
        expect(contact).to_contain_text(f"张三 · {PHONE}")
        expect(official.get_by_role("button", name="查看完整联系方式")).to_have_count(0)
        assert count(office, AuditEntry, AuditEntry.action == "appeals.contact.viewed",
                     AuditEntry.object_id == str(appeal_id), AuditEntry.actor == "handler") == 1

        state = official.locator("#state")
        official.get_by_role("button", name="受理", exact=True).click()
        expect(official).to_have_url(f"{server}/appeals/{appeal_id}?done=accept")
        expect(state).to_have_text("已受理")
        expect(contact).to_contain_text("138****5678")  # masked again on the next page
        official.get_by_role("button", name="开始办理", exact=True).click()
        expect(official).to_have_url(f"{server}/appeals/{appeal_id}?done=start")
        expect(state).to_have_text("办理中")
        official.get_by_label("答复内容").fill(REPLY)
        official.get_by_role("button", name="答复", exact=True).click()
        expect(official).to_have_url(f"{server}/appeals/{appeal_id}?done=reply")
        expect(state).to_have_text("已答复")
        expect(official.locator("dl.facts")).to_contain_text(REPLY)
        with office.read() as s:
            assert (s.get(Appeal, appeal_id).state, s.get(Appeal, appeal_id).reply) == ("replied", REPLY)

        # 3. The taxpayer, in the first context, rates the reply and then asks once for it to be handled again.
        page.goto(track_url)
        expect(page.locator("#state")).to_have_text("已答复")
        expect(page.locator("#reply")).to_have_text(REPLY)
        rate_form = page.locator("#rate-form")
        rate_form.get_by_label("4 分", exact=True).check()
        rate_form.get_by_role("button", name="提交评价").click()
        expect(page).to_have_url(f"{track_url}?rated=1")
        expect(page.locator("#state")).to_have_text("已办结")
        expect(page.get_by_role("status")).to_contain_text("感谢您的评价")
        expect(page.locator("dl.facts")).to_contain_text("4 分")
        expect(page.locator("#rate-form")).to_have_count(0)
        with office.read() as s:
            rated = s.get(Appeal, appeal_id)
            assert (rated.rating, rated.state, rated.reopened) == (4, "closed", 0)

        reopen_form = page.locator("#reopen-form")
        expect(reopen_form).to_have_count(1)
        reopen_form.get_by_label("不满意的原因").fill("退税款仍未到账")
        reopen_form.get_by_role("button", name="申请重新办理").click()
        expect(page).to_have_url(f"{track_url}?reopened=1")
        expect(page.locator("#state")).to_have_text("重新办理")
        expect(page.get_by_role("status")).to_contain_text("已申请重新办理")
        expect(page.locator("#reopen-form")).to_have_count(0)
        expect(page.locator("ol.thread")).to_contain_text("退税款仍未到账")
        with office.read() as s:
            reopened = s.get(Appeal, appeal_id)
            assert (reopened.state, reopened.reopened, reopened.rating) == ("reopened", 1, None)

        official.reload()
        expect(official.locator("#state")).to_have_text("重新办理(已重新办理)")
        expect(official.get_by_role("button", name="开始办理", exact=True)).to_be_visible()

        # 4. The official reads the analysis report for a period covering today, with its downloads.
        today = date.today().isoformat()
        official.goto(f"{server}/appeals")
        official.locator("p.toolbar").get_by_role("link", name="分析").click()
        expect(official).to_have_url(f"{server}/appeals/analysis")
        analysis = official.locator("#analysis-form")
        analysis.get_by_label("自").fill(today)
        analysis.get_by_label("至").fill(today)
        analysis.get_by_role("button", name="分析").click()
        expect(official).to_have_url(re.compile(rf"/appeals/analysis\?start={today}&end={today}"))
        report = official.locator("section.report")
        expect(report.locator("h1")).to_contain_text("服务投诉和舆情分析报告")
        expect(report).to_contain_text("期内共接收诉求、投诉、意见建议和舆情 1 件")
        expect(report.locator("svg").first).to_be_visible()
        assert report.locator("svg").count() >= 1

        xlsx_link = analysis.get_by_role("link", name="导出 xlsx")
        pdf_link = analysis.get_by_role("link", name="下载 PDF")
        expect(xlsx_link).to_have_attribute("href", re.compile(rf"start={today}&end={today}&unit=110000&format=xlsx$"))
        expect(pdf_link).to_have_attribute("href", re.compile(rf"start={today}&end={today}&unit=110000&format=pdf$"))
        xlsx = official.request.get(f"{server}{xlsx_link.get_attribute('href')}")
        assert xlsx.ok and xlsx.body().startswith(b"PK")
        pdf = official.request.get(f"{server}{pdf_link.get_attribute('href')}")
        assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    finally:
        context.close()


def test_a_mistyped_reassignment_is_shown_beside_the_unit_and_kept(page, server, office):  # noqa: F811
    """Issue 14 item 5: a unit code typed wrong re-renders the item with the message at the field, not a 404 page."""
    file_complaint(server)
    with office.read() as session:
        appeal_id, unit_before = session.execute(select(Appeal.id, Appeal.unit_id)).one()
    login_as(page, server, "handler")
    page.goto(f"{server}/appeals/{appeal_id}")
    page.get_by_label("改派给").fill("11O100")
    page.get_by_label("关联措施编号").fill("53, 54")
    page.get_by_role("button", name="改派或改分类").click()
    expect(page.locator("#error-unit_code")).to_have_text("没有代码为“11O100”的单位")
    expect(page.get_by_label("改派给")).to_have_value("11O100")
    expect(page.get_by_label("改派给")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("关联措施编号")).to_have_value("53, 54")
    expect(page.get_by_role("heading", level=1)).to_contain_text("出口退税慢")
    with office.read() as session:
        assert session.scalar(select(Appeal.unit_id).where(Appeal.id == appeal_id)) == unit_before
    page.get_by_label("改派给").fill("110100")
    page.get_by_role("button", name="改派或改分类").click()
    expect(page.get_by_role("status")).to_contain_text("已改派或改分类")
    with office.read() as session:
        assert session.scalar(select(Appeal.unit_id).where(Appeal.id == appeal_id)) != unit_before
