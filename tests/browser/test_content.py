"""The FAQ editor and canned replies in Chromium: a FAQ entry written on the web answers a
customer in Telegram at once; a canned reply is previewed, then saved (with screenshots)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, shot
from tests.e2e.conftest import ANN, text_of
from tests.web.conftest import Site

pytestmark = BROWSER


async def test_an_admin_adds_a_faq_entry_and_the_bot_answers_with_it(
    admin_page: Page, site: Site
) -> None:
    # (A refused form answers 400, which the page fixture counts as a browser error; refusals
    # are checked in tests/web/test_content.py.)
    page = admin_page
    await page.get_by_role("navigation", name="Sections").get_by_role("link", name="FAQ").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("FAQ")
    await shot(page, "faq-list")

    await page.get_by_role("link", name="Add an entry").click()
    await page.get_by_label("Slug").fill("engraving")
    await page.get_by_role("combobox", name="Language").select_option("en")
    await page.get_by_label("Question").fill("Can you engrave a mug?")
    await page.get_by_label("Keywords").fill("engrave personalise name")
    await page.get_by_label("Answer").fill("Yes: up to 20 letters on any mug, free of charge.")
    await shot(page, "faq-edit")
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
    await expect(page.get_by_role("row").filter(has_text="/canned sorry")).to_contain_text(
        "We are sorry, Ann Peeters."
    )
    await expect(page.get_by_text("from config.toml")).to_be_visible()
    await shot(page, "canned-list")
