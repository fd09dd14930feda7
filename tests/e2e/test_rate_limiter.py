"""CareRateLimiter in a real ExtBot over HTTP, judged by what the Bot API sandbox recorded.

Limits (never more than N per window, never two sends to a chat too close) are asserted
strictly; rates and latencies only loosely, with margins meant for a small, noisy machine.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from telegram import Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from carebot.rate_limiter import CareRateLimitArgs, CareRateLimiter, Transient, transient
from carebot.sandbox import BotApiSandbox, SandboxUser

BULK: CareRateLimitArgs = {"bulk": True}
LEDGER_BULK: CareRateLimitArgs = {"bulk": True, "once": True}  # as campaign reminders go
STAFF_GROUP = -1001234567890
# Short waits, so timeouts and backoff cost little test time.
READ_TIMEOUT = 0.5
SLOW_ANSWER = 1.0  # the sandbox's "timeout" fault answers after this long: past READ_TIMEOUT

CareExtBot = ExtBot[CareRateLimitArgs]


@pytest.fixture
async def sandbox() -> AsyncIterator[BotApiSandbox]:
    async with BotApiSandbox() as sb:
        yield sb


@asynccontextmanager
async def limited_bot(
    sandbox: BotApiSandbox, limiter: CareRateLimiter
) -> AsyncIterator[CareExtBot]:
    bot: CareExtBot = ExtBot(
        sandbox.bot_token,
        base_url=sandbox.base_url,
        request=HTTPXRequest(connection_pool_size=128, read_timeout=READ_TIMEOUT),
        rate_limiter=limiter,
    )
    async with bot:
        yield bot


def customers(sandbox: BotApiSandbox, count: int, first_id: int = 5001) -> list[int]:
    """Private chats the bot may write to (each customer said hello once)."""
    chat_ids = []
    for n in range(count):
        user = SandboxUser(id=first_id + n, first_name=f"Customer {n}")
        sandbox.send_text(user, "hello")
        chat_ids.append(user.id)
    return chat_ids


def delivered(sandbox: BotApiSandbox) -> list[dict[str, Any]]:
    return [call for call in sandbox.calls("sendMessage") if call["ok"]]


def most_in_one_second(times: Iterable[float]) -> int:
    """The most sends that any window [t, t + 1 s) holds."""
    ordered = sorted(times)
    return max(
        sum(1 for later in ordered[i:] if later < start + 1.0) for i, start in enumerate(ordered)
    )


def closest_gap_within_a_chat(calls: Iterable[dict[str, Any]]) -> float:
    by_chat: dict[int, list[float]] = defaultdict(list)
    for call in calls:
        by_chat[call["params"]["chat_id"]].append(call["time"])
    gaps = [
        later - earlier
        for times in by_chat.values()
        for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False)
    ]
    return min(gaps, default=float("inf"))


async def test_a_bulk_run_keeps_both_limits_and_runs_close_to_the_allowed_rate(
    sandbox: BotApiSandbox,
) -> None:
    chats = customers(sandbox, 30)
    limiter = CareRateLimiter(bulk_per_second=20)
    async with limited_bot(sandbox, limiter) as bot:
        await asyncio.gather(
            *(
                bot.send_message(chat, f"reminder {n} of 2", rate_limit_args=BULK)
                for chat in chats
                for n in (1, 2)
            )
        )
    sent = delivered(sandbox)
    assert len(sent) == 60
    for chat in chats:  # each customer got both reminders, in order
        assert [m["plain_text"] for m in sandbox.sent(chat)] == [
            "reminder 1 of 2",
            "reminder 2 of 2",
        ]
    times = [call["time"] for call in sent]
    assert most_in_one_second(times) <= 20
    assert closest_gap_within_a_chat(sent) >= 1.0
    ideal = 59 / 20  # 60 sends spaced 1/20 s apart
    assert 0.75 * ideal <= max(times) - min(times) <= 1.25 * ideal
    assert limiter.stats.bulk_sends == 60
    assert limiter.stats.interactive_sends == 0


async def test_a_reply_is_not_held_up_by_a_campaign_to_other_customers(
    sandbox: BotApiSandbox,
) -> None:
    [asker, *campaign] = customers(sandbox, 21)
    async with limited_bot(sandbox, CareRateLimiter(bulk_per_second=10)) as bot:
        run = asyncio.gather(
            *(bot.send_message(chat, "Our spring sale", rate_limit_args=BULK) for chat in campaign)
        )
        await asyncio.sleep(0.5)  # the campaign has about 1.5 s of sends still queued
        started = time.monotonic()
        reply = await bot.send_message(asker, "Your parcel left today")
        # edits and other methods that add no message go straight through as well
        await bot.edit_message_text("Your parcel left this morning", asker, reply.message_id)
        await bot.send_chat_action(campaign[-1], "typing")
        answered_in = time.monotonic() - started
        await run
    assert answered_in < 0.5
    [reply_call] = [c for c in delivered(sandbox) if c["params"]["chat_id"] == asker]
    assert max(c["time"] for c in delivered(sandbox)) > reply_call["time"] + 0.5  # mid-run


async def test_replies_alone_leave_no_bookkeeping_behind(sandbox: BotApiSandbox) -> None:
    """A bot that only answers customers must not remember every answer for ever."""
    chats = customers(sandbox, 30)
    limiter = CareRateLimiter()
    async with limited_bot(sandbox, limiter) as bot:
        await asyncio.gather(*(bot.send_message(chat, "Thanks!") for chat in chats))
        await asyncio.sleep(1.1)  # past the one-second window
        await bot.send_message(chats[0], "Anything else?")
    assert len(limiter._recent_answers) == 1


async def test_a_campaign_message_waits_a_second_after_a_reply_to_the_same_customer(
    sandbox: BotApiSandbox,
) -> None:
    [chat] = customers(sandbox, 1)
    async with limited_bot(sandbox, CareRateLimiter()) as bot:
        await bot.send_message(chat, "Thanks, we got your question")
        await bot.send_message(chat, "How did we do? Rate us", rate_limit_args=BULK)
    reply, invitation = delivered(sandbox)
    assert 1.0 <= invitation["time"] - reply["time"] < 3.0


async def test_a_429_is_waited_out_retried_and_pauses_the_whole_campaign(
    sandbox: BotApiSandbox,
) -> None:
    chats = customers(sandbox, 10)
    sandbox.set_fault("429", methods="sendMessage", chat_id=chats[2], retry_after=1, count=1)
    limiter = CareRateLimiter(bulk_per_second=5)
    async with limited_bot(sandbox, limiter) as bot:
        await asyncio.gather(
            *(bot.send_message(chat, "Back in stock", rate_limit_args=BULK) for chat in chats)
        )
    calls = sandbox.calls("sendMessage")
    [flood] = [c for c in calls if not c["ok"]]
    assert flood["error_code"] == 429
    assert flood["params"]["chat_id"] == chats[2]
    sent = delivered(sandbox)
    assert sorted(c["params"]["chat_id"] for c in sent) == chats  # everyone, exactly once
    [retry] = [c for c in sent if c["params"]["chat_id"] == chats[2]]
    assert retry["time"] >= flood["time"] + 1.0
    # nobody else was sent to during the pause (only sends already under way may land just after)
    assert not [c for c in sent if flood["time"] + 0.25 < c["time"] < flood["time"] + 1.0]
    assert limiter.stats.retry_after_honoured == 1
    assert limiter.stats.retry_after_given_up == 0
    assert limiter.stats.retry_after_seconds >= 1.0


async def test_a_429_that_outlasts_max_retries_is_raised(sandbox: BotApiSandbox) -> None:
    [chat] = customers(sandbox, 1)
    sandbox.set_fault("429", methods="sendMessage", chat_id=chat, retry_after=1)
    limiter = CareRateLimiter(max_retries=1)
    async with limited_bot(sandbox, limiter) as bot:
        with pytest.raises(RetryAfter):
            await bot.send_message(chat, "Your ticket was answered")
    assert [c["error_code"] for c in sandbox.calls("sendMessage")] == [429, 429]
    assert (limiter.stats.retry_after_honoured, limiter.stats.retry_after_given_up) == (1, 1)


async def test_a_customer_who_blocked_the_bot_fails_at_once_and_others_still_get_theirs(
    sandbox: BotApiSandbox,
) -> None:
    [blocked, *others] = customers(sandbox, 6)
    sandbox.set_fault("403", chat_id=blocked)
    finished_at: dict[int, float] = {}

    async def remind(bot: CareExtBot, chat: int) -> Message:
        try:
            return await bot.send_message(chat, "Your order ships tomorrow", rate_limit_args=BULK)
        finally:
            finished_at[chat] = time.time()

    async with limited_bot(sandbox, CareRateLimiter()) as bot:
        outcomes = await asyncio.gather(
            *(remind(bot, chat) for chat in [blocked, *others]), return_exceptions=True
        )
    assert isinstance(outcomes[0], Forbidden)
    assert all(isinstance(outcome, Message) for outcome in outcomes[1:])
    [refused] = [c for c in sandbox.calls("sendMessage") if c["params"]["chat_id"] == blocked]
    assert refused["error_code"] == 403  # asked once, never retried
    assert finished_at[blocked] - refused["time"] < 0.5
    assert sorted(c["params"]["chat_id"] for c in delivered(sandbox)) == others


async def test_a_group_gets_twenty_messages_a_minute(sandbox: BotApiSandbox) -> None:
    sandbox.add_group(STAFF_GROUP, "Support team")
    async with limited_bot(sandbox, CareRateLimiter()) as bot:
        posts = [
            asyncio.create_task(bot.send_message(STAFF_GROUP, f"New ticket #{n}"))
            for n in range(1, 26)
        ]
        await sandbox.wait_idle(quiet=0.5, timeout=5)
        held = [post for post in posts if not post.done()]
        for post in held:
            post.cancel()
        await asyncio.gather(*posts, return_exceptions=True)
    sent = delivered(sandbox)
    assert len(sent) == 20
    assert max(c["time"] for c in sent) - min(c["time"] for c in sent) < 1.0  # no waiting
    assert len(held) == 5


async def test_the_group_limit_can_be_switched_off(sandbox: BotApiSandbox) -> None:
    sandbox.add_group(STAFF_GROUP, "Support team")
    async with limited_bot(sandbox, CareRateLimiter(group_per_minute=None)) as bot:
        async with asyncio.timeout(5):
            await asyncio.gather(
                *(bot.send_message(STAFF_GROUP, f"New ticket #{n}") for n in range(1, 26))
            )
    assert len(delivered(sandbox)) == 25


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"bulk_per_second": 0}, "bulk_per_second"),
        ({"bulk_per_second": float("inf")}, "bulk_per_second"),
        ({"per_chat_interval": -1}, "per_chat_interval"),
        ({"group_per_minute": 0}, "group_per_minute"),
        ({"group_per_minute": 2.5}, "group_per_minute"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"backoff_base": -0.5}, "backoff_base"),
        ({"backoff_cap": float("nan")}, "backoff_cap"),
    ],
)
def test_settings_that_make_no_sense_are_refused(arguments: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        CareRateLimiter(**arguments)


def quick_retries(**settings: Any) -> CareRateLimiter:
    return CareRateLimiter(backoff_base=0.2, backoff_cap=0.5, **settings)


async def first_failure(sandbox: BotApiSandbox) -> None:
    """Return once the sandbox has refused a call (failures make no event to wait for)."""
    for _ in range(200):
        if not all(call["ok"] for call in sandbox.calls()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no call failed within 2 s")


def texts_in(sandbox: BotApiSandbox, chat: int) -> list[str]:
    return [m["plain_text"] for m in sandbox.sent(chat)]


async def test_a_500_is_backed_off_from_retried_and_pauses_the_campaign(
    sandbox: BotApiSandbox,
) -> None:
    chats = customers(sandbox, 8)
    sandbox.set_fault("500", methods="sendMessage", chat_id=chats[1], count=2)
    limiter = CareRateLimiter(bulk_per_second=5, backoff_base=0.4, backoff_cap=1.0)
    async with limited_bot(sandbox, limiter) as bot:
        await asyncio.gather(
            *(bot.send_message(chat, "Back in stock", rate_limit_args=BULK) for chat in chats)
        )
    calls = sandbox.calls("sendMessage")
    failures = [c for c in calls if not c["ok"]]
    assert [c["error_code"] for c in failures] == [500, 500]
    sent = delivered(sandbox)
    assert sorted(c["params"]["chat_id"] for c in sent) == chats  # everyone, exactly once
    # while it backed off (at least 0.2 s each time), nobody else was sent to
    for failure in failures:
        assert not [c for c in sent if failure["time"] + 0.1 < c["time"] < failure["time"] + 0.2]
    assert limiter.stats.transient_retried == 2
    assert limiter.stats.transient_given_up == 0
    assert limiter.stats.backoff_seconds >= 0.2 + 0.4


async def test_a_timed_out_reply_is_sent_again(sandbox: BotApiSandbox) -> None:
    [chat] = customers(sandbox, 1)
    sandbox.set_fault("timeout", methods="sendMessage", delay=SLOW_ANSWER, count=1)
    limiter = quick_retries()
    async with limited_bot(sandbox, limiter) as bot:
        await bot.send_message(chat, "Your parcel left today")
    assert texts_in(sandbox, chat) == ["Your parcel left today"]
    assert limiter.stats.transient_retried == 1


async def test_a_reply_that_timed_out_after_arriving_arrives_twice_rather_than_never(
    sandbox: BotApiSandbox,
) -> None:
    [chat] = customers(sandbox, 1)
    sandbox.set_fault("timeout", methods="sendMessage", delay=SLOW_ANSWER, count=1, apply=True)
    async with limited_bot(sandbox, quick_retries()) as bot:
        await bot.send_message(chat, "Your parcel left today")
    assert texts_in(sandbox, chat) == ["Your parcel left today"] * 2


@pytest.mark.parametrize("arrived", [False, True])
async def test_a_timed_out_ledger_send_is_never_sent_twice(
    sandbox: BotApiSandbox, arrived: bool
) -> None:
    [chat] = customers(sandbox, 1)
    sandbox.set_fault("timeout", methods="sendMessage", delay=SLOW_ANSWER, count=1, apply=arrived)
    limiter = quick_retries()
    async with limited_bot(sandbox, limiter) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(chat, "Our spring sale", rate_limit_args=LEDGER_BULK)
    # the caller's ledger records it as uncertain: it may or may not be there, never twice
    assert texts_in(sandbox, chat) == (["Our spring sale"] if arrived else [])
    assert limiter.stats.unsure_not_retried == 1
    assert limiter.stats.transient_retried == 0


async def test_a_message_to_a_chat_waits_for_the_one_being_retried_there(
    sandbox: BotApiSandbox,
) -> None:
    [chat, other] = customers(sandbox, 2)
    sandbox.set_fault("500", methods="sendMessage", chat_id=chat, count=1)
    limiter = CareRateLimiter(backoff_base=0.5)
    async with limited_bot(sandbox, limiter) as bot:
        first = asyncio.create_task(bot.send_message(chat, "We got your question"))
        await first_failure(sandbox)  # the first attempt failed: now backing off
        # from another task, as a job or a staff relay would send
        second = asyncio.create_task(bot.send_message(chat, "Maria answered: it ships today"))
        elsewhere = await bot.send_message(other, "Hello")
        await asyncio.gather(first, second)
    assert texts_in(sandbox, chat) == ["We got your question", "Maria answered: it ships today"]
    [answered_elsewhere] = [c for c in delivered(sandbox) if c["params"]["chat_id"] == other]
    [retried] = [c for c in delivered(sandbox) if c["params"]["chat_id"] == chat][:1]
    assert answered_elsewhere["time"] < retried["time"]  # other chats are not held up
    assert elsewhere.chat_id == other
    # the answer's wait for its turn is reported, not only the first message's backoff
    # (which starts at 0.25 s; the answer queued within a few hundredths of a second of it)
    assert limiter.stats.waited_seconds > limiter.stats.backoff_seconds + 0.1


async def test_a_campaign_message_being_retried_is_not_stuck_behind_the_next_one_to_its_chat(
    sandbox: BotApiSandbox,
) -> None:
    """Two campaigns remind one customer at once; the first reminder's send fails once."""
    [chat] = customers(sandbox, 1)
    sandbox.set_fault("500", methods="sendMessage", chat_id=chat, count=1)
    limiter = quick_retries(per_chat_interval=0.1)
    async with limited_bot(sandbox, limiter) as bot, asyncio.timeout(20):  # a hang fails
        first = asyncio.create_task(bot.send_message(chat, "Birthday", rate_limit_args=BULK))
        await first_failure(sandbox)
        second = asyncio.create_task(bot.send_message(chat, "Anniversary", rate_limit_args=BULK))
        reply = asyncio.create_task(bot.send_message(chat, "Your parcel left today"))
        await asyncio.gather(first, second, reply)
    assert texts_in(sandbox, chat)[0] == "Birthday"  # the retried one first, then the others
    assert sorted(texts_in(sandbox, chat)) == ["Anniversary", "Birthday", "Your parcel left today"]
    assert limiter.stats.transient_retried == 1


