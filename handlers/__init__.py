"""Telegram adapters, one module per feature; ``register_all`` wires them in order."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from bot.texts import Texts
from handlers import (
    errors,
    fallback,
    membership,
    menu,
    orders,
    questions,
    record,
    settings,
    start,
)


def register_all(app: Application[Any, Any, Any, Any, Any, Any], texts: Texts) -> None:
    record.register(app)  # group -1: every update is stored before anything answers it
    start.register(app)
    membership.register(app)
    orders.register(app)
    settings.register(app)
    questions.register(app)
    menu.register(app, texts)
    questions.register_free_text(app)
    fallback.register(app)
    errors.register(app)
