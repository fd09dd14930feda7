"""The bot killed while relaying a ticket's message (staff -> customer, customer -> staff
topic), then started again: the message is stored, and it arrives once."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.e2e.conftest import ANN
from tests.e2e.test_tickets import MARIA, STAFF_CHAT
from tests.faults.process.conftest import CrashSite, until


def relay_of(site: CrashSite, source: dict[str, Any]) -> dict[str, Any]:
    """The ticket_messages row of a message (keyed by its chat and id, as the bot keys it)."""
    db = sqlite3.connect(site.database)
    db.row_factory = sqlite3.Row
    try:
        row = db.execute(
            "SELECT * FROM ticket_messages WHERE source_chat_id = ? AND source_message_id = ?",
            [source["chat"]["id"], source["message_id"]],
        ).fetchone()
        assert row is not None, "the message was not stored in the ticket"
        return dict(row)
    finally:
        db.close()


async def open_ticket(site: CrashSite) -> int:
    """Ann asks for a person; the ticket gets its topic and card. The topic's thread id."""
    site.sandbox.send_text(ANN, "/person")
    await until(lambda: bool(site.sent_calls("sendMessage", STAFF_CHAT)))
    [topic] = site.sandbox.topics(STAFF_CHAT)
    return int(topic["message_thread_id"])


def copies(site: CrashSite, source: dict[str, Any], to_chat: int) -> list[dict[str, Any]]:
    """Successful copies of ``source`` into ``to_chat`` (a relay is a copyMessage)."""
    return [
        c
        for c in site.sent_calls("copyMessage", to_chat)
        if c["params"]["message_id"] == source["message_id"]
        and c["params"]["from_chat_id"] == source["chat"]["id"]
    ]


async def crash_while_copying(
    site: CrashSite, to_chat: int, send: Any, *, applied: bool = False
) -> dict[str, Any]:
    """``send()`` a message whose relay Telegram takes but never answers, kill the bot right
    then, and start it again. ``applied``: the copy took effect and only the answer was
    lost; else the request died on the way. Returns the message."""
    site.sandbox.set_fault(
        "timeout", methods="copyMessage", chat_id=to_chat, delay=60, apply=applied
    )
    source: dict[str, Any] = send()
    await until(lambda: any(c.get("fault") for c in site.sandbox.calls("copyMessage")))
    await site.bot.kill()
    site.sandbox.clear_faults()
    assert relay_of(site, source)["relay_status"] == "pending"  # stored before the copy
    await site.bot.start()
    await until(lambda: bool(copies(site, source, to_chat)))
    await site.sandbox.wait_idle(quiet=0.5, timeout=10)  # a second copy would show now
    return source


@pytest.mark.parametrize(
    ("applied", "copies_seen"),
    [
        pytest.param(False, 1, id="request-lost-sent-once"),
        # The Bot API has no idempotency key: a reply that reached the customer but whose
        # answer was lost is sent again rather than risk losing it (at least once, and once
        # more at most).
        pytest.param(True, 2, id="answer-lost-sent-again-once"),
    ],
)
async def test_a_staff_reply_cut_off_by_a_crash_reaches_the_customer(
    site: CrashSite, applied: bool, copies_seen: int
) -> None:
    await site.bot.start()
    thread = await open_ticket(site)
    reply = await crash_while_copying(
        site,
        ANN.id,
        lambda: site.sandbox.send_text(
            MARIA, "Your refund is on its way", chat_id=STAFF_CHAT, thread_id=thread
        ),
        applied=applied,
    )
    assert len(copies(site, reply, ANN.id)) == copies_seen
    assert "resuming a relay (to_customer) a stop interrupted" in site.bot.output()
    stored = relay_of(site, reply)
    assert (stored["direction"], stored["relay_status"]) == ("to_customer", "delivered")
    assert stored["text"] == "Your refund is on its way"
    await site.bot.stop()


async def test_a_customer_message_cut_off_by_a_crash_reaches_the_topic_once(
    site: CrashSite,
) -> None:
    await site.bot.start()
    thread = await open_ticket(site)
    message = await crash_while_copying(
        site, STAFF_CHAT, lambda: site.sandbox.send_text(ANN, "The parcel arrived broken")
    )
    [copy] = copies(site, message, STAFF_CHAT)
    assert copy["params"]["message_thread_id"] == thread
    stored = relay_of(site, message)
    assert (stored["direction"], stored["relay_status"]) == ("from_customer", "delivered")
    await site.bot.stop()
