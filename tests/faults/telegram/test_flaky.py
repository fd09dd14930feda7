"""Telegram flaky: a share of requests answered 500, 429 or timed out, and still every reply,
staff relay, survey invitation and campaign reminder arrives, once, in order per chat."""

from __future__ import annotations

import asyncio

from carebot.sandbox import BotApiSandbox
from tests.e2e.conftest import ANN, NEWCOMER, WEI
from tests.e2e.test_campaigns import SEND_DAY
from tests.e2e.test_tickets import STAFF_CHAT
from tests.faults.telegram.conftest import MESSAGE_SENDS, SENDS_AND_FRIENDS, SLOW_ANSWER, FlakyShop

# (customer, what they ask, the FAQ entry the answer must be) in the order they ask
QUESTIONS = [
    (ANN, "How long will delivery take to Belgium?", "How long does delivery take?"),
    (WEI, "运费多少钱？", "运费是多少？"),
    (NEWCOMER, "how do I send something back", "How do I return an item?"),
    (ANN, "can I pay with paypal", "Which payment methods do you accept?"),
    (NEWCOMER, "can I change my order", "Can I change or cancel my order?"),
]


def make_flaky(sandbox: BotApiSandbox) -> None:
    """About a quarter of the calls fail: timeouts (the request dropped, answered after the
    bot gave up), 500s and 429s; the first answer to each customer fails for sure, one way
    each. Wei's chat gets no timeouts: her survey invitation is sent at most once (see
    test_ledger_sends_that_time_out_are_never_doubled)."""
    sandbox.set_fault("timeout", methods="sendMessage", chat_id=ANN.id, delay=SLOW_ANSWER, count=1)
    sandbox.set_fault("500", methods="sendMessage", chat_id=NEWCOMER.id, count=1)
    sandbox.set_fault("429", methods="sendMessage", chat_id=WEI.id, retry_after=1, count=1)
    for chat_id in (ANN.id, NEWCOMER.id, STAFF_CHAT):
        sandbox.set_fault(
            "timeout", methods=MESSAGE_SENDS, rate=0.08, delay=SLOW_ANSWER, chat_id=chat_id
        )
    sandbox.set_fault("500", methods=SENDS_AND_FRIENDS, rate=0.12)
    sandbox.set_fault("429", methods=SENDS_AND_FRIENDS, rate=0.08, retry_after=1)


def in_order(texts: list[str], *expected: str) -> bool:
    """Each expected fragment in its own message, in this order, and nothing else."""
    return len(texts) == len(expected) and all(e in t for e, t in zip(expected, texts, strict=True))


