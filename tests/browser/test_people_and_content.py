"""Customers, FAQ, canned replies and staff pages in Chromium: they work by hand, without a
script error or a blocked style (the page fixture fails on either), with screenshots."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, shot
from tests.e2e.conftest import ANN
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_search_a_customer_and_open_her_profile(admin_page: Page, site: Site) -> None:
    page = admin_page
    await site.desk.complaint(ANN, "The mugs arrived broken")
    await (
        page.get_by_role("navigation", name="Sections")
        .get_by_role("link", name="Customers")
        .click()
    )
    await page.get_by_label("Search").fill("Ann")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("link", name="Ann Peeters")).to_be_visible()
    await shot(page, "customers-search")
    await page.get_by_role("link", name="Ann Peeters").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ann Peeters")
    await expect(page.get_by_role("heading", name="Purchase history (4)")).to_be_visible()
    await expect(page.get_by_role("link", name="#1")).to_have_attribute("href", "/admin/tickets/1")
    await shot(page, "customer-profile")


async def test_write_a_faq_entry(admin_page: Page, site: Site) -> None:
    # (A refused form answers 400, which the page fixture counts as a browser error; refusals
    # are checked in tests/web/test_content.py.)
    page = admin_page
    await page.goto("/admin/faq")
    await shot(page, "faq-list")
    await page.get_by_role("link", name="Add an entry").click()
    await page.get_by_label("Slug").fill("collect-here")
    await page.get_by_label("Question").fill("Can I collect my parcel?")
    await page.get_by_label("Answer").fill("Yes, weekdays 9-17.")
    await shot(page, "faq-edit")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("FAQ entry collect-here (en) added")
    await expect(page.get_by_role("cell", name="Can I collect my parcel?")).to_be_visible()


async def test_preview_and_save_a_canned_reply(staff_page: Page, site: Site) -> None:
    page = staff_page
    await page.goto("/admin/canned/new")
    await page.get_by_label("Name").fill("sorry")
    await page.get_by_label("Text").fill("We are sorry, {{ full_name }}.")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("pre.preview")).to_have_text("We are sorry, Ann Peeters.")
    await shot(page, "canned-preview")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_contain_text("Canned reply sorry saved")
    await expect(page.get_by_text("from config.toml")).to_be_visible()
    await shot(page, "canned-list")


async def test_staff_page_and_my_account(admin_page: Page, site: Site) -> None:
    page = admin_page
    site.account("maria", "staff", display_name="Maria")
    await page.goto("/admin/staff")
    await expect(page.get_by_role("heading", name="Dashboard accounts")).to_be_visible()
    await shot(page, "staff")
    await page.get_by_role("link", name="My account").click()
    await expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    await shot(page, "my-account")
