"""The real carebot Application talking HTTP to the local Bot API sandbox."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FixedClock
from bot.config import Config, resolve_database_path
from carebot.runtime import CareBot
from carebot.sandbox import BotApiSandbox, SandboxUser
from tests.conftest import START, bot_on_sandbox, make_config

# PTB 22 warns about RetryAfter's int retry_after unless timedeltas are switched on.
os.environ.setdefault("PTB_TIMEDELTA", "true")

ANN = SandboxUser(id=1001, first_name="Ann", last_name="Peeters", language_code="en")
WEI = SandboxUser(id=1002, first_name="Wei", language_code="zh-hans")
NEWCOMER = SandboxUser(id=3003, first_name="Nina", language_code="en-GB")
STRANGER = SandboxUser(id=4004, first_name="Sam", language_code="fr")


@dataclass
class Chat:
    """A customer-eye view: type, press, and read what the bot sent back."""

    sandbox: BotApiSandbox
    care: CareBot

    async def say(self, user: SandboxUser, text: str, **kwargs: Any) -> list[dict[str, Any]]:
        after = self.sandbox.seq
        self.sandbox.send_text(user, text, **kwargs)
        return await self.replies(user, after)

    async def press(
        self, user: SandboxUser, message: dict[str, Any], label: str
    ) -> list[dict[str, Any]]:
        """Press the inline button whose label contains ``label`` on a bot message."""
        buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
        [button] = [b for b in buttons if label in b["text"]]
        after = self.sandbox.seq
        self.sandbox.press_button(user, message["message_id"], button["callback_data"])
        return await self.replies(user, after)

    async def replies(self, user: SandboxUser, after: int) -> list[dict[str, Any]]:
        """New messages the bot sent to the user's chat after event ``after``."""
        await self.sandbox.wait_idle(quiet=0.15, timeout=10)
        return [
            e.message
            for e in self.sandbox.events_after(after, chat_id=user.id)
            if e.method == "sendMessage" and e.message is not None
        ]

    def current(self, user: SandboxUser, message_id: int) -> dict[str, Any]:
        message = self.sandbox.message(user.id, message_id)
        assert message is not None
        return message


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n---\n".join(m["plain_text"] for m in messages)


async def start_chat(demo_database: Path, config: Config, clock: FixedClock) -> AsyncIterator[Chat]:
    shutil.copyfile(demo_database, resolve_database_path(config))
    async with BotApiSandbox() as sandbox:
        care = bot_on_sandbox(config, clock, sandbox)
        async with care.running():
            yield Chat(sandbox, care)


@pytest.fixture
async def chat(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Chat]:
    async for harness in start_chat(demo_database, make_config(tmp_path), clock):
        yield harness


__all__ = ["ANN", "NEWCOMER", "START", "STRANGER", "WEI", "Chat", "text_of"]
