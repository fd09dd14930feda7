"""What every ``carebot`` subcommand shares: config loading, the clock, failing politely."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from bot.clock import Clock, SystemClock
from bot.config import Config, ConfigError, load_config, resolve_database_path
from storage.database import StorageError, database_problem, open_database
from storage.repositories import Repositories

DEFAULT_CONFIG = "carebot.toml"
EXAMPLE_CONFIG = "config.example.toml"
DEMO_DATABASE = "var/demo.db"


def fail(message: str) -> NoReturn:
    click.echo(f"carebot: error: {message}", err=True)
    sys.exit(2)


def config_path(given: str | None, *, allow_example: bool) -> Path:
    """--config, else $CAREBOT_CONFIG, else ./carebot.toml (else the example, for the demo)."""
    if given:
        return Path(given)
    if os.environ.get("CAREBOT_CONFIG"):
        return Path(os.environ["CAREBOT_CONFIG"])
    if Path(DEFAULT_CONFIG).exists() or not allow_example:
        return Path(DEFAULT_CONFIG)
    return Path(EXAMPLE_CONFIG)


def load(ctx: click.Context, *, allow_example: bool = False) -> Config:
    try:
        return load_config(config_path(ctx.obj["config"], allow_example=allow_example))
    except ConfigError as exc:
        fail(str(exc))


def clock(ctx: click.Context) -> Clock:
    """The system clock; tests pass their own with ``obj={"clock": ...}``."""
    given: Clock | None = ctx.obj.get("clock")
    return given or SystemClock()


def repositories(config: Config) -> Repositories:
    path = resolve_database_path(config)
    context = click.get_current_context(silent=True)
    if context is not None and isinstance(context.obj, dict):
        context.obj["database"] = path  # for CarebotGroup's message, should the work fail
    try:
        return Repositories.over(open_database(path))
    except StorageError as exc:
        fail(str(exc))


class CarebotGroup(click.Group):
    """A database error in any subcommand ends in one line naming the file, never a
    traceback (commands with a better account of what was kept catch their own first)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except sqlite3.Error as exc:
            database = (ctx.obj or {}).get("database")
            fail(database_problem(database, exc) if database else f"database error: {exc}")
