"""Tickets on the web dashboard: the list and its filters, one ticket's page, and staff
actions that reach Telegram exactly as the same actions in the staff topic do."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FixedClock
from bot.config import Config
from carebot.sandbox import SandboxUser
from tests.e2e.conftest import ANN, WEI, text_of
from tests.e2e.test_tickets import MARIA, STAFF_CHAT, desk_config, open_desk, row
from tests.web.conftest import Site, Visitor, serve_dashboard

TICKET = "/admin/tickets/1"
HOSTILE = SandboxUser(id=3131, first_name="<img src=x onerror=alert(1)>", last_name="<b>Eve</b>")


async def settle(site: Site) -> None:
    await site.desk.sandbox.wait_idle(quiet=0.15, timeout=10)


def ticket_row(site: Site, ticket_id: int = 1) -> dict[str, Any]:
    return row(site.desk, "SELECT * FROM tickets WHERE id = ?", ticket_id)


def listed(page_text: str) -> set[int]:
    """The ticket ids the list page shows."""
    return {n for n in range(1, 10) if f'href="/admin/tickets/{n}"' in page_text}


def audit_actions(site: Site) -> list[str]:
    return [
        f"{r['action']} {r['detail']}"
        for r in site.desk.care.db.query(
            "SELECT action, detail FROM dashboard_audit WHERE action LIKE 'ticket.%' ORDER BY id"
        )
    ]


async def serve_with(config: Config, clock: FixedClock, demo_database: Path) -> AsyncIterator[Site]:
    async for desk in open_desk(demo_database, config, clock):
        async for harness in serve_dashboard(desk, clock):
            yield harness


async def test_a_complaint_appears_in_the_list_with_its_state_and_sla(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "The mugs arrived broken")
    page = await staff.get("/admin/tickets")
    assert page.status == 200
    assert listed(page.text) == {1}
    assert "Ann Peeters" in page.text
    assert "complaint/damaged" in page.text
    assert '<span class="badge open">open</span>' in page.text
    assert "due 14:00" in page.text  # Monday 10:00 + 4 business hours
    assert 'Open <span class="count">1</span>' in page.text
    assert 'Resolved <span class="count">0</span>' in page.text


async def test_filters_narrow_the_list(site: Site, staff: Visitor) -> None:
    await site.desk.complaint(ANN, "The mugs arrived broken")  # #1: complaint, damaged
    await site.desk.say(WEI, "/person")  # #2: inquiry
    await staff.post("/admin/tickets/1/claim")
    await staff.post("/admin/tickets/2/priority", {"priority": "urgent"})

    async def shown(**query: str) -> set[int]:
        page = await staff.get("/admin/tickets", params=query)
        assert page.status == 200
        return listed(page.text)

    assert await shown() == {1, 2}
    assert await shown(category="damaged") == {1}
    assert await shown(priority="urgent") == {2}
    assert await shown(assignee="Maria") == {1}
    assert await shown(assignee="-") == {2}
    assert await shown(q="wei") == {2}
    assert await shown(q="ann peeters") == {1}
    assert await shown(q="#2") == {2}
    assert await shown(status="active") == {1, 2}
    assert await shown(status="resolved") == set()
    assert await shown(breached="1") == set()
    # urgent: first response due 11:00; the SLA job records the miss
    site.clock.advance(timedelta(hours=1, minutes=1))
    [job] = site.desk.care.application.job_queue.get_jobs_by_name("sla:2")
    await job.run(site.desk.care.application)
    await settle(site)
    page = await staff.get("/admin/tickets", params={"breached": "1"})
    assert listed(page.text) == {2}
    assert "BREACHED first response" in page.text
    # newest activity first: Ann writes again, so her ticket moves to the top
    await site.desk.say(ANN, "Any news?")
    page = await staff.get("/admin/tickets")
    assert page.text.index('href="/admin/tickets/1"') < page.text.index('href="/admin/tickets/2"')
    odd = await staff.get("/admin/tickets", params={"status": "lost", "priority": "<b>x"})
    assert "State: there is no state called “lost”" in odd.text
    assert "Priority: “&lt;b&gt;x” is not one of" in odd.text
    assert listed(odd.text) == {1, 2}


async def test_the_ticket_page_shows_the_conversation_timeline_and_customer_card(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "The mugs arrived broken")
    thread = site.desk.topic()
    await site.desk.staff_says(
        MARIA, "So sorry Ann! A replacement is on its way.", thread_id=thread
    )
    await site.desk.staff_says(MARIA, "/note she ordered twice", thread_id=thread)
    customer = row(site.desk, "SELECT id FROM customers WHERE telegram_user_id = ?", ANN.id)
    order = row(
        site.desk, "SELECT o.external_id FROM tickets t JOIN orders o ON o.id = t.order_id"
    )["external_id"]
    page = await staff.get(TICKET)
    assert page.status == 200
    text = page.text
    conversation = text[text.index("Conversation") : text.index("Reply to the customer")]
    assert conversation.index("The mugs arrived broken") < conversation.index("So sorry Ann!")
    assert "Maria · 2026-11-23 10:00" in conversation  # who answered
    assert "she ordered twice" in conversation
    assert "internal note" in conversation
    assert "from the dashboard" not in conversation  # both written in Telegram
    card = text[text.index('class="card customer-card"') :]
    assert f'href="/admin/customers/{customer["id"]}"' in card
    assert "Ann Peeters" in card
    assert "Segment</dt><dd>" in card
    assert "no purchase history" not in card  # Ann is a demo-shop customer with orders
    assert f"Order #{order}" in card
    assert "Language</dt><dd>en" in card
    timeline = text[text.index("Timeline") :]
    assert "created" in timeline
    assert "staff replied" in timeline
    assert "open → answered" in timeline


async def test_a_reply_typed_on_the_web_reaches_the_customer_and_the_staff_topic(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "The mugs arrived broken")
    thread = site.desk.topic()
    after = site.desk.sandbox.seq
    page = await staff.post(f"{TICKET}/reply", {"text": "So sorry Ann!\nA new set is on its way."})
    await settle(site)
    assert page.url.endswith(TICKET)
    assert "The reply was sent to the customer on Telegram." in page.text
    [to_ann] = site.desk.sent_to(ANN.id, after)
    assert to_ann["plain_text"] == "So sorry Ann!\nA new set is on its way."
    copy, *rest = site.desk.sent_to(STAFF_CHAT, after)
    assert copy["message_thread_id"] == thread
    assert copy["plain_text"] == (
        "💬 Maria (dashboard) to the customer:\nSo sorry Ann!\nA new set is on its way."
    )
    card = site.desk.sandbox.message(STAFF_CHAT, ticket_row(site)["card_message_id"])
    assert card is not None
    assert "answered" in card["plain_text"]  # the card was redrawn, as for a topic reply
    assert rest == []
    ticket = ticket_row(site)
    assert ticket["status"] == "answered"
    assert ticket["first_response_at"] == "2026-11-23T10:00:00+00:00"
    assert ticket["first_responder_name"] == ticket["assignee_name"] == "Maria"
    # the ledger is keyed by the topic copy: a reply to the copy in Telegram stays in the ticket
    ledger = row(site.desk, "SELECT * FROM ticket_messages WHERE direction = 'to_customer'")
    assert (ledger["source_chat_id"], ledger["source_message_id"]) == (
        STAFF_CHAT,
        copy["message_id"],
    )
    assert ledger["relay_status"] == "delivered"
    assert ledger["author_name"] == "Maria"
    assert "2026-11-23 10:00, after 0m · " in page.text
    assert "met (due 2026-11-23 14:00)" in page.text  # the first-response target
    assert '<span class="badge answered">answered</span>' in page.text
    assert audit_actions(site) == ["ticket.reply #1"]


async def test_replies_from_the_web_are_signed_like_replies_in_the_topic(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    config = desk_config(tmp_path)
    config = dataclasses.replace(config, staff=dataclasses.replace(config.staff, sign_replies=True))
    async for site in serve_with(config, clock, demo_database):
        staff = await site.signed_in("maria")  # no Telegram account linked: still a person
        await site.desk.complaint(ANN, "Broken mug")
        after = site.desk.sandbox.seq
        await staff.post(f"{TICKET}/reply", {"text": "We will <fix> it"})
        await settle(site)
        [to_ann] = site.desk.sent_to(ANN.id, after)
        assert to_ann["plain_text"] == "Maria, Demo Gifts:\nWe will <fix> it"
        # the signature counts against Telegram's limit
        longest = "x" * (4096 - len("Maria, Demo Gifts:\n"))
        assert (await staff.post(f"{TICKET}/reply", {"text": longest + "x"})).status == 400
        ok = await staff.post(f"{TICKET}/reply", {"text": longest})
        assert "sent to the customer" in ok.text


async def test_without_a_staff_chat_web_replies_are_keyed_by_the_dashboard(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    config = desk_config(tmp_path)
    config = dataclasses.replace(config, staff=dataclasses.replace(config.staff, chat_id=0))
    async for site in serve_with(config, clock, demo_database):
        staff = await site.signed_in("maria")
        await site.desk.say(ANN, "/person")
        after = site.desk.sandbox.seq
        await staff.post(f"{TICKET}/reply", {"text": "Hello Ann"})
        await staff.post(f"{TICKET}/reply", {"text": "Anything else?"})
        await staff.post(f"{TICKET}/note", {"text": "asked twice"})
        await settle(site)
        assert [m["plain_text"] for m in site.desk.sent_to(ANN.id, after)] == [
            "Hello Ann",
            "Anything else?",
        ]
        keys = [
            (r["source_chat_id"], r["source_message_id"], r["relay_status"])
            for r in site.desk.care.db.query(
                "SELECT * FROM ticket_messages WHERE direction != 'from_customer' ORDER BY id"
            )
        ]
        assert keys == [(0, 1, "delivered"), (0, 2, "delivered"), (0, 3, "internal")]
        assert ticket_row(site)["status"] == "answered"


async def test_claim_priority_note_and_canned_work_like_in_telegram(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    thread = site.desk.topic()
    card_id = ticket_row(site)["card_message_id"]
    claimed = await staff.post(f"{TICKET}/claim")
    assert "You have ticket #1." in claimed.text
    assert ticket_row(site)["assignee_name"] == "Maria"
    card = site.desk.sandbox.message(STAFF_CHAT, card_id)
    assert card is not None
    assert "Claimed by Maria" in card["plain_text"]

    await staff.post(f"{TICKET}/priority", {"priority": "up"})
    assert ticket_row(site)["priority"] == "high"
    page = await staff.post(f"{TICKET}/priority", {"priority": "urgent"})
    assert "now urgent priority" in page.text
    assert ticket_row(site)["first_response_due"] == "2026-11-23T11:00:00+00:00"
    await staff.post(f"{TICKET}/priority", {"priority": "down"})
    assert ticket_row(site)["priority"] == "high"
    card = site.desk.sandbox.message(STAFF_CHAT, card_id)
    assert card is not None
    assert "high priority" in card["plain_text"]
    bad = await staff.post(f"{TICKET}/priority", {"priority": "whenever"})
    assert bad.status == 400
    assert "Priority: choose low, normal, high, urgent." in bad.text

    after = site.desk.sandbox.seq
    noted = await staff.post(f"{TICKET}/note", {"text": "check the warehouse"})
    await settle(site)
    assert "Note saved on ticket #1" in noted.text
    assert site.desk.sent_to(ANN.id, after) == []
    [copy] = site.desk.sent_to(STAFF_CHAT, after)
    assert copy["message_thread_id"] == thread
    assert "Maria (dashboard), internal note" in copy["plain_text"]
    assert "check the warehouse" in noted.text
    assert "Maria · internal note · from the dashboard" in noted.text

    order = row(site.desk, "SELECT o.external_id FROM tickets t JOIN orders o ON o.id = t.order_id")
    assert f"Thank you Ann! Order {order['external_id']} is on us. Maria" in noted.text  # preview
    after = site.desk.sandbox.seq
    sent = await staff.post(f"{TICKET}/canned", {"name": "thanks"})
    await settle(site)
    assert "canned reply “thanks” was sent" in sent.text
    [to_ann] = site.desk.sent_to(ANN.id, after)
    assert to_ann["plain_text"] == f"Thank you Ann! Order {order['external_id']} is on us. Maria"
    assert "💬 Maria (dashboard)" in text_of(site.desk.sent_to(STAFF_CHAT, after))
    assert ticket_row(site)["status"] == "answered"
    missing = await staff.post(f"{TICKET}/canned", {"name": "nope"})
    assert missing.status == 400
    assert "there is none called “nope”" in missing.text
    assert audit_actions(site) == [
        "ticket.claim #1",
        "ticket.priority #1 normal -> high",
        "ticket.priority #1 high -> urgent",
        "ticket.priority #1 urgent -> high",
        "ticket.note #1",
        "ticket.canned #1 thanks",
    ]


async def test_resolve_tells_the_customer_and_sends_the_after_support_survey(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    await staff.post(f"{TICKET}/reply", {"text": "Refunded!"})
    after = site.desk.sandbox.seq
    page = await staff.post(f"{TICKET}/resolve")
    await settle(site)
    assert "Ticket #1 is resolved" in page.text
    told, survey = site.desk.sent_to(ANN.id, after)
    assert "marked ticket #1 as resolved" in told["plain_text"]
    assert "How did we do with your ticket #1?" in survey["plain_text"]
    assert "Resolved by Maria" in text_of(site.desk.sent_to(STAFF_CHAT, after))
    assert site.desk.sandbox.topics(STAFF_CHAT)[0]["name"].startswith("✅ #1")
    assert ticket_row(site)["resolved_by_name"] == "Maria"
    again = await staff.post(f"{TICKET}/resolve")
    assert again.status == 409
    assert "already resolved" in again.text


async def test_a_closed_ticket_refuses_replies_and_keeps_what_was_typed(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    await staff.post(f"{TICKET}/resolve")
    site.clock.advance(timedelta(days=8))
    assert site.desk.care.deps.services.tickets.close_stale(site.clock.now()) == [1]
    await staff.login("maria")  # the session ended meanwhile
    after = site.desk.sandbox.seq
    page = await staff.post(f"{TICKET}/reply", {"text": "One more thing, Ann"})
    assert page.status == 409
    assert "Ticket #1 is closed: messages no longer reach the customer." in page.text
    assert "One more thing, Ann</textarea>" in page.text
    canned = await staff.post(f"{TICKET}/canned", {"name": "thanks"})
    assert canned.status == 409
    await settle(site)
    assert site.desk.sent_to(ANN.id, after) == []
    stored = row(
        site.desk, "SELECT count(*) AS n FROM ticket_messages WHERE direction = 'to_customer'"
    )
    assert stored == {"n": 0}


async def test_empty_and_over_long_replies_are_refused_with_the_text_kept(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    empty = await staff.post(f"{TICKET}/reply", {"text": "   "})
    assert empty.status == 400
    assert "Reply: write something to send." in empty.text
    long = "é" * 4000 + "😀" * 49  # 4098 in UTF-16 units, as Telegram counts
    refused = await staff.post(f"{TICKET}/reply", {"text": long})
    assert refused.status == 400
    assert "the limit is 4096. Shorten it by 2." in refused.text
    assert long in refused.text
    assert (await staff.post(f"{TICKET}/note", {"text": ""})).status == 400
    stored = row(site.desk, "SELECT count(*) AS n FROM ticket_messages WHERE kind != 'bot'")
    assert stored == {"n": 1}  # only Ann's message


async def test_a_reply_to_a_customer_who_blocked_the_bot_is_kept_and_noted(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    site.desk.sandbox.block_user(ANN.id)
    await settle(site)
    after = site.desk.sandbox.seq
    page = await staff.post(f"{TICKET}/reply", {"text": "Here is your refund"})
    await settle(site)
    assert "was NOT delivered to the customer" in page.text
    assert "Not delivered: Forbidden" in page.text
    staff_side = text_of(site.desk.sent_to(STAFF_CHAT, after))
    assert "💬 Maria (dashboard)" in staff_side
    assert "Not delivered to the customer: they have blocked the bot" in staff_side
    kept = row(
        site.desk, "SELECT relay_status FROM ticket_messages WHERE direction = 'to_customer'"
    )
    assert kept == {"relay_status": "failed"}
    assert ticket_row(site)["status"] == "open"  # still owed an answer


async def test_customer_text_and_names_are_escaped(site: Site, staff: Visitor) -> None:
    await site.desk.complaint(ANN, "<script>alert('x')</script> <b>broken</b>")
    await site.desk.staff_says(MARIA, "We will <i>fix</i> it & more", thread_id=site.desk.topic())
    page = await staff.get(TICKET)
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &lt;b&gt;broken&lt;/b&gt;" in page.text
    assert "We will &lt;i&gt;fix&lt;/i&gt; it &amp; more" in page.text
    listing = await staff.get("/admin/tickets", params={"q": "<script>"})
    assert "<script>" not in listing.text.split("<main>")[1]
    # a customer's name is theirs to choose on Telegram
    await site.desk.say(HOSTILE, "/person")
    listing = await staff.get("/admin/tickets")
    assert "&lt;img src=x onerror=alert(1)&gt; &lt;b&gt;Eve&lt;/b&gt;" in listing.text
    page = await staff.get("/admin/tickets/2")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "<img src=x" not in listing.text + page.text


async def test_an_unknown_ticket_is_a_404(site: Site, staff: Visitor) -> None:
    page = await staff.get("/admin/tickets/999")
    assert page.status == 404
    assert "There is no ticket #999." in page.text
    assert (await staff.post("/admin/tickets/999/reply", {"text": "hi"})).status == 404
    assert (await staff.get("/admin/tickets/abc")).status == 404


async def test_admins_work_tickets_too(site: Site, admin: Visitor) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    assert (await admin.get(TICKET)).status == 200
    await admin.post(f"{TICKET}/claim")
    assert ticket_row(site)["assignee_name"] == "Alex"


@pytest.mark.parametrize("path", ["/admin/tickets", TICKET])
async def test_pages_need_a_session(site: Site, path: str) -> None:
    page = await site.visitor().get(path)
    assert "/admin/login" in page.url
