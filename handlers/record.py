"""Runs before every other handler: resolve the customer and store what they sent."""

from __future__ import annotations

from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

from handlers.common import deps, identity
from handlers.context import CareContext, ChatState

RECORD_GROUP = -1


def message_kind(message: Message) -> str:
    for kind in ("sticker", "photo", "document", "voice", "video", "location", "contact"):
        if getattr(message, kind):
            return kind
    if message.text:
        return "command" if message.text.startswith("/") else "text"
    return "other"


def _payload(update: Update) -> tuple[str, str | None, dict[str, Any] | None, int | None]:
    """(kind, text, extra details, telegram message id) of an incoming update."""
    if update.callback_query:
        query = update.callback_query
        origin = query.message.message_id if query.message else None
        return "callback", None, {"data": query.data}, origin
    if update.my_chat_member:
        return "member_status", None, {"status": update.my_chat_member.new_chat_member.status}, None
    message = update.effective_message
    if message is None:
        return "other", None, None, None
    kind = message_kind(message)
    if update.edited_message:
        kind = "edited_" + kind
    details: dict[str, Any] = {}
    if message.sticker:
        details["emoji"] = message.sticker.emoji
    if message.photo:
        details["file_id"] = message.photo[-1].file_id
    if message.location:
        details["location"] = [message.location.latitude, message.location.longitude]
    return kind, message.text or message.caption, details or None, message.message_id


async def record_incoming(update: Update, context: CareContext) -> None:
    """Store the update first (so nothing is lost), then let the feature handlers answer."""
    chat, user = update.effective_chat, update.effective_user
    if context.user_data is not None:
        context.user_data.customer = None  # never carry a customer over from an earlier update
    if chat is None or user is None or chat.type != ChatType.PRIVATE or user.is_bot:
        return  # group chats and channels are handled (or ignored) by the fallback handlers
    d = deps(context)
    customer = d.services.customers.seen(identity(update), chat.id)
    state = context.user_data if context.user_data is not None else ChatState()
    state.customer = customer
    kind, text, details, message_id = _payload(update)
    stored = d.log.record_incoming(
        update_id=update.update_id,
        chat_id=chat.id,
        customer_id=customer.id,
        kind=kind,
        telegram_message_id=message_id,
        text=text,
        payload=details,
        now=d.clock.now(),
    )
    if not stored:
        raise ApplicationHandlerStop  # Telegram re-delivered an update we already answered


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(TypeHandler(Update, record_incoming), group=RECORD_GROUP)
