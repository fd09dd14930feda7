"""Complaints and escalation, end to end: a customer's private chat and the staff forum
supergroup, both in the sandbox, with the real Application in between."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FixedClock
from bot.config import CannedReplies, Config, StaffConfig, TicketsConfig, resolve_database_path
from carebot.runtime import CareBot
from carebot.sandbox import BotApiSandbox, SandboxUser
from tests.conftest import bot_on_sandbox, make_config
from tests.e2e.conftest import ANN, NEWCOMER, WEI, Chat, text_of

STAFF_CHAT = -1001234567890
MARIA = SandboxUser(id=701, first_name="Maria", language_code="en")
OUTSIDER = SandboxUser(id=909, first_name="Olly", language_code="en")
ADMIN = SandboxUser(id=801, first_name="Alex", language_code="en")


def desk_config(tmp_path: Path, **staff: Any) -> Config:
    config = make_config(tmp_path)
    return dataclasses.replace(
        config,
        staff=StaffConfig(chat_id=STAFF_CHAT, admins=(ADMIN.id,), members=(MARIA.id,), **staff),
        tickets=TicketsConfig(
            canned=CannedReplies(
                (("thanks", "Thank you {{ name }}! Order {{ order }} is on us. {{ agent }}"),)
            )
        ),
    )


@dataclasses.dataclass
class Desk(Chat):
    """Both sides: the customer's chat and the staff chat."""

    def sent_to(self, chat_id: int, after: int) -> list[dict[str, Any]]:
        return [
            e.message
            for e in self.sandbox.events_after(after, chat_id=chat_id)
            if e.message is not None and e.method in ("sendMessage", "copyMessage", "sendPhoto")
        ]

    async def staff_says(
        self, user: SandboxUser, text: str, *, thread_id: int | None = None, **kw: Any
    ) -> int:
        after = self.sandbox.seq
        self.sandbox.send_text(user, text, chat_id=STAFF_CHAT, thread_id=thread_id, **kw)
        await self.sandbox.wait_idle(quiet=0.15, timeout=10)
        return after

    def topic(self) -> int:
        [topic] = self.sandbox.topics(STAFF_CHAT)
        return int(topic["message_thread_id"])

    async def complaint(self, user: SandboxUser, *texts: str, photo: bool = False) -> str:
        """Walk the complaint form: first order, "Damaged", the texts (and a photo), Send."""
        [choose] = await self.say(user, "⚠️ Complaint")
        buttons = [b for row in choose["reply_markup"]["inline_keyboard"] for b in row]
        self.sandbox.press_button(user, choose["message_id"], buttons[0]["callback_data"])
        await self.sandbox.wait_idle(quiet=0.15, timeout=10)
        self.sandbox.press_button(user, choose["message_id"], "cpl:c:damaged")
        await self.sandbox.wait_idle(quiet=0.15, timeout=10)
        [added] = await self.say(user, texts[0])
        for text in texts[1:]:
            await self.say(user, text)
        if photo:
            self.sandbox.send_photo(user, caption="photo of the box")
            await self.sandbox.wait_idle(quiet=0.15, timeout=10)
        [opened] = await self.press(user, added, "Send")
        return str(opened["plain_text"])


@asynccontextmanager
async def running(
    config: Config, clock: FixedClock, sandbox: BotApiSandbox
) -> AsyncIterator[CareBot]:
    care = bot_on_sandbox(config, clock, sandbox)
    async with care.running():
        yield care


async def open_desk(
    demo_database: Path, config: Config, clock: FixedClock, *, forum: bool = True
) -> AsyncIterator[Desk]:
    shutil.copyfile(demo_database, resolve_database_path(config))
    async with BotApiSandbox() as sandbox:
        sandbox.add_group(STAFF_CHAT, "Demo Gifts support", forum=forum)
        async with running(config, clock, sandbox) as care:
            yield Desk(sandbox, care)