async def test_every_reply_relay_survey_and_reminder_arrives_once_in_order(
    shop: FlakyShop,
) -> None:
    for user in (ANN, WEI, NEWCOMER):
        await shop.say(user, "/start")
    make_flaky(shop.sandbox)
    campaign = asyncio.create_task(shop.run_campaign(SEND_DAY))

    # customers ask at the same time; each gets every answer, in the order asked
    after = shop.sandbox.seq
    for user, question, _ in QUESTIONS:
        shop.sandbox.send_text(user, question)
    for user in (ANN, WEI, NEWCOMER):
        asked = [entry for who, _, entry in QUESTIONS if who == user]
        answers = await shop.arriving(user.id, len(asked), after)
        assert in_order([a["plain_text"] for a in answers], *asked)

    # a complaint and a "talk to a person": tickets with topics, customers' words copied
    opened = await shop.complaint(ANN, "The mugs arrived broken")
    assert "ticket #1" in opened["plain_text"]
    await shop.say(WEI, "/person")
    ann_topic, wei_topic = await shop.topic_of(ANN), await shop.topic_of(WEI)
    await shop.until(lambda: "The mugs arrived broken" in shop.texts(STAFF_CHAT))

    # staff answer in the topics, several at once: relayed in the order written
    after = shop.sandbox.seq
    for n in (1, 2, 3):
        shop.staff_writes(f"Ann, answer {n}", ann_topic)
    shop.staff_writes("Wei, answer 1", wei_topic)
    relayed_ann = await shop.arriving(ANN.id, 3, after)
    assert [m["plain_text"] for m in relayed_ann] == [
        "Ann, answer 1",
        "Ann, answer 2",
        "Ann, answer 3",
    ]
    [relayed_wei] = await shop.arriving(WEI.id, 1, after)
    assert relayed_wei["plain_text"] == "Wei, answer 1"

    # resolving Wei's ticket: the notice from the handler, then the survey from its job
    after = shop.sandbox.seq
    shop.staff_writes("/resolve", wei_topic)
    resolved, invitation = await shop.arriving(WEI.id, 2, after)
    assert "#2" in resolved["plain_text"]
    assert "#2" in invitation["plain_text"]
    assert [b["callback_data"] for b in invitation["reply_markup"]["inline_keyboard"][0]] == [
        f"sv:1:{n}" for n in range(1, 6)
    ]

    await asyncio.wait_for(campaign, timeout=60)
    for customer_id in shop.recipients:  # every reminder, exactly once
        assert len(shop.reminders_to(customer_id)) == 1
    assert {r["status"] for r in shop.ledger()} == {"sent"}

    # nothing doubled anywhere: each chat holds exactly what was expected
    assert len(shop.texts(ANN.id)) == 1 + 2 + 2 + 1 + 3  # welcome, answers, form, ticket, relays
    assert len(shop.texts(WEI.id)) == 1 + 1 + 1 + 1 + 2  # welcome, answer, ticket, relay, end
    assert len(shop.texts(NEWCOMER.id)) == 1 + 2
    assert shop.texts(STAFF_CHAT).count("The mugs arrived broken") == 1
    # the invitation's outcome is recorded just after its answer came back
    await shop.until(
        lambda: list(shop.care.db.query("SELECT status FROM surveys")) == [{"status": "sent"}]
    )

    # Telegram really was flaky, and the limiter backed off
    faults = {c.get("fault") for c in shop.sandbox.calls()}
    assert {"500", "429", "timeout"} <= faults
    stats = shop.limiter.stats
    assert stats.transient_retried > 0
    assert stats.retry_after_honoured > 0
    assert stats.backoff_seconds > 0
    assert stats.unsure_not_retried == 0


async def test_ledger_sends_that_time_out_are_never_doubled(shop: FlakyShop) -> None:
    """A timeout after Telegram took the message (apply=True) or before it (apply=False):
    reminders are never sent twice (the ledger says which are uncertain); a reply is sent
    again, so it arrives at least once."""
    took_it, dropped = (shop.chat_of(c) for c in shop.recipients[:2])
    for chat_id, applied in ((took_it, True), (dropped, False)):
        shop.sandbox.set_fault(
            "timeout", methods="sendMessage", chat_id=chat_id, delay=SLOW_ANSWER, apply=applied
        )
    for applied in (True, False):  # and a share of the others, either way
        shop.sandbox.set_fault(
            "timeout", methods="sendMessage", rate=0.2, delay=SLOW_ANSWER, apply=applied
        )
    await shop.run_campaign(SEND_DAY)
    ledger = {shop.chat_of(row["customer_id"]): row for row in shop.ledger()}
    assert {row["status"] for row in ledger.values()} <= {"sent", "uncertain"}
    for row in ledger.values():  # sent: exactly once; uncertain: once or not at all
        possible = {1} if row["status"] == "sent" else {0, 1}
        assert len(shop.reminders_to(row["customer_id"])) in possible
    for chat_id, arrived in ((took_it, 1), (dropped, 0)):
        assert (ledger[chat_id]["status"], ledger[chat_id]["reason"]) == (
            "uncertain",
            "timed out (may have arrived)",
        )
        assert len(shop.sandbox.sent(chat_id)) == arrived
    uncertain = sum(1 for row in ledger.values() if row["status"] == "uncertain")
    assert shop.limiter.stats.unsure_not_retried == uncertain

    shop.sandbox.clear_faults()
    shop.sandbox.set_fault(
        "timeout", methods="sendMessage", chat_id=ANN.id, delay=SLOW_ANSWER, apply=True, count=1
    )
    after = shop.sandbox.seq
    shop.sandbox.send_text(ANN, "How long will delivery take to Belgium?")
    shop.sandbox.send_text(ANN, "can I pay with paypal")
    first, again, second = await shop.arriving(ANN.id, 3, after)
    assert "How long does delivery take?" in first["plain_text"]
    assert again["plain_text"] == first["plain_text"]  # Telegram had it: a duplicate, not a loss
    assert "Which payment methods do you accept?" in second["plain_text"]
