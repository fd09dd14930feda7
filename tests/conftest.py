"""Shared fixtures: real SQLite files in tmp_path, a controllable clock, a test config."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import Clock, FixedClock
from bot.config import Config
from carebot.loading import demo_config, load_demo_shop
from carebot.runtime import CareBot, build_application
from carebot.sandbox import BotApiSandbox
from storage.database import open_database
from storage.repositories import Repositories

# A Monday at 10:00 in London: inside the example support hours.
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


make_config = demo_config


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def repos(tmp_path: Path) -> Iterator[Repositories]:
    repositories = Repositories.over(open_database(tmp_path / "carebot.db"))
    yield repositories
    repositories.db.close()


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shop (real excerpt imported, FAQ, bindings) built once; copy it per test."""
    directory = tmp_path_factory.mktemp("demo")
    repos = Repositories.over(open_database(directory / "carebot.db"))
    load_demo_shop(repos, demo_config(directory), FixedClock(START))
    repos.db.close()
    return directory / "carebot.db"


def bot_on_sandbox(config: Config, clock: Clock, sandbox: BotApiSandbox) -> CareBot:
    """The real application, talking to the sandbox, which waits for it in ``wait_idle``."""
    care = build_application(
        config, clock=clock, bot_api_url=sandbox.base_url, token=sandbox.bot_token
    )
    sandbox.bot_busy = care.handling_updates
    return care
