"""Issue 14.13 at 1366×768 in chromium: the dashboard table stayed outside its card, the 安全管理员 page's
"重置动态口令" button was one character wide, the briefing page had no way back; issue 14.10: the inbox sender read
"system" and TOTP enrolment showed no QR code."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from chunfeng.org.models import User
from tests.browser.conftest import login_as
from tests.web.test_ledger_pages import make_chain

pytestmark = pytest.mark.browser

DESK = {"width": 1366, "height": 768}


@pytest.fixture
def desk(browser):
    context = browser.new_context(locale="zh-CN", viewport=DESK)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def inside_its_card(page, selector: str) -> bool:
    """The element ends within its card's visible box (the card may scroll it), and the page does not scroll."""
    return page.evaluate("""s => { const t = document.querySelector(s), c = t.closest('.card');
        const scrolls = getComputedStyle(c).overflowX === 'auto';
        return document.documentElement.scrollWidth <= window.innerWidth
               && (scrolls || t.getBoundingClientRect().right <= c.getBoundingClientRect().right + 0.5); }""", selector)


def test_dashboard_table_stays_in_its_card_and_the_briefing_leads_back(desk, server, bureau):
    make_chain(bureau)
    login_as(desk, server, "nat_office")
    desk.goto(f"{server}/ledger")
    assert inside_its_card(desk, "table.dashboard")
    desk.goto(f"{server}/ledger/briefing?unit=110000")
    expect(desk.locator("p.sub")).to_contain_text("国家税务总局北京市税务局编制")
    desk.locator("#briefing-back").click()
    expect(desk).to_have_url(f"{server}/ledger/units/110000")


def test_reset_button_reads_whole_on_the_security_page(desk, server, bureau, add_users):
    add_users({"sec": ("110000", ["security_admin"])})
    with bureau.write() as s:
        s.scalar(select(User).where(User.username == "county_reporter")).totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    login_as(desk, server, "sec")
    desk.goto(f"{server}/security")
    button = desk.get_by_role("button", name="重置动态口令").first
    box = button.bounding_box()
    font = float(button.evaluate("b => getComputedStyle(b).fontSize").removesuffix("px"))
    assert box and box["width"] > 5 * font and box["height"] < 3 * font  # six characters on one line
    assert inside_its_card(desk, "#accounts")


def test_totp_enrolment_draws_a_qr_code(desk, server, bureau):
    login_as(desk, server, "nat_office")
    desk.goto(f"{server}/totp")
    desk.get_by_role("button", name="生成新密钥").click()
    qr = desk.locator("#totp-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] >= 150 and abs(box["width"] - box["height"]) < 1
    assert len(desk.locator("#totp-secret").inner_text()) == 32
