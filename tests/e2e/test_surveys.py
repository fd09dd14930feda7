"""Satisfaction surveys end to end, with a controlled clock (jobs are run, never slept for)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FixedClock
from bot.config import Config, resolve_database_path
from bot.models import OrderStatus
from carebot.runtime import CareBot, order_changed
from carebot.sandbox import BotApiSandbox
from storage.ingest import IngestRepository
from tests.e2e.conftest import ANN, START, WEI, text_of
from tests.e2e.test_tickets import (
    MARIA,
    STAFF_CHAT,
    Desk,
    desk_config,
    open_desk,
    row,
    running,
)


def survey_config(tmp_path: Path, **surveys: Any) -> Config:
    config = desk_config(tmp_path)
    return dataclasses.replace(config, surveys=dataclasses.replace(config.surveys, **surveys))


@pytest.fixture
async def desk(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Desk]:
    async for harness in open_desk(demo_database, survey_config(tmp_path, nps_percent=0), clock):
        await harness.say(ANN, "/start")
        await harness.say(WEI, "/start")
        yield harness


def orders_of(care: CareBot, user_id: int) -> list[int]:
    return [
        r["id"]
        for r in care.db.query(
            """SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id
               WHERE c.telegram_user_id = ? AND o.kind = 'order' ORDER BY o.placed_at DESC""",
            [user_id],
        )
    ]


def delivered(care: CareBot, order_id: int, at: datetime) -> None:
    """The shop reports shipping, then delivery (as through the ingest API)."""
    shop = IngestRepository(care.db)
    shop.change_status(order_id, OrderStatus.SHIPPED, at - timedelta(days=1), at)
    order_changed(care, shop.change_status(order_id, OrderStatus.DELIVERED, at, at))


async def run_survey_job(desk: Desk, survey_id: int) -> list[dict[str, Any]]:
    """Run the survey's job now (the clock was moved); what the bot sent meanwhile."""
    after = desk.sandbox.seq
    [job] = desk.care.application.job_queue.get_jobs_by_name(f"survey:{survey_id}")
    await job.run(desk.care.application)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    return [e.message for e in desk.sandbox.events_after(after) if e.message is not None]


def survey(desk: Desk, survey_id: int = 1) -> dict[str, Any]:
    return row(desk, "SELECT * FROM surveys WHERE id = ?", survey_id)


async def invited(desk: Desk, clock: FixedClock, user: Any = ANN) -> dict[str, Any]:
    """Deliver the user's latest order now, wait the 3 days, run the job: the invitation."""
    delivered(desk.care, orders_of(desk.care, user.id)[0], clock.now())
    survey_id = max(r["id"] for r in desk.care.db.query("SELECT id FROM surveys"))
    clock.advance(timedelta(days=3))
    [message] = await run_survey_job(desk, survey_id)
    return message


async def test_delivery_then_three_days_then_a_one_tap_question(
    desk: Desk, clock: FixedClock
) -> None:
    order = orders_of(desk.care, ANN.id)[0]
    delivered(desk.care, order, START)
    assert survey(desk)["due_at"] == "2026-11-26T10:00:00+00:00"  # Thursday, 10:00 London
    assert survey(desk)["status"] == "scheduled"
    clock.advance(timedelta(days=3))
    [question] = await run_survey_job(desk, 1)
    number = row(desk, "SELECT external_id FROM orders WHERE id = ?", order)["external_id"]
    assert question["plain_text"].startswith(f"How was your order #{number}?")
    buttons = [b["text"] for r in question["reply_markup"]["inline_keyboard"] for b in r]
    assert buttons == ["1", "2", "3", "4", "5"]
    assert survey(desk)["status"] == "sent"
    # a 4 with no NPS question: the edited question itself says thank you
    assert await desk.press(ANN, question, "4") == []
    edited = desk.current(ANN, question["message_id"])
    assert "Your answer: ★★★★☆ 4/5" in edited["plain_text"]
    assert "reply_markup" not in edited
    assert (survey(desk)["score"], survey(desk)["status"]) == (4, "answered")


