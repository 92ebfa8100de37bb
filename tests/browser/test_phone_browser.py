"""Issue 14.12: at 390 px seven of thirteen pages scrolled sideways, the public complaint form among them. On a
phone-sized chromium the public pages and the officials' main lists fit the screen: wide tables scroll inside
their card, forms take the screen's width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chunfeng.push import services as push
from tests.browser.conftest import login_as
from tests.web.test_appeals_pages import file_complaint, office  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def sideways(page) -> int:
    """How far the page scrolls sideways (0: it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.fixture
def phone(browser):
    context = browser.new_context(locale="zh-CN", viewport=PHONE)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_public_pages_fit_a_phone(phone, server, office):  # noqa: F811
    _, sent = file_complaint(server)
    for path in ("/login", "/ask", "/ask?q=小规模纳税人增值税征收率", "/appeals/new", sent.headers["location"]):
        phone.goto(f"{server}{path}")
        assert sideways(phone) == 0, path
    phone.goto(f"{server}/appeals/new")
    box = phone.locator("form textarea").first.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_officials_lists_fit_a_phone_and_their_tables_scroll_in_the_card(phone, server, office, db):  # noqa: F811
    with db.write() as session:
        push.seed_policies(session)
    login_as(phone, server, "handler")
    for path in ("/ledger", "/appeals", "/push/policies", "/push/campaigns", "/plan"):
        phone.goto(f"{server}{path}")
        expect(phone.locator("main")).to_be_visible()
        assert sideways(phone) == 0, path
    phone.goto(f"{server}/push/policies")
    card = phone.locator(".card", has=phone.locator("table")).first
    assert card.evaluate("c => getComputedStyle(c).overflowX") == "auto"
