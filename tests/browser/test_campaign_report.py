"""A sent campaign's report in Chromium: its figures and funnel chart, and Pause from the page
(creating and scheduling a campaign: test_campaigns.py)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, shot
from tests.web.conftest import Site
from tests.web.test_overview import sent_campaign

pytestmark = BROWSER


async def test_a_sent_campaigns_report_shows_its_funnel_and_can_be_paused(
    admin_page: Page, site: Site
) -> None:
    page = admin_page
    campaign_id = sent_campaign(site)  # running, sent to Ann and Wei, clicked by Ann
    await (
        page.get_by_role("navigation", name="Sections")
        .get_by_role("link", name="Campaigns")
        .click()
    )
    await page.get_by_role("link", name="christmas-2026").click()
    await expect(page).to_have_url(f"{site.url}/admin/campaigns/{campaign_id}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("christmas-2026 running")

    metric = page.locator(".metric")
    await expect(metric.filter(has_text="Sent").locator(".value")).to_have_text("2")
    await expect(metric.filter(has_text="Clicked").locator(".value")).to_have_text("1")
    funnel = page.get_by_role("img", name="Campaign christmas-2026: planned, sent, clicked")
    await expect(funnel).to_be_visible()
    await expect(funnel.locator("rect")).to_have_count(4)  # planned, sent, clicked, converted
    await expect(funnel).to_contain_text("50%")  # half the planned recipients clicked
    await shot(page, "campaign-report")

    await page.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("christmas-2026 paused")
    campaign = site.desk.care.deps.campaigns.campaigns.by_name("christmas-2026")
    assert campaign is not None
    assert campaign.status == "paused"
