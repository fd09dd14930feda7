"""Runs before every other handler: resolve the customer and store what they sent."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

from bot.texts import T
from handlers.common import addressed_to_us, deps, identity, leave_half_finished_steps, send
from handlers.context import CareContext

RECORD_GROUP = -1
logger = logging.getLogger("carebot.record")


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
    """Store the update first (so nothing is lost), then let the feature handlers answer.

    Private chats and the staff chat are stored whole; in other groups only commands to us.

    If it cannot be stored, the customer is asked to send it again and nothing else runs:
    answering a message we did not keep would hide the loss.
    """
    state = context.user_data
    if state is not None:
        state.customer = None  # never carry a customer over from an earlier update
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or user.is_bot:
        await _answer_orphan_callback(update)
        raise ApplicationHandlerStop  # inline-mode callbacks, channel posts: not ours to answer
    private = chat.type == ChatType.PRIVATE
    d = deps(context)
    staff_chat = chat.id == d.config.staff.chat_id != 0
    if not private and not staff_chat and not addressed_to_us(update.message, context.bot.username):
        await _answer_orphan_callback(update)  # a forged button press still gets its answer
        raise ApplicationHandlerStop  # group chatter, or commands meant for another bot
    try:
        with d.log.transaction():  # the customer and their message: one commit per update
            customer = d.services.customers.seen(identity(update), chat.id) if private else None
            kind, text, details, message_id = _payload(update)
            stored = d.log.record_incoming(
                update_id=update.update_id,
                chat_id=chat.id,
                customer_id=customer.id if customer else None,
                kind=kind,
                telegram_message_id=message_id,
                text=text,
                payload=details,
                now=d.clock.now(),
            )
    except Exception:
        logger.exception("update %s could not be stored", update.update_id)
        await _apologise_not_stored(update, context, chat.id)
        raise ApplicationHandlerStop from None
    if not stored:
        raise ApplicationHandlerStop  # Telegram re-delivered an update we already answered
    if state is not None:
        state.customer = customer
        if kind == "command":
            leave_half_finished_steps(context)
    if customer is not None and customer.banned:
        await _answer_orphan_callback(update)
        raise ApplicationHandlerStop  # banned (and told so when it happened): kept, not answered


async def _answer_orphan_callback(update: Update) -> None:
    if update.callback_query:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()


async def _apologise_not_stored(update: Update, context: CareContext, chat_id: int) -> None:
    with contextlib.suppress(Exception):  # storage or Telegram down: the log line is what's left
        if update.callback_query:
            await update.callback_query.answer()
        await send(context, chat_id, T.ERROR_NOT_STORED, log=False)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(TypeHandler(Update, record_incoming), group=RECORD_GROUP)
