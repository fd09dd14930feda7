"""Telegram adapters, one module per feature; ``register_all`` wires them in order."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from bot.texts import Texts
from handlers import (
    campaigns,
    dashboard_login,
    errors,
    fallback,
    membership,
    menu,
    orders,
    questions,
    record,
    settings,
    staff,
    start,
    surveys,
    tickets,
)


def register_all(app: Application[Any, Any, Any, Any, Any, Any], texts: Texts) -> None:
    """Order matters: within a group PTB runs the first handler that matches."""
    record.register(app)  # group -1: every update is stored before anything answers it
    start.register(app)
    membership.register(app)
    orders.register(app)
    settings.register(app)
    questions.register(app)
    tickets.register(app)
    surveys.register(app)
    campaigns.register(app)
    dashboard_login.register(app)
    staff.register(app)
    menu.register(app, texts)
    questions.register_free_text(app)
    tickets.register_media(app)
    fallback.register(app)
    errors.register(app)