@pytest.fixture
async def desk(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Desk]:
    async for harness in open_desk(demo_database, desk_config(tmp_path), clock):
        yield harness


def row(desk: Desk, sql: str, *params: Any) -> dict[str, Any]:
    return next(iter(desk.care.db.query(sql, list(params))))


async def test_complaint_about_an_order_gets_a_topic_a_card_and_an_sla_promise(desk: Desk) -> None:
    after = desk.sandbox.seq
    opened = await desk.complaint(ANN, "The mugs arrived broken", photo=True)
    assert "ticket #1" in opened
    assert "within 4 hours of support time" in opened
    assert "Mon 23 Nov, 14:00 (Europe/London)" in opened  # Monday 10:00 + 4 business hours
    [topic] = desk.sandbox.topics(STAFF_CHAT)
    order = row(desk, "SELECT o.external_id FROM tickets t JOIN orders o ON o.id = t.order_id")
    assert topic["name"] == f"#1 Damaged - Ann - order {order['external_id']}"
    card, text, photo = desk.sent_to(STAFF_CHAT, after)
    assert card["message_thread_id"] == topic["message_thread_id"]
    assert "Ann Peeters" in card["plain_text"]
    assert "Segment:" in card["plain_text"]
    assert f"Order #{order['external_id']}" in card["plain_text"]
    assert "SLA first response: due Mon 23 Nov 14:00" in card["plain_text"]
    labels = [b["text"] for r in card["reply_markup"]["inline_keyboard"] for b in r]
    assert labels == ["🙋 Claim", "✅ Resolve", "⬆️ Priority", "⬇️ Priority"]
    assert text["plain_text"] == "The mugs arrived broken"
    assert "photo" in photo
    assert text["message_thread_id"] == photo["message_thread_id"] == topic["message_thread_id"]
    stored = list(desk.care.db.query("SELECT relay_status FROM ticket_messages"))
    assert stored == [{"relay_status": "delivered"}] * 2


async def test_staff_replies_reach_the_customer_notes_do_not(desk: Desk) -> None:
    await desk.complaint(ANN, "The mugs arrived broken")
    thread = desk.topic()
    after = await desk.staff_says(
        MARIA, "So sorry Ann! A replacement is on its way.", thread_id=thread
    )
    [reply] = desk.sent_to(ANN.id, after)
    assert reply["plain_text"] == "So sorry Ann! A replacement is on its way."
    ticket = row(desk, "SELECT * FROM tickets WHERE id = 1")
    assert ticket["status"] == "answered"
    assert ticket["first_response_at"] == "2026-11-23T10:00:00+00:00"
    assert ticket["first_responder_name"] == "Maria"
    assert ticket["assignee_name"] == "Maria"  # the first to answer takes it

    after = desk.sandbox.seq
    desk.sandbox.send_photo(
        MARIA, caption="This is the replacement", chat_id=STAFF_CHAT, thread_id=thread
    )
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    [photo] = desk.sent_to(ANN.id, after)
    assert "photo" in photo
    assert photo["caption"] == "This is the replacement"

    after = await desk.staff_says(
        MARIA, "/note she ordered twice, check the warehouse", thread_id=thread
    )
    assert desk.sent_to(ANN.id, after) == []
    [saved] = desk.sent_to(STAFF_CHAT, after)
    assert "Note saved" in saved["plain_text"]
    directions = [
        r["direction"]
        for r in desk.care.db.query("SELECT direction FROM ticket_messages WHERE kind != 'bot'")
    ]
    assert directions == ["from_customer", "to_customer", "to_customer", "note"]

    # the customer writes back: it lands in the topic, and the ticket waits for staff again
    after = desk.sandbox.seq
    await desk.say(ANN, "Thank you, it arrived!")
    [copied] = desk.sent_to(STAFF_CHAT, after)
    assert copied["plain_text"] == "Thank you, it arrived!"
    assert copied["message_thread_id"] == thread
    assert row(desk, "SELECT status FROM tickets")["status"] == "open"