async def test_quiet_hours_in_the_customers_timezone_wait_for_morning(
    desk: Desk, clock: FixedClock
) -> None:
    customer = desk.care.repos.customers.by_telegram_user(WEI.id)
    assert customer is not None
    desk.care.repos.customers.update_settings(customer.id, START, timezone="Asia/Shanghai")
    delivered(desk.care, orders_of(desk.care, WEI.id)[0], START + timedelta(hours=5))
    clock.advance(timedelta(days=3, hours=5))  # Thursday 15:00 UTC = 23:00 in Shanghai
    assert await run_survey_job(desk, 1) == []
    assert survey(desk)["due_at"] == "2026-11-27T01:00:00+00:00"  # Friday 09:00 Shanghai
    clock.advance(timedelta(hours=10))
    [question] = await run_survey_job(desk, 1)
    assert question["plain_text"].startswith("您对订单")  # in Wei's language


async def test_low_score_opens_a_recovery_ticket_and_the_comment_reaches_staff(
    desk: Desk, clock: FixedClock
) -> None:
    question = await invited(desk, clock)
    after = desk.sandbox.seq
    [recovery] = await desk.press(ANN, question, "2")
    assert "ticket #1" in recovery["plain_text"]
    ticket = row(desk, "SELECT source, priority, subject FROM tickets")
    assert ticket["source"] == "low_satisfaction"
    assert ticket["subject"].startswith("Low satisfaction: 2/5 for order #")
    [topic] = desk.sandbox.topics(STAFF_CHAT)
    assert topic["name"].startswith("#1 Low satisfaction - Ann")
    assert "Low satisfaction: 2/5" in text_of(desk.sent_to(STAFF_CHAT, after))
    after = desk.sandbox.seq
    await desk.say(ANN, "The box was crushed and two mugs broke")
    assert survey(desk)["comment"] == "The box was crushed and two mugs broke"
    assert "The box was crushed" in text_of(desk.sent_to(STAFF_CHAT, after))


async def test_a_three_asks_what_went_wrong_and_a_complaint_like_answer_opens_a_ticket(
    desk: Desk, clock: FixedClock
) -> None:
    question = await invited(desk, clock)
    [ask] = await desk.press(ANN, question, "3")
    assert "What went wrong?" in ask["plain_text"]
    assert row(desk, "SELECT count(*) AS n FROM tickets") == {"n": 0}  # 3 is not low enough
    [recovery] = await desk.say(ANN, "One mug arrived broken")
    assert "ticket #1" in recovery["plain_text"]
    assert row(desk, "SELECT source FROM tickets")["source"] == "low_satisfaction"


async def test_a_three_with_a_mild_comment_is_just_thanked(desk: Desk, clock: FixedClock) -> None:
    question = await invited(desk, clock)
    await desk.press(ANN, question, "3")
    [thanks] = await desk.say(ANN, "Nice mugs, the colour was a bit paler than the photo")
    assert "Thank you" in thanks["plain_text"]
    assert row(desk, "SELECT count(*) AS n FROM tickets") == {"n": 0}


