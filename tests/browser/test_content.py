"""A FAQ entry written on the web answers a customer in Telegram at once (the forms' pages and
screenshots: test_people_and_content.py)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER
from tests.e2e.conftest import ANN, text_of
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_an_admin_adds_a_faq_entry_and_the_bot_answers_with_it(
    admin_page: Page, site: Site
) -> None:
    page = admin_page
    await page.get_by_role("navigation", name="Sections").get_by_role("link", name="FAQ").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("FAQ")

    await page.get_by_role("link", name="Add an entry").click()
    await page.get_by_label("Slug").fill("engraving")
    await page.get_by_role("combobox", name="Language").select_option("en")
    await page.get_by_label("Question").fill("Can you engrave a mug?")
    await page.get_by_label("Keywords").fill("engrave personalise name")
    await page.get_by_label("Answer").fill("Yes: up to 20 letters on any mug, free of charge.")
    await page.get_by_role("button", name="Save").click()

    await expect(page.get_by_role("status")).to_have_text(
        "FAQ entry engraving (en) added: the bot answers with it now."
    )
    row = page.get_by_role("row").filter(has_text="engraving")
    await expect(row).to_contain_text("Can you engrave a mug?")
    replies = await site.desk.say(ANN, "Can you engrave a mug?")
    assert "Yes: up to 20 letters on any mug, free of charge." in text_of(replies)

    await row.get_by_role("link", name="Edit").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Edit FAQ entry engraving (en)")
    await expect(page.get_by_label("Answer")).to_have_value(
        "Yes: up to 20 letters on any mug, free of charge."
    )
