"""The one error handler: log with the update id, apologise, never show a traceback."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import Update
from telegram.constants import ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from bot.texts import T
from handlers.common import deps, send
from handlers.context import CareContext

logger = logging.getLogger("carebot.errors")


async def on_error(update: object, context: CareContext) -> None:
    """Log the failure; a customer in a private chat gets a short apology."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    state = context.user_data
    customer = state.customer if state else None
    if isinstance(error, Forbidden) and customer is not None:
        logger.warning("update %s: customer %s blocked the bot", update_id, customer.id)
        deps(context).services.customers.mark_blocked(customer)
        return
    logger.error("update %s failed", update_id, exc_info=error)
    if not isinstance(update, Update):
        return
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        return
    if update.callback_query:
        with contextlib.suppress(TelegramError):  # already answered, or too old
            await update.callback_query.answer()
    try:
        await send(context, chat.id, T.ERROR)
    except Exception:  # the apology itself failed (network, blocked): logging is all we can do
        logger.exception("update %s: could not send the apology", update_id)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_error_handler(on_error)