async def test_transient_failures_that_outlast_max_retries_are_raised(
    sandbox: BotApiSandbox,
) -> None:
    [chat] = customers(sandbox, 1)
    sandbox.set_fault("500", methods="sendMessage", chat_id=chat)
    limiter = quick_retries(max_retries=2)
    async with limited_bot(sandbox, limiter) as bot:
        with pytest.raises(NetworkError):
            await bot.send_message(chat, "Your ticket was answered")
    assert [c["error_code"] for c in sandbox.calls("sendMessage")] == [500, 500, 500]
    assert (limiter.stats.transient_retried, limiter.stats.transient_given_up) == (2, 1)


async def test_a_bad_request_is_never_retried(sandbox: BotApiSandbox) -> None:
    limiter = quick_retries()
    async with limited_bot(sandbox, limiter) as bot:
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(987654, "Nobody here")
    assert [c["error_code"] for c in sandbox.calls("sendMessage")] == [400]
    assert limiter.stats.transient_retried == 0


def network_error(message: str, cause: BaseException | None = None) -> NetworkError:
    """A NetworkError as PTB raises it: from an httpx error, or bare for an HTTP answer."""
    error = TimedOut() if isinstance(cause, httpx.TimeoutException) else NetworkError(message)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (network_error("Internal Server Error"), Transient.NOT_SENT),
        (network_error("Bad Gateway"), Transient.NOT_SENT),
        (network_error("Request Entity Too Large (413)"), None),
        (network_error("", httpx.ConnectError("refused")), Transient.NOT_SENT),
        (network_error("", httpx.PoolTimeout("pool")), Transient.NOT_SENT),
        (network_error("", httpx.ConnectTimeout("slow")), Transient.NOT_SENT),
        (network_error("", httpx.ReadTimeout("slow")), Transient.UNSURE),
        (network_error("", httpx.RemoteProtocolError("dropped")), Transient.UNSURE),
        (BadRequest("Bad Request: chat not found"), None),
        (Forbidden("Forbidden: bot was blocked by the user"), None),
    ],
)
def test_which_failures_are_worth_a_retry(error: NetworkError, expected: Transient | None) -> None:
    assert transient(error) is expected


