"""The customer blocked or unblocked the bot (Telegram's my_chat_member updates)."""

from __future__ import annotations

from typing import Any

from telegram import ChatMember, Update
from telegram.ext import Application, ChatMemberHandler

from handlers.common import customer_of, deps
from handlers.context import CareContext


async def membership_changed(update: Update, context: CareContext) -> None:
    """Blocked: stop messaging them (flagged); unblocked: the recorder already cleared it."""
    change = update.my_chat_member
    if change is None or change.chat.type != "private":
        return
    if change.new_chat_member.status == ChatMember.BANNED:
        deps(context).services.customers.mark_blocked(customer_of(context))


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(ChatMemberHandler(membership_changed, ChatMemberHandler.MY_CHAT_MEMBER))