async def test_canned_reply_fills_in_the_customer_and_order(desk: Desk) -> None:
    await desk.complaint(ANN, "Broken mug")
    thread = desk.topic()
    order = row(desk, "SELECT o.external_id FROM tickets t JOIN orders o ON o.id = t.order_id")
    after = await desk.staff_says(MARIA, "/canned thanks", thread_id=thread)
    [reply] = desk.sent_to(ANN.id, after)
    assert reply["plain_text"] == f"Thank you Ann! Order {order['external_id']} is on us. Maria"
    # staff add their own, then list them
    await desk.staff_says(
        MARIA, "/canned add sorry We are sorry, {{ full_name }}.", thread_id=thread
    )
    after = await desk.staff_says(MARIA, "/canned sorry", thread_id=thread)
    assert [m["plain_text"] for m in desk.sent_to(ANN.id, after)] == ["We are sorry, Ann Peeters."]
    after = await desk.staff_says(MARIA, "/canned", thread_id=thread)
    [listing] = desk.sent_to(STAFF_CHAT, after)
    assert "/canned sorry" in listing["plain_text"]
    assert "/canned thanks" in listing["plain_text"]
    after = await desk.staff_says(MARIA, "/canned add bad {{ name.__class__ }", thread_id=thread)
    [refused] = desk.sent_to(STAFF_CHAT, after)
    assert "cannot be used" in refused["plain_text"]


async def test_resolve_tells_the_customer_and_writing_again_reopens(desk: Desk) -> None:
    await desk.complaint(ANN, "Broken mug")
    thread = desk.topic()
    await desk.staff_says(MARIA, "Refunded!", thread_id=thread)
    after = await desk.staff_says(MARIA, "/resolve", thread_id=thread)
    told, csat = desk.sent_to(ANN.id, after)
    assert "marked ticket #1 as resolved" in told["plain_text"]
    assert "How did we do with your ticket #1?" in csat["plain_text"]
    assert "within 7 days" in told["plain_text"]
    assert desk.sandbox.topics(STAFF_CHAT)[0]["name"].startswith("✅ #1")
    assert row(desk, "SELECT status, resolved_by_name FROM tickets") == {
        "status": "resolved",
        "resolved_by_name": "Maria",
    }
    [status] = await desk.say(ANN, "/status")
    assert "no open tickets" in status["plain_text"]

    after = desk.sandbox.seq
    [reopened] = await desk.say(ANN, "Actually the refund is missing")
    assert "#1" in reopened["plain_text"]
    assert "open again" in reopened["plain_text"]
    staff_side = text_of(desk.sent_to(STAFF_CHAT, after))
    assert "Actually the refund is missing" in staff_side
    assert "reopened" in staff_side
    assert not desk.sandbox.topics(STAFF_CHAT)[0]["name"].startswith("✅")
    events = [r["event"] for r in desk.care.db.query("SELECT event FROM ticket_events ORDER BY id")]
    assert events == ["created", "staff_replied", "resolved", "reopened"]


async def test_a_closed_ticket_takes_no_more_replies_typed_or_canned(
    desk: Desk, clock: FixedClock
) -> None:
    await desk.complaint(ANN, "Broken mug")
    thread = desk.topic()
    await desk.staff_says(MARIA, "/resolve", thread_id=thread)
    clock.advance(timedelta(days=8))
    assert desk.care.deps.services.tickets.close_stale(clock.now()) == [1]
    for text in ("One more thing, Ann", "/canned thanks"):
        after = await desk.staff_says(MARIA, text, thread_id=thread)
        assert desk.sent_to(ANN.id, after) == []
        [refused] = desk.sent_to(STAFF_CHAT, after)
        assert "Messages here no longer reach the customer." in refused["plain_text"]
    stored = row(desk, "SELECT count(*) AS n FROM ticket_messages WHERE direction = 'to_customer'")
    assert stored == {"n": 0}


