"""Blocked users (403) and deleted forum topics: the customer flagged, work goes on, staff told."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.tickets import Actor, Ticket
from tests.e2e.conftest import ANN, NEWCOMER, WEI
from tests.e2e.test_campaigns import SEND_DAY
from tests.e2e.test_tickets import MARIA, STAFF_CHAT
from tests.faults.telegram.conftest import FlakyShop

BLOCKED_NOTE = "Not delivered to the customer: they have blocked the bot"


def ticket_of(shop: FlakyShop, user_id: int) -> Ticket:
    customer = shop.care.repos.customers.by_telegram_user(user_id)
    assert customer is not None
    [ticket] = shop.care.deps.services.tickets.active_for(customer.id)
    return ticket


def topic_texts(shop: FlakyShop, thread_id: int) -> list[str]:
    return [
        m.get("plain_text", "")
        for m in shop.sent(STAFF_CHAT)
        if m.get("message_thread_id") == thread_id
    ]


async def sla_checks_due(shop: FlakyShop, ticket: Ticket) -> None:
    """Past the ticket's next SLA target: its SLA job runs (as the scheduler would)."""
    due = ticket.next_due()
    assert due is not None
    shop.clock.set(due + timedelta(minutes=1))
    [job] = shop.care.application.job_queue.get_jobs_by_name(f"sla:{ticket.id}")
    await job.run(shop.care.application)


async def test_a_customer_who_blocked_the_bot_is_flagged_and_everyone_else_is_served(
    shop: FlakyShop,
) -> None:
    for user in (ANN, WEI, NEWCOMER):
        await shop.say(user, "/start")
        await shop.say(user, "/person")
    ann_topic, wei_topic = await shop.topic_of(ANN), await shop.topic_of(WEI)
    newcomer_topic = await shop.topic_of(NEWCOMER)
    # Ann and one campaign recipient block the bot without Telegram telling us (only 403s)
    shop.sandbox.block_user(ANN.id, notify=False)
    blocked_recipient = shop.recipients[0]
    shop.sandbox.block_user(shop.chat_of(blocked_recipient), notify=False)
    campaign = asyncio.create_task(shop.run_campaign(SEND_DAY))

    # staff answer Ann: refused, Ann flagged, staff told in her topic; Wei still gets hers
    after = shop.sandbox.seq
    shop.staff_writes("Here is your refund", ann_topic)
    shop.staff_writes("Your parcel left today", wei_topic)
    [answer] = await shop.arriving(WEI.id, 1, after)
    assert answer["plain_text"] == "Your parcel left today"
    await shop.until(lambda: any(BLOCKED_NOTE in t for t in topic_texts(shop, ann_topic)))
    ann = shop.care.repos.customers.by_telegram_user(ANN.id)
    assert ann is not None
    assert ann.blocked
    assert [c for c in shop.sandbox.calls() if c["params"].get("chat_id") == ANN.id][-1][
        "error_code"
    ] == 403

    # the campaign goes on: the blocked recipient flagged, everyone else reminded once
    await asyncio.wait_for(campaign, timeout=60)
    ledger = {row["customer_id"]: row for row in shop.ledger()}
    assert (ledger[blocked_recipient]["status"], ledger[blocked_recipient]["reason"]) == (
        "failed",
        "blocked the bot",
    )
    recipient = shop.care.repos.customers.get(blocked_recipient)
    assert recipient is not None
    assert recipient.blocked
    assert all(len(shop.reminders_to(c)) == 1 for c in shop.recipients[1:])

    # SLA jobs keep running: the newcomer's missed first response is announced to staff
    await sla_checks_due(shop, ticket_of(shop, NEWCOMER.id))
    assert any("SLA missed" in t for t in topic_texts(shop, newcomer_topic))


async def test_a_deleted_topic_is_recreated_and_no_reply_is_lost(shop: FlakyShop) -> None:
    await shop.say(ANN, "/start")
    await shop.say(ANN, "/person")
    old_topic = await shop.topic_of(ANN)
    await shop.care.application.bot.delete_forum_topic(STAFF_CHAT, old_topic)

    # staff answer from the dashboard: the customer gets it, staff see it in a new topic
    ticket = ticket_of(shop, ANN.id)
    maria = Actor("staff", MARIA.id, MARIA.first_name)
    after = shop.sandbox.seq
    record = await shop.desk.reply_from_web(ticket, maria, "Your refund is on its way")
    assert record is not None
    assert record.relay_status == "delivered"
    [reply] = await shop.arriving(ANN.id, 1, after)
    assert reply["plain_text"] == "Your refund is on its way"
    new_topic = await shop.topic_of(ANN)
    assert new_topic != old_topic
    assert [t["message_thread_id"] for t in shop.sandbox.topics(STAFF_CHAT)] == [new_topic]
    in_topic = " | ".join(topic_texts(shop, new_topic))
    assert "was deleted, so it continues here" in in_topic
    assert "Your refund is on its way" in in_topic

    # and when it is deleted again, the SLA warning still reaches staff, in a third topic
    await shop.care.application.bot.delete_forum_topic(STAFF_CHAT, new_topic)
    await sla_checks_due(shop, ticket_of(shop, ANN.id))
    [third] = shop.sandbox.topics(STAFF_CHAT)
    assert any("SLA missed" in t for t in topic_texts(shop, third["message_thread_id"]))


async def test_a_staff_reply_whose_topic_is_deleted_before_the_bot_reads_it_still_arrives(
    shop: FlakyShop,
) -> None:
    await shop.say(ANN, "/start")
    await shop.say(ANN, "/person")
    topic = await shop.topic_of(ANN)
    updater = shop.care.application.updater
    assert updater is not None
    await updater.stop()  # the bot is slow to read: the reply waits in Telegram
    shop.staff_writes("We are sending a new mug today", topic)
    await shop.care.application.bot.delete_forum_topic(STAFF_CHAT, topic)  # and it goes
    after = shop.sandbox.seq
    await updater.start_polling(poll_interval=0.0, timeout=1)
    [reply] = await shop.arriving(ANN.id, 1, after)
    assert reply["plain_text"] == "We are sending a new mug today"  # sent from what was stored
    await shop.until(
        lambda: (
            list(shop.care.db.query("SELECT relay_status FROM ticket_messages"))[-1]
            == {"relay_status": "delivered"}
        )
    )
    # the ticket carries on in a new topic as soon as there is something to show staff
    shop.sandbox.send_text(ANN, "Thank you!")
    await shop.until(lambda: len(shop.sandbox.topics(STAFF_CHAT)) == 1)
    [new_topic] = shop.sandbox.topics(STAFF_CHAT)
    await shop.until(lambda: "Thank you!" in topic_texts(shop, new_topic["message_thread_id"]))
    assert "was deleted, so it continues here" in " | ".join(
        topic_texts(shop, new_topic["message_thread_id"])
    )
