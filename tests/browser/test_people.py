"""A customer's whole story on her profile after real activity, and a colleague added through
the staff form who then logs in and finds My account (with screenshots)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, login, shot, signed_in
from tests.browser.shop import WEI_COMMENT, busy_shop
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_find_a_customer_and_read_their_profile(page: Page, site: Site) -> None:
    activity = await busy_shop(site)
    await signed_in(page, site, "maria", "staff")
    await (
        page.get_by_role("navigation", name="Sections")
        .get_by_role("link", name="Customers")
        .click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
    await expect(page.get_by_role("link", name="Wei Zhang")).to_be_visible()  # wrote recently
    await shot(page, "customers")

    await page.get_by_role("searchbox", name="Search").fill("Wei")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_text("Customers matching “Wei”")).to_be_visible()
    await page.get_by_role("link", name="Wei Zhang").click()

    await expect(page.get_by_role("heading", level=1)).to_contain_text("Wei Zhang")
    tickets = page.get_by_role("region", name="Tickets")
    await expect(tickets.get_by_role("link", name=f"#{activity.recovery}")).to_be_visible()
    await expect(page.get_by_role("region", name="Survey answers")).to_contain_text(WEI_COMMENT)
    await expect(page.get_by_role("region", name="Campaign reminders")).to_contain_text(
        "christmas-2026"
    )
    await expect(page.get_by_role("region", name="Purchase history")).to_be_visible()
    await shot(page, "customer-profile-after-activity")


async def test_an_admin_adds_a_colleague_who_then_logs_in(page: Page, site: Site) -> None:
    await signed_in(page, site, "alex", "admin")
    await page.get_by_role("navigation", name="Sections").get_by_role("link", name="Staff").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Staff")
    await shot(page, "staff")
    form = page.get_by_role("region", name="Add an account")
    await form.get_by_label("Username (letters").fill("sam")
    await form.get_by_label("Name shown to colleagues").fill("Sam Lee")
    await form.get_by_role("combobox", name="Role").select_option("staff")
    await form.get_by_label("First password").fill("a long enough secret")
    await form.get_by_label("The password again").fill("a long enough secret")
    await form.get_by_role("button", name="Add account").click()
    await expect(page.get_by_role("status")).to_have_text("Account sam (staff) added.")
    await expect(page.get_by_role("row").filter(has_text="Sam Lee")).to_be_visible()
    await shot(page, "staff-account-added")

    await page.get_by_role("button", name="Log out").click()
    await login(page, site, "sam", "a long enough secret")
    await expect(page).to_have_url(f"{site.url}/admin")
    await page.get_by_role("link", name="Sam Lee · staff").click()
    await expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    await shot(page, "my-account")
