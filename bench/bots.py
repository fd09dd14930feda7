"""The two bots under test, each started in polling mode against the same sandbox.

* ``carebot``: the real application from :func:`carebot.runtime.build_application`, with a
  fresh temporary SQLite database loaded with the demo shop.
* ``echo``: a bare python-telegram-bot Application whose only handler replies with the text
  it received.

Both use PTB's :class:`~telegram.ext.AIORateLimiter` with the same ``max_retries``, the same
polling parameters as carebot (``poll_interval=0``, the same long-poll timeout, all update
types) and PTB's default sequential update processing (``concurrent_updates`` unset).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, MessageHandler, filters

from bot.clock import SystemClock
from bot.config import Config, TelegramConfig
from carebot.loading import demo_config, load_demo_shop
from carebot.runtime import POLL_TIMEOUT_SECONDS, build_application
from carebot.sandbox import BotApiSandbox

BotKind = Literal["carebot", "echo"]
BOT_KINDS: tuple[BotKind, ...] = ("carebot", "echo")

#: ``production``: AIORateLimiter exactly as carebot builds it (PTB's defaults: at most 30
#: requests/s overall, 20/min per group).  ``unthrottled``: the same limiter class and
#: ``max_retries`` with both flood limits switched off (rate 0), so the bots' own speed shows.
LimiterMode = Literal["unthrottled", "production"]
LIMITER_MODES: tuple[LimiterMode, ...] = ("unthrottled", "production")


def make_limiter(mode: LimiterMode, max_retries: int) -> AIORateLimiter:
    if mode == "production":
        return AIORateLimiter(max_retries=max_retries)
    return AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=max_retries)


def describe_limiter(mode: LimiterMode, max_retries: int) -> str:
    if mode == "production":
        return (
            f"AIORateLimiter(max_retries={max_retries}) with PTB's default flood limits "
            "(30 requests/s overall, 20/min per group), as carebot builds it"
        )
    return (
        f"AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries={max_retries}): "
        "the limiter wraps every request but never throttles"
    )


def bench_config(directory: Path) -> Config:
    """The demo shop's config, polling, with SQLite in ``directory``."""
    return demo_config(directory)


#: The ``max_retries`` carebot's config gives its AIORateLimiter (the echo bot gets the same).
MAX_RETRIES = TelegramConfig().max_retries


@dataclass
class RunningBot:
    """A started bot; ``stats`` gets bot-side facts once the bot has stopped."""

    kind: BotKind
    limiter: str
    stats: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def running_carebot(sandbox: BotApiSandbox, mode: LimiterMode) -> AsyncIterator[RunningBot]:
    with tempfile.TemporaryDirectory(prefix="carebot-bench-") as tmp:
        config = bench_config(Path(tmp))
        clock = SystemClock()
        care = build_application(
            config, clock=clock, bot_api_url=sandbox.base_url, token=sandbox.bot_token
        )
        try:
            load_demo_shop(care.repos, config, clock)
            max_retries = config.telegram.max_retries
            if mode != "production":
                # Benchmark-only override, before the bot is initialised: the same limiter
                # class and retries as build_application's, minus the flood limits.
                care.application.bot._rate_limiter = make_limiter(mode, max_retries)
            bot = RunningBot("carebot", describe_limiter(mode, max_retries))
            async with care.running():
                yield bot
        finally:
            care.db.close()  # running() closes it too, but not when startup failed
        # Every update has been handled now (Application.stop waits for that).
        with contextlib.closing(sqlite3.connect(config.database.path)) as db:
            rows = db.execute("SELECT direction, count(*) FROM messages GROUP BY direction")
            bot.stats.update({f"stored_{direction}": count for direction, count in rows})


async def echo(update: Update, context: Any) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


@asynccontextmanager
async def running_echo(sandbox: BotApiSandbox, mode: LimiterMode) -> AsyncIterator[RunningBot]:
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(sandbox.bot_token)
        .base_url(sandbox.base_url)
        .base_file_url(sandbox.base_url.replace("/bot", "/file/bot"))
        .rate_limiter(make_limiter(mode, MAX_RETRIES))
    )
    app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        await app.start()
        try:
            assert app.updater is not None
            await app.updater.start_polling(
                poll_interval=0.0,
                timeout=POLL_TIMEOUT_SECONDS,
                allowed_updates=Update.ALL_TYPES,
            )
            yield RunningBot("echo", describe_limiter(mode, MAX_RETRIES))
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.stop()


def running_bot(
    kind: BotKind, sandbox: BotApiSandbox, mode: LimiterMode
) -> AbstractAsyncContextManager[RunningBot]:
    if kind == "carebot":
        return running_carebot(sandbox, mode)
    return running_echo(sandbox, mode)
