"""Campaigns in Chromium: the live preview follows the form as the admin types (campaigns.js
under the strict CSP), then the draft is saved and scheduled; screenshots of each page."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, shot
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_create_a_campaign_watch_the_preview_follow_the_rules_and_schedule_it(
    admin_page: Page, site: Site
) -> None:
    page = admin_page
    await (
        page.get_by_role("navigation", name="Sections")
        .get_by_role("link", name="Campaigns")
        .click()
    )
    await expect(page.get_by_text("No campaigns yet")).to_be_visible()
    await page.get_by_role("link", name="New campaign").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("New campaign")
    await expect(page.get_by_label("Occasion", exact=True)).to_have_value(
        "christmas"
    )  # the next one

    # No rules: the demo customers on Telegram, Ann and Wei, with their own messages.
    count = page.locator("#campaign-preview .audience-count")
    await expect(count).to_have_text("2")
    await expect(page.locator("#campaign-preview")).to_contain_text("Ann Peeters")
    await expect(page.locator("#campaign-preview")).to_contain_text("Wei Zhang")
    await page.get_by_label("Customer country").fill("BE")
    await expect(count).to_have_text("1")  # Ann is in Belgium
    await expect(page.locator("#campaign-preview")).not_to_contain_text("Wei Zhang")
    await page.get_by_label("Customer country").fill("")
    await page.get_by_label("Bought for this occasion").fill("21")
    await expect(count).to_have_text("0")
    await expect(page.locator("#campaign-preview")).to_contain_text("51 match the rules")
    await page.get_by_label("Bought for this occasion").fill("")
    await expect(count).to_have_text("2")
    await page.get_by_label("Text in en").fill(
        "Hi {{ customer.first_name }}, {{ occasion.label }} is near!"
    )
    await expect(page.locator("#campaign-preview")).to_contain_text("Hi Ann, Christmas is near!")
    await page.get_by_label("Name", exact=True).fill("christmas-2026")
    await shot(page, "campaign-new-with-preview")

    await page.get_by_role("button", name="Save draft").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Saved draft christmas-2026 (christmas 2026)."
    )
    await expect(page.get_by_role("heading", level=1)).to_contain_text("draft")
    await page.get_by_role("button", name="Schedule").click()
    await expect(page.get_by_role("status")).to_contain_text("Campaign christmas-2026 is scheduled")
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    await expect(page.locator("svg.chart")).to_be_visible()
    await shot(page, "campaign-scheduled")
    campaign = site.desk.care.deps.campaigns.campaigns.by_name("christmas-2026")
    assert campaign is not None
    assert campaign.status == "scheduled"

    await page.get_by_role("link", name="← Campaigns").click()
    await expect(page.get_by_role("link", name="christmas-2026")).to_be_visible()
    await shot(page, "campaigns-list")
