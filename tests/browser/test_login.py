"""Signing in and out through the real login form, in Chromium."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, login, shot
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_a_wrong_password_shows_the_error_and_keeps_the_username(
    page: Page, site: Site
) -> None:
    site.account("alex", "admin", display_name="Alex Admin")
    await page.goto("/admin")
    await expect(page).to_have_url(f"{site.url}/admin/login?next=/admin")
    await shot(page, "login")

    await login(page, site, "alex", "not the password")
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    await expect(page.get_by_label("Username")).to_have_value("alex")
    await expect(page.get_by_label("Password")).to_have_value("")
    await shot(page, "login-wrong-password")


async def test_the_right_password_opens_the_overview_and_logout_ends_the_session(
    page: Page, site: Site
) -> None:
    site.account("alex", "admin", display_name="Alex Admin")
    await login(page, site, "alex")
    await expect(page).to_have_url(f"{site.url}/admin")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    await expect(page.get_by_text("Alex Admin · admin")).to_be_visible()
    await expect(page.get_by_role("navigation", name="Sections")).to_be_visible()
    await shot(page, "overview-empty-shop")

    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(f"{site.url}/admin/login")
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()
    # the old session is gone: the overview asks for a login again
    await page.goto("/admin")
    await expect(page).to_have_url(f"{site.url}/admin/login?next=/admin")


async def test_staff_see_only_the_sections_their_role_allows(page: Page, site: Site) -> None:
    site.account("maria", "staff", display_name="Maria")
    await login(page, site, "maria")
    sections = page.get_by_role("navigation", name="Sections").get_by_role("link")
    await expect(sections).to_have_text(
        ["Overview", "Tickets", "Customers", "Surveys", "Canned replies"]
    )
