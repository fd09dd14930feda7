"""A real ``carebot`` process against the sandbox in this test's event loop, killed with
SIGKILL at a chosen moment and started again: what a crash does to a shop."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from carebot.sandbox import BotApiSandbox
from tests.e2e.test_campaigns import wait_for
from tests.e2e.test_tickets import MARIA, STAFF_CHAT

# Start-up (imports, migrations check, getMe, setMyCommands) on a busy 2-core machine.
READY_WITHIN = 30.0


@dataclass
class BotProcess:
    """``carebot run`` as a shop runs it: its own interpreter, its own database connection."""

    config: Path
    log: Path
    process: asyncio.subprocess.Process | None = None

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "carebot", "--config", str(self.config), *args]

    async def start(self) -> None:
        """Start the bot and wait until it polls for updates (its start-up pass is done)."""
        self.log.write_text("", encoding="utf-8")
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command("run"), stdout=log, stderr=log
            )
        await wait_for(self.ready, limit=READY_WITHIN)

    def ready(self) -> bool:
        if self.process is not None and self.process.returncode is not None:
            raise AssertionError(f"carebot exited early:\n{self.output()}")
        return "carebot is running" in self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or rolled back by the bot."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM: the clean stop a service manager does."""
        await self._end(signal.SIGTERM)

    async def _end(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(sig)
        await self.process.wait()


@dataclass
class CrashSite:
    """The sandbox, the shop's database and config, and the bot process between them."""

    sandbox: BotApiSandbox
    database: Path
    bot: BotProcess

    def write_config(self, extra: str = "") -> None:
        self.bot.config.write_text(
            f'[database]\npath = "{self.database}"\n'
            '[shop]\nname = "Demo Gifts"\ntimezone = "Europe/London"\n'
            f'[telegram]\ntoken = "{self.sandbox.bot_token}"\n'
            f'base_url = "{self.sandbox.base_url}"\n'
            f"[staff]\nchat_id = {STAFF_CHAT}\nmembers = [{MARIA.id}]\n{extra}",
            encoding="utf-8",
        )

    def sent_calls(self, method: str, chat_id: int, *, ok: bool = True) -> list[dict[str, object]]:
        return [
            c
            for c in self.sandbox.calls(method)
            if c["ok"] is ok and c["params"].get("chat_id") == chat_id
        ]


@pytest.fixture
async def site(tmp_path: Path, demo_database: Path) -> AsyncIterator[CrashSite]:
    database = tmp_path / "shop.db"
    shutil.copyfile(demo_database, database)
    async with BotApiSandbox() as sandbox:
        sandbox.add_group(STAFF_CHAT, "Demo Gifts support", forum=True)
        bot = BotProcess(tmp_path / "carebot.toml", tmp_path / "carebot.log")
        crash_site = CrashSite(sandbox, database, bot)
        crash_site.write_config()
        try:
            yield crash_site
        finally:
            await bot.kill()


async def until(condition: Callable[[], bool], limit: float = 20.0) -> None:
    """Poll tightly: the moment to kill at is often a few milliseconds wide."""
    await wait_for(condition, limit=limit, every=0.002)