async def test_after_the_reopen_window_a_message_is_a_new_question(
    desk: Desk, clock: FixedClock
) -> None:
    await desk.complaint(ANN, "Broken mug")
    await desk.staff_says(MARIA, "/resolve", thread_id=desk.topic())
    clock.advance(timedelta(days=8))
    [answer] = await desk.say(ANN, "How long does delivery take?")
    assert "Did this help?" in answer["plain_text"]  # answered from the FAQ, not the old ticket
    assert row(desk, "SELECT status FROM tickets")["status"] == "resolved"


async def test_buttons_claim_resolve_and_change_priority(desk: Desk) -> None:
    await desk.complaint(ANN, "Broken mug")
    card = row(desk, "SELECT card_message_id FROM tickets")["card_message_id"]
    for data in ("tk:1:claim", "tk:1:up", "tk:1:up"):
        desk.sandbox.press_button(MARIA, card, data, chat_id=STAFF_CHAT)
        await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    ticket = row(desk, "SELECT priority, assignee_name, first_response_due FROM tickets")
    # urgent: 1 business hour from Monday 10:00
    assert ticket == {
        "priority": "urgent",
        "assignee_name": "Maria",
        "first_response_due": "2026-11-23T11:00:00+00:00",
    }
    shown = desk.sandbox.message(STAFF_CHAT, card)
    assert shown is not None
    assert "urgent priority" in shown["plain_text"]
    assert "Claimed by Maria" in shown["plain_text"]
    after = desk.sandbox.seq
    desk.sandbox.press_button(MARIA, card, "tk:1:resolve", chat_id=STAFF_CHAT)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    assert "resolved" in text_of(desk.sent_to(ANN.id, after))


async def test_only_staff_act(desk: Desk) -> None:
    await desk.complaint(ANN, "Broken mug")
    thread = desk.topic()
    card = row(desk, "SELECT card_message_id FROM tickets")["card_message_id"]
    # someone in the staff group who is not on the staff list
    after = await desk.staff_says(OUTSIDER, "/resolve", thread_id=thread)
    [refused] = desk.sent_to(STAFF_CHAT, after)
    assert refused["plain_text"] == "Only the support team can do this."
    after = await desk.staff_says(OUTSIDER, "hi Ann, send me your card number", thread_id=thread)
    assert desk.sent_to(ANN.id, after) == []  # never relayed
    query = desk.sandbox.press_button(OUTSIDER, card, "tk:1:resolve", chat_id=STAFF_CHAT)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    answer = desk.sandbox.callback_answer(query)
    assert answer is not None
    assert answer["show_alert"]
    # a customer trying staff commands, or forging a staff button in their own chat
    [answer_text] = await desk.say(WEI, "/resolve")
    assert answer_text["plain_text"].startswith("该命令仅供客服团队使用")  # in Wei's language
    [welcome] = await desk.say(ANN, "/start")
    desk.sandbox.press_button(ANN, welcome["message_id"], "tk:1:resolve", force=True)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    assert row(desk, "SELECT status FROM tickets")["status"] == "open"


async def test_a_forged_order_button_cannot_attach_another_customers_order(desk: Desk) -> None:
    wei_order = row(
        desk,
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.telegram_user_id = ? LIMIT 1",
        WEI.id,
    )["id"]
    [choose] = await desk.say(ANN, "⚠️ Complaint")
    query = desk.sandbox.press_button(ANN, choose["message_id"], f"cpl:o:{wei_order}", force=True)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    answer = desk.sandbox.callback_answer(query)
    assert answer is not None
    assert "cannot find that order" in answer["text"]
    assert row(desk, "SELECT step, order_id FROM ticket_drafts") == {
        "step": "order",
        "order_id": None,
    }
    # and a category that is not configured is refused too
    desk.sandbox.press_button(ANN, choose["message_id"], "cpl:o:0")
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    desk.sandbox.press_button(ANN, choose["message_id"], "cpl:c:free_money", force=True)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    assert row(desk, "SELECT step FROM ticket_drafts")["step"] == "category"


