"""The overview and survey pages in Chromium, after real activity: figures and charts shown."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, shot, signed_in
from tests.browser.shop import busy_shop
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_the_overview_shows_its_figures_and_charts(page: Page, site: Site) -> None:
    activity = await busy_shop(site)
    await signed_in(page, site)

    charts = page.locator("svg.chart")
    await expect(charts).to_have_count(4)
    for name in ("CSAT by week", "NPS by week", "Open tickets by state", "Tickets by topic"):
        chart = page.get_by_role("img", name=name)
        await expect(chart).to_be_visible()
        box = await chart.bounding_box()
        assert box is not None
        assert box["width"] > 300  # drawn at a readable size, not collapsed by the layout
        assert box["height"] > 40
    # a point on this week's CSAT, bars for open tickets
    await expect(page.get_by_role("img", name="CSAT by week").locator("circle")).not_to_have_count(
        0
    )
    await expect(
        page.get_by_role("img", name="Open tickets by state").locator("rect")
    ).to_have_count(3)

    await expect(page.locator("#csat .value")).to_have_text("66.7%")
    await expect(page.locator("#nps .value")).to_have_text("+100")
    await expect(page.locator("#breached-now .value")).to_have_text("1")
    breached = page.locator("#breached-now").get_by_role("link", name=f"#{activity.recovery}")
    await expect(breached).to_be_visible()
    await expect(page.locator("#campaigns")).to_contain_text("christmas-2026")
    await shot(page, "overview")

    await breached.click()
    await expect(page).to_have_url(f"{site.url}/admin/tickets/{activity.recovery}")


async def test_survey_results_and_settings(page: Page, site: Site) -> None:
    await busy_shop(site)
    await signed_in(page, site)
    await (
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Surveys").click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Surveys")
    await page.get_by_label("Period").select_option(label="last 30 days")
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(f"{site.url}/admin/surveys?days=30")
    await expect(page.locator("svg.chart")).to_have_count(4)
    for chart in await page.locator("svg.chart").all():
        await expect(chart).to_be_visible()
    await expect(page.locator("#recoveries .value")).to_have_text("1")
    # the customer's words appear as she typed them, never as markup
    await expect(page.locator("#comments blockquote")).to_have_text(
        "<b>Box</b> crushed & two mugs broke"
    )
    await shot(page, "surveys")

    await page.get_by_role("link", name="Survey settings").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Survey settings")
    await shot(page, "survey-settings")
