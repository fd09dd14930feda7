"""Shared fixtures: real SQLite files in tmp_path, a controllable clock, a test config."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.config import Config, config_from_dict
from storage.database import open_database
from storage.repositories import Repositories

# A Monday at 10:00 in London: inside the example support hours.
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def make_config(tmp_path: Path, **telegram: object) -> Config:
    return config_from_dict(
        {
            "database": {"path": str(tmp_path / "carebot.db")},
            "shop": {
                "name": "Demo Gifts",
                "timezone": "Europe/London",
                "contact": "help@demo.example",
                "support_hours": {"mon": "09:00-18:00", "sat": "10:00-14:00"},
            },
            "telegram": telegram,
        },
        source=str(tmp_path / "carebot.toml"),
    )


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