async def test_high_score_may_ask_nps(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    async for desk in open_desk(demo_database, survey_config(tmp_path, nps_percent=100), clock):
        await desk.say(ANN, "/start")
        question = await invited(desk, clock)
        [nps] = await desk.press(ANN, question, "5")
        assert "recommend us" in nps["plain_text"]
        [thanks] = await desk.press(ANN, nps, "9")
        assert "Thank you" in thanks["plain_text"]
        assert (survey(desk)["score"], survey(desk)["nps"]) == (5, 9)


async def test_forged_survey_double_tap_and_expiry(desk: Desk, clock: FixedClock) -> None:
    question = await invited(desk, clock)  # survey 1: Ann's, sent, not answered yet
    wei_question = await invited(desk, clock, WEI)  # survey 2: Wei's
    # Wei forges a button for Ann's open survey: refused, Ann's survey untouched
    query = desk.sandbox.press_button(WEI, wei_question["message_id"], "sv:1:1", force=True)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    forged = desk.sandbox.callback_answer(query)
    assert forged is not None
    assert forged["show_alert"]
    assert (survey(desk)["status"], survey(desk)["score"]) == ("sent", None)
    # Ann answers; a second tap changes nothing and says so
    await desk.press(ANN, question, "4")
    query = desk.sandbox.press_button(ANN, question["message_id"], "sv:1:1", force=True)
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    again = desk.sandbox.callback_answer(query)
    assert again is not None
    assert "already answered" in again["text"]
    assert survey(desk)["score"] == 4
    # Wei's own survey closes after 7 days
    clock.advance(timedelta(days=8))
    query = desk.sandbox.press_button(WEI, wei_question["message_id"], "sv:2:5")
    await desk.sandbox.wait_idle(quiet=0.15, timeout=10)
    closed = desk.sandbox.callback_answer(query)
    assert closed is not None
    assert "本次调查已结束" in closed["text"]
    assert survey(desk, 2)["score"] is None


async def test_frequency_cap_one_per_order_and_open_tickets(desk: Desk, clock: FixedClock) -> None:
    await invited(desk, clock)
    orders = orders_of(desk.care, ANN.id)
    delivered(desk.care, orders[0], clock.now())  # the same order again: no second survey
    assert row(desk, "SELECT count(*) AS n FROM surveys") == {"n": 1}
    delivered(desk.care, orders[1], clock.now())  # another order within 14 days
    clock.advance(timedelta(days=3))
    assert await run_survey_job(desk, 2) == []
    assert (survey(desk, 2)["status"], survey(desk, 2)["skip_reason"]) == (
        "skipped",
        "frequency_cap",
    )
    await desk.say(WEI, "/person")  # an open ticket: no survey meanwhile
    delivered(desk.care, orders_of(desk.care, WEI.id)[0], clock.now())
    clock.advance(timedelta(days=3))
    assert await run_survey_job(desk, 3) == []
    assert survey(desk, 3)["skip_reason"] == "open_ticket"


async def test_support_csat_is_credited_to_the_resolver_and_shown_in_the_topic(
    desk: Desk,
) -> None:
    await desk.say(ANN, "/person")
    thread = int(desk.sandbox.topics(STAFF_CHAT)[0]["message_thread_id"])
    after = await desk.staff_says(MARIA, "/resolve", thread_id=thread)
    await desk.sandbox.wait_idle(quiet=0.3, timeout=10)
    question = desk.sent_to(ANN.id, after)[-1]
    assert "How did we do with your ticket #1?" in question["plain_text"]
    after = desk.sandbox.seq
    await desk.press(ANN, question, "5")
    assert row(desk, "SELECT satisfaction FROM tickets") == {"satisfaction": 5}
    assert row(desk, "SELECT staff_name FROM surveys") == {"staff_name": "Maria"}
    assert "rated the support on ticket #1: 5/5 (resolved by Maria)" in text_of(
        desk.sent_to(STAFF_CHAT, after)
    )


async def test_an_invitation_due_while_down_goes_out_once_at_start(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    config = survey_config(tmp_path)
    shutil.copyfile(demo_database, resolve_database_path(config))
    async with BotApiSandbox() as sandbox:
        sandbox.add_group(STAFF_CHAT, "Demo Gifts support", forum=True)
        async with running(config, clock, sandbox) as care:
            await Desk(sandbox, care).say(ANN, "/start")
            delivered(care, orders_of(care, ANN.id)[0], clock.now())
        clock.set(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))  # a day after it was due
        for _ in range(2):  # two starts: the invitation goes out once
            async with running(config, clock, sandbox) as care:
                await sandbox.wait_idle(quiet=0.3, timeout=10)
        questions = [m for m in sandbox.sent(ANN.id) if "How was your order" in m["plain_text"]]
        assert len(questions) == 1
