"""What is left: media we cannot read, unknown commands, and chats that are not private."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from bot.texts import T
from handlers.common import PRIVATE_MESSAGES, deps, reply
from handlers.context import CareContext


async def unsupported_media(update: Update, context: CareContext) -> None:
    """Stickers, voice, locations...: stored by the recorder, answered with a pointer to text."""
    await reply(update, context, T.UNSUPPORTED_MEDIA)


async def unknown_command(update: Update, context: CareContext) -> None:
    """A /command the bot does not have."""
    text = update.effective_message.text if update.effective_message else ""
    command = (text or "/").split()[0].split("@")[0][:32]
    await reply(update, context, T.UNKNOWN_COMMAND, command=command)


async def group_command(update: Update, context: CareContext) -> None:
    """A command in a group: customers are served privately (the staff chat is not ours here)."""
    chat = update.effective_chat
    if chat is None or chat.id == deps(context).config.staff.chat_id:
        return
    await reply(update, context, T.GROUP_PRIVATE_ONLY, bot_username=context.bot.username)


async def stale_button(update: Update, context: CareContext) -> None:
    """A button no handler knows (old or forged): answer it so the spinner stops."""
    if update.callback_query:
        await update.callback_query.answer()


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(MessageHandler(PRIVATE_MESSAGES & filters.COMMAND, unknown_command))
    media = PRIVATE_MESSAGES & ~filters.TEXT & ~filters.StatusUpdate.ALL
    app.add_handler(MessageHandler(media, unsupported_media))
    app.add_handler(CallbackQueryHandler(stale_button))
    groups = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & filters.COMMAND
    app.add_handler(MessageHandler(groups, group_command))
