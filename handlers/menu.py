"""Main-menu (reply keyboard) presses, recognised by their label in any language."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot.texts import T, Texts
from handlers.common import PRIVATE_MESSAGES, deps, leave_half_finished_steps, menu_labels
from handlers.context import CareContext
from handlers.orders import my_orders
from handlers.questions import ask_prompt
from handlers.settings import show_settings
from handlers.tickets import complaint_start, person_requested

Action = Callable[[Update, CareContext], Awaitable[None]]
ACTIONS: dict[T, Action] = {
    T.BTN_ASK: ask_prompt,
    T.BTN_ORDERS: my_orders,
    T.BTN_COMPLAINT: complaint_start,
    T.BTN_PERSON: person_requested,
    T.BTN_SETTINGS: show_settings,
}


async def menu_pressed(update: Update, context: CareContext) -> None:
    """A main-menu button: leave any half-finished step and do what the button says."""
    text = update.effective_message.text if update.effective_message else ""
    key = menu_labels(deps(context).texts).get(text or "")
    if key is None:
        return
    leave_half_finished_steps(context)
    await ACTIONS[key](update, context)


def register(app: Application[Any, Any, Any, Any, Any, Any], texts: Texts) -> None:
    labels = list(menu_labels(texts))
    app.add_handler(MessageHandler(PRIVATE_MESSAGES & filters.Text(labels), menu_pressed))