async def test_talk_to_a_person_opens_an_inquiry_with_the_question(desk: Desk) -> None:
    [miss] = await desk.say(ANN, "do you sell quantum flux capacitors")
    after = desk.sandbox.seq
    [opened] = await desk.press(ANN, miss, "Talk to a person")
    assert "request is ticket #1" in opened["plain_text"]
    staff_side = desk.sent_to(STAFF_CHAT, after)
    assert desk.sandbox.topics(STAFF_CHAT)[0]["name"] == "#1 Question - Ann"
    assert staff_side[-1]["plain_text"] == "do you sell quantum flux capacitors"
    # asking for a person again adds to the same ticket
    [again] = await desk.say(ANN, "/person")
    assert "Added to your open ticket #1" in again["plain_text"]
    [status] = await desk.say(ANN, "/status")
    assert "#1" in status["plain_text"]
    assert "waiting for our team" in status["plain_text"]


async def test_sla_breach_warns_the_topic_and_pings_admins_once(
    desk: Desk, clock: FixedClock
) -> None:
    await desk.say(ADMIN, "/start")  # admins are pinged privately: they started the bot once
    await desk.say(NEWCOMER, "/person")  # Monday 10:00: first response due 14:00
    [job] = desk.care.application.job_queue.get_jobs_by_name("sla:1")
    clock.advance(timedelta(hours=4, minutes=1))
    after = desk.sandbox.seq
    await job.run(desk.care.application)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    [warning] = desk.sent_to(STAFF_CHAT, after)
    assert "SLA missed" in warning["plain_text"]
    assert "first response was due Mon 23 Nov 14:00" in warning["plain_text"]
    [ping] = desk.sent_to(ADMIN.id, after)
    assert "missed its first-response target" in ping["plain_text"]
    assert row(desk, "SELECT first_response_breached_at FROM tickets") == {
        "first_response_breached_at": "2026-11-23T14:01:00+00:00"
    }
    after = desk.sandbox.seq
    await job.run(desk.care.application)  # a second run finds nothing new
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    assert desk.sent_to(STAFF_CHAT, after) == []
    assert desk.sent_to(ADMIN.id, after) == []


async def test_failed_relays_leave_a_note_and_keep_the_message(desk: Desk) -> None:
    await desk.complaint(ANN, "Broken mug")
    thread = desk.topic()
    desk.sandbox.block_user(ANN.id)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    after = await desk.staff_says(MARIA, "Here is your refund", thread_id=thread)
    [note] = desk.sent_to(STAFF_CHAT, after)
    assert "Not delivered to the customer: they have blocked the bot" in note["plain_text"]
    kept = row(
        desk, "SELECT text, relay_status FROM ticket_messages WHERE direction = 'to_customer'"
    )
    assert kept == {"text": "Here is your refund", "relay_status": "failed"}
    desk.sandbox.unblock_user(ANN.id)

    # someone deletes the ticket's topic: the next customer message gets a new one
    await desk.care.application.bot.delete_forum_topic(STAFF_CHAT, thread)
    after = desk.sandbox.seq
    await desk.say(ANN, "Hello? Anyone there?")
    [topic] = desk.sandbox.topics(STAFF_CHAT)
    assert topic["message_thread_id"] != thread
    staff_side = text_of(desk.sent_to(STAFF_CHAT, after))
    assert "was deleted, so it continues here" in staff_side
    assert "Hello? Anyone there?" in staff_side


async def test_a_banned_customer_is_told_once_then_ignored(desk: Desk) -> None:
    await desk.complaint(ANN, "Broken mug")
    thread = desk.topic()
    after = await desk.staff_says(MARIA, "/ban", thread_id=thread)
    [told] = desk.sent_to(ANN.id, after)
    assert "cannot continue this conversation" in told["plain_text"]
    assert await desk.say(ANN, "hello??") == []
    stored = row(desk, "SELECT count(*) AS n FROM messages WHERE text = 'hello??'")
    assert stored == {"n": 1}  # kept, just not answered
    after = await desk.staff_says(MARIA, "/unban", thread_id=thread)
    assert "write to Demo Gifts here again" in text_of(desk.sent_to(ANN.id, after))


