"""The one path for sending: render a template in the customer's language, send, log it."""

from __future__ import annotations

from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import filters

from bot.models import Customer, TelegramIdentity
from bot.texts import MENU_BUTTONS, TELEGRAM_TEXT_LIMIT, T, Texts
from handlers.context import CareContext, ChatState, Deps

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | None


def deps(context: CareContext) -> Deps:
    return context.bot_data.deps


def customer_of(context: CareContext) -> Customer:
    """The customer the recorder resolved for this update (private chats only)."""
    customer = context.user_data.customer if context.user_data else None
    if customer is None:
        raise RuntimeError("no customer resolved for this update")
    return customer


def lang_of(context: CareContext) -> str:
    state = context.user_data
    return deps(context).services.customers.language_of(state.customer if state else None)


def label(context: CareContext, key: T, **values: Any) -> str:
    return deps(context).texts.render(key, lang_of(context), **values)


def fit(text: str) -> str:
    """Never exceed Telegram's message limit (a long FAQ answer or order is cut, not lost)."""
    return text if len(text) <= TELEGRAM_TEXT_LIMIT else text[: TELEGRAM_TEXT_LIMIT - 1] + "…"


async def send(
    context: CareContext, chat_id: int, key: T, *, markup: Markup = None, **values: Any
) -> Message:
    d = deps(context)
    text = fit(d.texts.render(key, lang_of(context), **values))
    message = await context.bot.send_message(
        chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup
    )
    customer = context.user_data.customer if context.user_data else None
    d.log.record_outgoing(
        chat_id=chat_id,
        customer_id=customer.id if customer else None,
        kind=key.name.lower(),
        telegram_message_id=message.message_id,
        text=text,
        now=d.clock.now(),
    )
    return message


async def reply(
    update: Update, context: CareContext, key: T, *, markup: Markup = None, **values: Any
) -> Message:
    assert update.effective_chat is not None
    return await send(context, update.effective_chat.id, key, markup=markup, **values)


async def edit(
    query: CallbackQuery, context: CareContext, key: T, *, markup: Markup = None, **values: Any
) -> None:
    """Replace the text of the message a button was pressed on (keeps the chat tidy)."""
    d = deps(context)
    text = fit(d.texts.render(key, lang_of(context), **values))
    inline_markup = markup if isinstance(markup, InlineKeyboardMarkup) else None
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=inline_markup)
    customer = context.user_data.customer if context.user_data else None
    message = query.message
    d.log.record_outgoing(
        chat_id=message.chat.id if message else 0,
        customer_id=customer.id if customer else None,
        kind="edit_" + key.name.lower(),
        telegram_message_id=message.message_id if message else None,
        text=text,
        now=d.clock.now(),
    )


def inline_keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Rows of (label, callback_data) pairs."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def main_menu(texts: Texts, lang: str) -> ReplyKeyboardMarkup:
    labels = [texts.render(key, lang) for key in MENU_BUTTONS]
    return ReplyKeyboardMarkup(
        [labels[0:2], labels[2:4], labels[4:]], resize_keyboard=True, is_persistent=True
    )


def menu_labels(texts: Texts) -> dict[str, T]:
    """Every language's menu label mapped to its key, to recognise reply-keyboard presses."""
    return {label: key for key in MENU_BUTTONS for label in texts.all_languages(key).values()}


def offer_person(context: CareContext, reason: str) -> InlineKeyboardMarkup:
    return inline_keyboard([[(label(context, T.BTN_PERSON), f"person:{reason}")]])


def identity(update: Update) -> TelegramIdentity:
    user = update.effective_user
    assert user is not None
    return TelegramIdentity(
        user_id=user.id,
        first_name=user.first_name,
        last_name=user.last_name,
        username=user.username,
        language_code=user.language_code,
    )


def chat_id_of(update: Update) -> int:
    assert update.effective_chat is not None
    return update.effective_chat.id


def state_of(context: CareContext) -> ChatState:
    assert context.user_data is not None
    return context.user_data


# New messages in private chats; edits are stored by the recorder but not answered again.
PRIVATE_MESSAGES = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
