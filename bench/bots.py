"""The two bots under test, each run in a process of its own against the harness's sandbox.

* ``carebot``: the real application exactly as :func:`carebot.runtime.build_application`
  ships it (its own :class:`~carebot.rate_limiter.CareRateLimiter` with the default config,
  which never holds back replies to a customer), with a fresh temporary SQLite database
  loaded with the demo shop, started by :meth:`carebot.runtime.CareBot.running`.
* ``echo``: a bare python-telegram-bot Application with no rate limiter, whose only handler
  replies with the text it received.

Both poll with carebot's parameters (``poll_interval=0``, the same long-poll timeout, all
update types) and PTB's default sequential update processing (``concurrent_updates`` unset).

The harness (sandbox, injection, measurement) runs in the parent process, so the bot has its
own interpreter and event loop, as it would next to the real Telegram.  :class:`BotProcess`
starts ``python -m bench.bots KIND BASE_URL TOKEN`` (see :func:`main`) and talks to it
over stdin/stdout, one JSON object per line: the child says ``{"ready": ...}`` once polling;
the parent sends ``cpu`` (answered with the child's CPU seconds so far) and ``stop``
(answered, after a clean shutdown, with the child's final stats).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, MessageHandler, filters

from bot.clock import SystemClock
from carebot.loading import demo_config, load_demo_shop
from carebot.runtime import POLL_TIMEOUT_SECONDS, build_application

#: Where ``python -m bench.bots`` can be imported from.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

BotKind = Literal["carebot", "echo"]
BOT_KINDS: tuple[BotKind, ...] = ("carebot", "echo")

#: What the JSON reports say about the bots' settings.
SETTINGS: dict[str, Any] = {
    "carebot": "build_application() as shipped: CareRateLimiter with the default config "
    "(replies to customers are never held back; bulk sends are paced), demo shop in a "
    "fresh temporary SQLite file per run",
    "echo": "bare PTB Application, no rate limiter, one MessageHandler(filters.TEXT) "
    "replying with the received text",
    "polling": {
        "poll_interval": 0.0,
        "timeout": POLL_TIMEOUT_SECONDS,
        "allowed_updates": "Update.ALL_TYPES",
    },
    "concurrent_updates": "PTB default for both (updates handled one at a time)",
    "processes": "each bot in a child process of its own (python -m bench.bots); the sandbox "
    "and the harness share the parent process, so neither costs the bot CPU",
}


@dataclass
class BotProcess:
    """A bot running in a child process; ``stats`` holds what it reported when it stopped."""

    kind: BotKind
    process: asyncio.subprocess.Process
    stats: dict[str, Any] = field(default_factory=dict)

    async def _ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await _read_message(self.process, self.kind)

    async def cpu_seconds(self) -> float:
        """CPU time (user + system) the bot's process has used so far."""
        return float((await self._ask("cpu"))["cpu_s"])


async def _read_message(process: asyncio.subprocess.Process, kind: str) -> dict[str, Any]:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        code = await process.wait()
        raise RuntimeError(f"the {kind} bot process ended (exit status {code})")
    message: dict[str, Any] = json.loads(line)
    return message


@asynccontextmanager
async def bot_process(kind: BotKind, base_url: str, token: str) -> AsyncIterator[BotProcess]:
    """Start ``kind`` in a child process polling ``base_url``; stop it cleanly on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bots",
        kind,
        base_url,
        token,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    running = BotProcess(kind, process)
    try:
        await asyncio.wait_for(_read_message(process, kind), timeout=60)  # {"ready": ...}
        yield running
        running.stats = await asyncio.wait_for(running._ask("stop"), timeout=60)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# ---------------------------------------------------------------------- the child process


@asynccontextmanager
async def running_carebot(base_url: str, token: str) -> AsyncIterator[dict[str, Any]]:
    """carebot as shipped, on a fresh demo-shop database; yields a dict for final stats."""
    stats: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="carebot-bench-") as tmp:
        config = demo_config(Path(tmp))
        clock = SystemClock()
        care = build_application(config, clock=clock, bot_api_url=base_url, token=token)
        try:
            load_demo_shop(care.repos, config, clock)
            stats["rate_limiter"] = repr(care.application.bot.rate_limiter)
            async with care.running():
                yield stats
        finally:
            care.db.close()  # running() closes it too, but not when startup failed
        # Every update has been handled now (Application.stop waits for that).
        with contextlib.closing(sqlite3.connect(config.database.path)) as db:
            rows = db.execute("SELECT direction, count(*) FROM messages GROUP BY direction")
            stats.update({f"stored_{direction}": count for direction, count in rows})


async def echo(update: Update, context: Any) -> None:
    """Reply with the text received."""
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


@asynccontextmanager
async def running_echo(base_url: str, token: str) -> AsyncIterator[dict[str, Any]]:
    """A bare PTB Application (no rate limiter) polling like carebot does."""
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(base_url.replace("/bot", "/file/bot"))
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
            yield {"rate_limiter": repr(app.bot.rate_limiter)}
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.stop()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve(
    kind: BotKind, base_url: str, token: str, profile: cProfile.Profile | None = None
) -> None:
    """Run one bot until the parent says ``stop``; answer ``cpu`` meanwhile.

    ``profile`` (if given) records from ``ready`` to ``stop``: the bot at work, not its
    start (demo shop import) or shutdown.
    """
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    running = running_carebot if kind == "carebot" else running_echo
    async with running(base_url, token) as stats:
        _say({"ready": kind})
        if profile is not None:
            profile.enable()
        while (command := (await commands.readline()).strip()) not in (b"stop", b""):
            if command == b"cpu":
                _say({"cpu_s": time.process_time()})
        if profile is not None:
            profile.disable()
    stats["cpu_s"] = time.process_time()
    _say(stats)


def main(argv: list[str]) -> None:
    """``KIND BASE_URL TOKEN``; with ``BENCH_PROFILE_DIR`` set, a cProfile of the bot at work
    is written there (``KIND-PID.prof``) when it stops."""
    bot_kind, api_url, bot_token = argv
    if bot_kind not in BOT_KINDS:
        raise SystemExit(f"unknown bot {bot_kind!r}; choose from {', '.join(BOT_KINDS)}")
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")
    profile = cProfile.Profile() if profile_dir else None
    asyncio.run(serve(bot_kind, api_url, bot_token, profile))
    if profile_dir and profile is not None:
        profile.dump_stats(Path(profile_dir) / f"{bot_kind}-{os.getpid()}.prof")


if __name__ == "__main__":
    main(sys.argv[1:])
