"""The whole bot (desk, surveys, campaigns) against a sandbox that fails on purpose.

Timeouts are kept short so a timed-out request costs half a second: the bot's HTTP read
timeout is :data:`READ_TIMEOUT`, and the sandbox's "timeout" fault answers after
:data:`SLOW_ANSWER`. Conversations are driven by what arrives (``wait_for_messages`` and
polled conditions), never by "the sandbox went quiet": a request backing off is quiet too.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FixedClock
from bot.config import resolve_database_path
from carebot.rate_limiter import CareRateLimiter
from carebot.sandbox import BotApiSandbox, SandboxUser
from handlers.desk import Desk
from tests.conftest import bot_on_sandbox
from tests.e2e.test_campaigns import (
    SEND_DAY,
    Shop,
    bind_on_telegram,
    campaign_config,
    create_and_start,
    loyal_christmas_buyers,
    wait_for,
    write_config_file,
)
from tests.e2e.test_tickets import MARIA, STAFF_CHAT

READ_TIMEOUT = 0.5
SLOW_ANSWER = 1.0
# Enough retries that a request failing 20-30 % of the time practically always gets through.
MAX_RETRIES = 6
# Requests that put a message into a chat, and the ones around them (buttons, topics).
MESSAGE_SENDS = ("sendMessage", "copyMessage")
SENDS_AND_FRIENDS = (
    *MESSAGE_SENDS,
    "editMessageText",
    "editMessageReplyMarkup",
    "answerCallbackQuery",
    "createForumTopic",
    "editForumTopic",
)
# Long enough for several backoffs in a row on a busy machine.
ARRIVAL = 30.0


@dataclasses.dataclass
class FlakyShop(Shop):
    """A shop with a forum staff chat whose Telegram fails on purpose."""

    @property
    def limiter(self) -> CareRateLimiter:
        limiter = self.care.application.bot.rate_limiter
        assert isinstance(limiter, CareRateLimiter)
        return limiter

    @property
    def desk(self) -> Desk:
        app = self.care.application
        return Desk(app.bot, self.care.deps, app.job_queue)

    def texts(self, chat_id: int) -> list[str]:
        """Everything the bot put into a chat, in order (forum service messages aside)."""
        return [m.get("plain_text") or m.get("plain_caption") or "" for m in self.sent(chat_id)]

    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        return self.sandbox.sent(chat_id)

    def texts_since(self, chat_id: int, after: int) -> list[str]:
        """What the bot sent to a chat after event ``after``, in order."""
        return [
            event.message.get("plain_text", "")
            for event in self.sandbox.events_after(after, chat_id=chat_id)
            if event.message is not None and event.method in ("sendMessage", "copyMessage")
        ]

    async def say(self, user: SandboxUser, text: str, count: int = 1, **kw: Any) -> list[Any]:
        """The user writes; the ``count`` messages the bot sends to them after it."""
        after = self.sandbox.seq
        self.sandbox.send_text(user, text, **kw)
        return await self.arriving(user.id, count, after)

    async def arriving(self, chat_id: int, count: int, after: int) -> list[dict[str, Any]]:
        found = await self.sandbox.wait_for_messages(chat_id, count, after=after, timeout=ARRIVAL)
        assert len(found) == count, [m.get("plain_text") for m in found]
        return found

    async def until(self, condition: Callable[[], bool]) -> None:
        await wait_for(condition, limit=ARRIVAL, every=0.02)

    def buttons(self, chat_id: int, message_id: int) -> list[str]:
        current = self.sandbox.message(chat_id, message_id) or {}
        rows = current.get("reply_markup", {}).get("inline_keyboard", [])
        return [button["callback_data"] for row in rows for button in row]

    async def complaint(self, user: SandboxUser, text: str) -> dict[str, Any]:
        """The complaint form (first order, "Damaged", a description, Send): the ticket's
        confirmation."""
        [choose] = await self.say(user, "⚠️ Complaint")
        first_order = self.buttons(user.id, choose["message_id"])[0]
        self.sandbox.press_button(user, choose["message_id"], first_order)
        await self.until(lambda: "cpl:c:damaged" in self.buttons(user.id, choose["message_id"]))
        self.sandbox.press_button(user, choose["message_id"], "cpl:c:damaged")
        await self.until(lambda: self.buttons(user.id, choose["message_id"]) == ["cpl:cancel"])
        [added] = await self.say(user, text)
        after = self.sandbox.seq
        self.sandbox.press_button(user, added["message_id"], "cpl:send")
        [opened] = await self.arriving(user.id, 1, after)
        return opened

    async def topic_of(self, user: SandboxUser) -> int:
        """The forum topic of the user's latest ticket (once it has one: the customer is
        told the ticket number before it is posted for staff)."""

        def thread() -> int | None:
            rows = self.care.db.query(
                """SELECT t.staff_thread_id FROM tickets t
                   JOIN customers c ON c.id = t.customer_id
                   WHERE c.telegram_user_id = ? ORDER BY t.id DESC LIMIT 1""",
                [user.id],
            )
            return next((row["staff_thread_id"] for row in rows), None)

        await self.until(lambda: thread() is not None)
        found = thread()
        assert found is not None
        return found

    def staff_writes(self, text: str, thread_id: int, user: SandboxUser = MARIA) -> None:
        self.sandbox.send_text(user, text, chat_id=STAFF_CHAT, thread_id=thread_id)


async def open_flaky_shop(
    tmp_path: Path, demo_database: Path, clock: FixedClock
) -> AsyncIterator[FlakyShop]:
    config = campaign_config(tmp_path, messages_per_second=20)
    config = dataclasses.replace(
        config,
        telegram=dataclasses.replace(
            config.telegram, max_retries=MAX_RETRIES, read_timeout=READ_TIMEOUT
        ),
    )
    shutil.copyfile(demo_database, resolve_database_path(config))
    async with BotApiSandbox(seed=8) as sandbox:
        sandbox.add_group(STAFF_CHAT, "Demo Gifts support", forum=True)
        care = bot_on_sandbox(config, clock, sandbox)
        recipients = [r["id"] for r in loyal_christmas_buyers(care.repos)]
        bind_on_telegram(care.repos, recipients, sandbox)
        async with care.running():
            config_path = write_config_file(tmp_path, config)
            yield FlakyShop(sandbox, care, config_path, clock, recipients)


@pytest.fixture
async def shop(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[FlakyShop]:
    clock.set(SEND_DAY)  # the Christmas campaign's moment, and an ordinary day for the desk
    async for harness in open_flaky_shop(tmp_path, demo_database, clock):
        create_and_start(harness, tmp_path)
        yield harness
