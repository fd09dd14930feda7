"""Buttons on messages in a customer's private chat."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import CallbackQueryHandler

from handlers.context import CareContext


class CustomerButton(CallbackQueryHandler[CareContext, None]):
    """A ``CallbackQueryHandler`` for presses in private chats only, where the recorder has
    resolved the customer. The same data forged in a group (the staff chat) falls through
    to the staff buttons or the fallback, which answers it."""

    def check_update(self, update: object) -> bool | object | None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or chat.type != ChatType.PRIVATE:
            return None
        return super().check_update(update)
