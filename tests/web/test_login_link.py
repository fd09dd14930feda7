"""/login in Telegram: a one-time dashboard link, served by the bot's own web server."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar

from bot.clock import FixedClock
from bot.config import WebConfig
from tests.e2e.conftest import ANN, text_of
from tests.e2e.test_tickets import ADMIN, Desk, desk_config, open_desk
from tests.web.conftest import Visitor


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def bot_with_web(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> AsyncIterator[Desk]:
    """The bot serving its own web server (as `carebot run` with [web] enabled does)."""
    config = desk_config(tmp_path)
    config = dataclasses.replace(config, web=WebConfig(enabled=True, port=free_port()))
    async for desk in open_desk(demo_database, config, clock):
        yield desk


async def test_an_admin_gets_a_one_time_link_that_signs_them_in(bot_with_web: Desk) -> None:
    desk = bot_with_web
    [message] = await desk.say(ADMIN, "/login")
    text = message["plain_text"]
    assert "one-time link" in text
    url = next(word for word in text.split() if word.startswith("http"))
    assert url.startswith(f"http://127.0.0.1:{desk.care.config.web.port}/admin/login/link?")
    logged = [row["text"] for row in desk.care.db.query("SELECT text FROM messages")]
    assert not any(url.split("token=")[1] in (t or "") for t in logged)  # a credential
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        visitor = Visitor(http)
        await visitor.get(url)
        base = url.split("/admin")[0]
        token = url.split("token=")[1]
        page = await visitor.post(f"{base}/admin/login/link", {"token": token})
        assert page.url == f"{base}/admin"
        assert "Alex" in page.text  # the admin's Telegram name became the account's name
    [account] = desk.care.deps.dashboard.accounts.all()
    assert account.role == "admin"
    assert account.telegram_user_id == ADMIN.id


async def test_a_customer_asking_for_a_login_link_gets_none(bot_with_web: Desk) -> None:
    replies = await bot_with_web.say(ANN, "/login")
    assert "for the shop's admins" in text_of(replies)
    assert bot_with_web.care.deps.dashboard.accounts.all() == []


async def test_without_the_web_server_an_admin_is_told_how_to_turn_it_on(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    async for desk in open_desk(demo_database, desk_config(tmp_path), clock):
        replies = await desk.say(ADMIN, "/login")
        assert "enabled = true" in text_of(replies)


async def test_with_the_dashboard_turned_off_admin_pages_do_not_exist(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    web = WebConfig(enabled=True, port=free_port(), dashboard=False)
    config = dataclasses.replace(desk_config(tmp_path), web=web)
    async for desk in open_desk(demo_database, config, clock):
        async with ClientSession() as http:
            base = f"http://127.0.0.1:{web.port}"
            async with http.get(f"{base}/admin/login") as response:
                assert response.status == 404
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
        replies = await desk.say(ADMIN, "/login")
        assert "enabled = true" in text_of(replies)