async def test_restart_in_the_middle_of_a_complaint_and_an_sla_check_missed_while_down(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    config = desk_config(tmp_path)
    shutil.copyfile(demo_database, resolve_database_path(config))
    async with BotApiSandbox() as sandbox:
        sandbox.add_group(STAFF_CHAT, "Demo Gifts support", forum=True)
        async with running(config, clock, sandbox) as care:
            desk = Desk(sandbox, care)
            [choose] = await desk.say(ANN, "⚠️ Complaint")
            sandbox.press_button(ANN, choose["message_id"], "cpl:o:0")
            await sandbox.wait_idle(quiet=0.15, timeout=10)
            sandbox.press_button(ANN, choose["message_id"], "cpl:c:late")
            await sandbox.wait_idle(quiet=0.15, timeout=10)
        # down; the customer writes meanwhile, and time passes
        sandbox.send_text(ANN, "My parcel is two weeks late")
        async with running(config, clock, sandbox) as care:
            desk = Desk(sandbox, care)
            await sandbox.wait_idle(quiet=0.3, timeout=10)
            [added] = desk.sent_to(ANN.id, 0)[-1:]
            assert "press Send" in added["plain_text"]
            [opened] = await desk.press(ANN, added, "Send")
            assert "ticket #1" in opened["plain_text"]
        clock.advance(timedelta(hours=5))  # past the 14:00 first-response target, bot down
        after = sandbox.seq
        async with running(config, clock, sandbox) as care:
            await sandbox.wait_idle(quiet=0.3, timeout=10)
            assert "SLA missed" in text_of(Desk(sandbox, care).sent_to(STAFF_CHAT, after))


async def test_a_group_without_topics_threads_tickets_by_replies(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    async for desk in open_desk(demo_database, desk_config(tmp_path), clock, forum=False):
        after = desk.sandbox.seq
        await desk.complaint(ANN, "Broken mug")
        card, copied = desk.sent_to(STAFF_CHAT, after)
        assert copied["reply_to_message"]["message_id"] == card["message_id"]
        after = await desk.staff_says(MARIA, "Sorry! Refund sent.", reply_to=copied["message_id"])
        [reply] = desk.sent_to(ANN.id, after)
        assert reply["plain_text"] == "Sorry! Refund sent."
        # the customer's copy answers their own message
        assert reply["reply_to_message"]["text"] == "Broken mug"
        after = await desk.staff_says(MARIA, "lunch anyone?")
        assert desk.sent_to(ANN.id, after) == []  # not a reply to any ticket: team chatter


async def test_a_429_that_outlasts_the_retries_leaves_a_note_and_keeps_the_reply(
    desk: Desk,
) -> None:
    await desk.complaint(ANN, "Broken mug")
    desk.sandbox.set_fault("429", methods="copyMessage", chat_id=ANN.id, retry_after=1)
    after = await desk.staff_says(MARIA, "Refund sent", thread_id=desk.topic())
    # the rate limiter waits and retries ([telegram] max_retries = 3), then gives up
    [note] = await desk.sandbox.wait_for_messages(STAFF_CHAT, after=after, timeout=15)
    desk.sandbox.clear_faults()
    assert "Telegram asked us to slow down" in note["plain_text"]
    kept = row(desk, "SELECT relay_status FROM ticket_messages WHERE direction = 'to_customer'")
    assert kept == {"relay_status": "failed"}
    assert row(desk, "SELECT status FROM tickets")["status"] == "open"  # still owed an answer


async def test_tickets_made_before_there_was_a_staff_chat_are_posted_at_start(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    without = make_config(tmp_path)
    shutil.copyfile(demo_database, resolve_database_path(without))
    async with BotApiSandbox() as sandbox:
        async with running(without, clock, sandbox) as care:
            [miss] = await Desk(sandbox, care).say(ANN, "do you sell quantum flux capacitors")
            await Desk(sandbox, care).press(ANN, miss, "Talk to a person")
        sandbox.add_group(STAFF_CHAT, "Demo Gifts support", forum=True)
        async with running(desk_config(tmp_path), clock, sandbox) as care:
            await sandbox.wait_idle(quiet=0.3, timeout=10)
            [topic] = sandbox.topics(STAFF_CHAT)
            assert topic["name"] == "#1 Question - Ann"
            card, question = Desk(sandbox, care).sent_to(STAFF_CHAT, 0)
            assert "Ann Peeters" in card["plain_text"]
            assert question["plain_text"] == "do you sell quantum flux capacitors"


async def test_without_a_member_list_everyone_in_the_staff_chat_answers_signed(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    config = desk_config(tmp_path)
    config = dataclasses.replace(
        config, staff=dataclasses.replace(config.staff, members=(), sign_replies=True)
    )
    async for desk in open_desk(demo_database, config, clock):
        await desk.complaint(ANN, "Broken mug")
        after = await desk.staff_says(OUTSIDER, "We will <fix> it", thread_id=desk.topic())
        [reply] = desk.sent_to(ANN.id, after)
        assert reply["plain_text"] == "Olly, Demo Gifts:\nWe will <fix> it"
        after = desk.sandbox.seq
        desk.sandbox.send_photo(
            OUTSIDER, caption="The new one", chat_id=STAFF_CHAT, thread_id=desk.topic()
        )
        await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
        [photo] = desk.sent_to(ANN.id, after)
        assert "photo" in photo
        assert photo["plain_caption"] == "Olly, Demo Gifts:\nThe new one"


async def test_asking_for_a_person_on_an_answered_ticket_tells_staff(desk: Desk) -> None:
    await desk.say(ANN, "/person")
    await desk.staff_says(MARIA, "Hi Ann, how can I help?", thread_id=desk.topic())
    assert row(desk, "SELECT status FROM tickets")["status"] == "answered"
    after = desk.sandbox.seq
    [again] = await desk.say(ANN, "/person")
    assert "Added to your open ticket #1" in again["plain_text"]
    assert "asked to talk to a person" in text_of(desk.sent_to(STAFF_CHAT, after))
    assert row(desk, "SELECT status FROM tickets")["status"] == "open"  # waiting for staff


async def test_messages_go_to_the_newest_active_ticket_not_a_resolved_newer_one(
    desk: Desk,
) -> None:
    await desk.say(ANN, "/person")  # inquiry #1 stays open
    await desk.complaint(ANN, "Broken mug")  # complaint #2
    await desk.staff_says(
        MARIA,
        "/resolve",
        thread_id=max(int(t["message_thread_id"]) for t in desk.sandbox.topics(STAFF_CHAT)),
    )
    await desk.say(ANN, "About my question...")
    [record] = desk.care.db.query(
        "SELECT ticket_id FROM ticket_messages WHERE text = 'About my question...'"
    )
    assert record == {"ticket_id": 1}
    assert row(desk, "SELECT status FROM tickets WHERE id = 2")["status"] == "resolved"


async def test_without_topics_a_reply_to_the_bots_note_stays_in_the_ticket(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    async for desk in open_desk(demo_database, desk_config(tmp_path), clock, forum=False):
        after = desk.sandbox.seq
        await desk.complaint(ANN, "Broken mug")
        card, _ = desk.sent_to(STAFF_CHAT, after)
        after = await desk.staff_says(MARIA, "/note check stock", reply_to=card["message_id"])
        [saved] = desk.sent_to(STAFF_CHAT, after)
        after = await desk.staff_says(MARIA, "Sorry, refund sent", reply_to=saved["message_id"])
        assert [m["plain_text"] for m in desk.sent_to(ANN.id, after)] == ["Sorry, refund sent"]
