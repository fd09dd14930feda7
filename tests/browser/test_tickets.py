"""Tickets in Chromium: a staff member opens a customer's complaint, replies on the web, and the
reply reaches the customer's chat in the Bot API sandbox."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, shot
from tests.e2e.conftest import ANN, text_of
from tests.e2e.test_tickets import STAFF_CHAT
from tests.web.conftest import Site

pytestmark = BROWSER

REPLY = "So sorry Ann!\nA new set of mugs is on its way."


async def test_open_a_ticket_and_reply_from_the_web_to_the_customers_chat(
    staff_page: Page, site: Site
) -> None:
    page, desk = staff_page, site.desk
    opened = await desk.complaint(ANN, "The mugs arrived broken")
    assert "ticket #1" in opened

    await (
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Tickets").click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Tickets")
    ticket_row = page.get_by_role("row").filter(has=page.get_by_role("link", name="#1"))
    await expect(ticket_row).to_contain_text("Ann Peeters")
    await expect(ticket_row).to_contain_text("open")
    await shot(page, "tickets")

    await ticket_row.get_by_role("link", name="#1").click()
    await expect(page).to_have_url(f"{site.url}/admin/tickets/1")
    conversation = page.locator(".conversation")
    await expect(conversation).to_contain_text("The mugs arrived broken")
    customer = page.locator(".customer-card")
    await expect(customer.get_by_role("link", name="Ann Peeters")).to_be_visible()

    after = desk.sandbox.seq
    await page.get_by_label("Message").fill(REPLY)
    await page.get_by_role("button", name="Send reply").click()
    await expect(page.get_by_role("status")).to_have_text(
        "The reply was sent to the customer on Telegram."
    )
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    [to_ann] = desk.sent_to(ANN.id, after)
    assert to_ann["plain_text"] == REPLY  # the textarea's CRLF arrives as LF
    [copy] = desk.sent_to(STAFF_CHAT, after)  # the topic sees it, as a reply typed there
    assert copy["plain_text"] == f"💬 Maria (dashboard) to the customer:\n{REPLY}"
    await expect(conversation).to_contain_text("from the dashboard")
    await expect(page.locator("h1 .badge").first).to_have_text("answered")

    # Ann answers in Telegram; the ticket page shows it on the next load
    await desk.say(ANN, "Thank you, that was quick!")
    await page.reload()
    await expect(conversation).to_contain_text("Thank you, that was quick!")
    await shot(page, "ticket")

    after = desk.sandbox.seq
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Ticket #1 is resolved; the customer was told."
    )
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    assert "#1" in text_of(desk.sent_to(ANN.id, after))