async def failing_every_time(
    error: Callable[[], NetworkError], args: CareRateLimitArgs, *, max_retries: int
) -> tuple[int, NetworkError]:
    """A send through a fresh limiter whose every attempt fails with ``error()``, raised as
    PTB raises it (no sandbox can drop a connection mid-answer or refuse one): the attempts
    made and what the caller got."""
    limiter = quick_retries(max_retries=max_retries, per_chat_interval=0)
    await limiter.initialize()
    tries = 0

    async def attempt() -> dict[str, Any]:
        nonlocal tries
        tries += 1
        raise error()

    with pytest.raises(NetworkError) as raised:
        await limiter.process_request(attempt, (), {}, "sendMessage", {"chat_id": 5001}, args)
    return tries, raised.value


@pytest.mark.parametrize(("args", "attempts"), [({}, 3), (LEDGER_BULK, 1)])
async def test_a_connection_dropped_after_sending_is_resent_unless_sent_once(
    args: CareRateLimitArgs, attempts: int
) -> None:
    tries, raised = await failing_every_time(
        lambda: network_error("httpx.RemoteProtocolError", httpx.RemoteProtocolError("gone")),
        args,
        max_retries=2,
    )
    assert tries == attempts
    # a ledger records a timeout as "uncertain": a dropped answer is reported as one
    assert isinstance(raised, TimedOut) == bool(args)


@pytest.mark.parametrize(("args", "raised_as"), [({}, TimedOut), (LEDGER_BULK, NetworkError)])
async def test_a_ledger_send_that_never_connected_is_not_reported_as_uncertain(
    args: CareRateLimitArgs, raised_as: type[NetworkError]
) -> None:
    """Telegram unreachable past every retry: a ledger must not record the reminder as
    "may have arrived" (never resent), since it never left this machine."""
    tries, raised = await failing_every_time(
        lambda: network_error("", httpx.ConnectTimeout("no route")), args, max_retries=1
    )
    assert tries == 2  # retried whatever the arguments: it was never sent
    assert type(raised) is raised_as
