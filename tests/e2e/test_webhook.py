"""Webhook mode: updates arrive on the bot's aiohttp route, only with the secret header."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.clock import FixedClock
from tests.conftest import make_config
from tests.e2e.conftest import ANN, Chat, start_chat

SECRET = "s3cret-token_value-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def webhook_chat(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> AsyncIterator[tuple[Chat, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    config = make_config(tmp_path, mode="webhook", webhook_url=url, webhook_secret=SECRET)
    config = dataclasses.replace(config, web=dataclasses.replace(config.web, port=port))
    async for chat in start_chat(demo_database, config, clock):
        yield chat, url


async def test_updates_arrive_through_the_webhook(webhook_chat: tuple[Chat, str]) -> None:
    chat, url = webhook_chat
    [welcome] = await chat.say(ANN, "/start")
    assert welcome["plain_text"].startswith("Hello, Ann!")
    set_webhook = chat.sandbox.calls("setWebhook")[-1]["params"]
    assert set_webhook["url"] == url
    assert set_webhook["secret_token"] == SECRET


@pytest.mark.parametrize("header", [None, "wrong", SECRET[:-1]])
async def test_requests_without_the_secret_are_refused(
    webhook_chat: tuple[Chat, str], header: str | None
) -> None:
    chat, url = webhook_chat
    update = {
        "update_id": 999,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "/start",
            "chat": {"id": 1001, "type": "private"},
            "from": {"id": 1001, "is_bot": False, "first_name": "Mallory"},
        },
    }
    headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=update, headers=headers) as r,
    ):
        assert r.status == 403
    await chat.sandbox.wait_idle(quiet=0.15)
    assert chat.sandbox.sent(1001) == []
    assert chat.care.db.table("messages").count_where("update_id = 999") == 0


async def test_junk_body_is_rejected_and_health_is_served(webhook_chat: tuple[Chat, str]) -> None:
    _, url = webhook_chat
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b"not json", headers=headers) as r:
            assert r.status == 400
        async with session.get(url.replace("/telegram/webhook", "/healthz")) as r:
            assert r.status == 200
            assert (await r.json())["mode"] == "webhook"
