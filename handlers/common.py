"""The one path for sending: render a template in the customer's language, send, log it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import JobQueue, filters

from bot.clock import Clock
from bot.models import Customer, TelegramIdentity
from bot.telegram_html import parse_html, utf16_length
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


def local_zone(context: CareContext) -> ZoneInfo:
    """The customer's timezone if they chose one, else the shop's."""
    state = context.user_data
    chosen = state.customer.timezone if state and state.customer else None
    return ZoneInfo(chosen or deps(context).config.shop.timezone)


def label(context: CareContext, key: T, **values: Any) -> str:
    return deps(context).texts.render(key, lang_of(context), **values)


def fit(html_text: str) -> tuple[str, ParseMode | None]:
    """The text and parse mode to send within Telegram's limit.

    Telegram counts the text after HTML parsing, in UTF-16 code units. Within the limit the
    HTML goes as it is; beyond it the message is sent as plain text, cut with an ellipsis,
    so a cut never lands inside a tag or an entity.
    """
    if utf16_length(html_text) <= TELEGRAM_TEXT_LIMIT:
        # Parsing only removes tags and shortens entities, so the visible text is no longer
        # than this: it fits, and the parse (for every message sent) can be skipped.
        return html_text, ParseMode.HTML
    visible = parse_html(html_text).text
    if utf16_length(visible) <= TELEGRAM_TEXT_LIMIT:
        return html_text, ParseMode.HTML
    cut = visible
    while utf16_length(cut) > TELEGRAM_TEXT_LIMIT - 1:
        cut = cut[: len(cut) - max(1, (utf16_length(cut) - TELEGRAM_TEXT_LIMIT + 1) // 2)]
    return cut + "…", None


def addressed_to_us(message: Message | None, bot_username: str | None) -> bool:
    """A group message is ours only if it is a command without @name, or with ours."""
    if message is None or not message.text or not message.text.startswith("/"):
        return False
    command = message.text.split()[0]
    target = command.partition("@")[2]
    return not target or target.lower() == (bot_username or "").lower()


async def send(
    context: CareContext,
    chat_id: int,
    key: T,
    *,
    markup: Markup = None,
    log: bool = True,
    **values: Any,
) -> Message:
    """Render ``key`` in the customer's language, send it, and log it (unless storage is down)."""
    customer = context.user_data.customer if context.user_data else None
    return await send_text(
        context.bot,
        deps(context),
        Outgoing(chat_id, lang_of(context), customer.id if customer else None, log=log),
        key,
        markup=markup,
        **values,
    )


@dataclass(frozen=True)
class Outgoing:
    """Where a message goes: chat (and forum topic or message to reply to), language, log."""

    chat_id: int
    lang: str
    customer_id: int | None = None
    thread_id: int | None = None
    reply_to: int | None = None
    log: bool = True
    # Recorded in a ledger that promises "exactly once" (survey invitations): the rate
    # limiter never sends it again after a failure that may have delivered it.
    once: bool = False


async def send_text(
    bot: Bot, d: Deps, to: Outgoing, key: T, *, markup: Markup = None, **values: Any
) -> Message:
    """The one place a rendered template is sent and logged (handlers and jobs alike)."""
    text, parse_mode = fit(d.texts.render(key, to.lang, **values))
    # rate_limit_args is ExtBot's (every bot here is one), unknown to Bot's signature
    limits: dict[str, Any] = {"rate_limit_args": {"once": True}} if to.once else {}
    message = await bot.send_message(
        to.chat_id,
        text,
        parse_mode=parse_mode,
        reply_markup=markup,
        message_thread_id=to.thread_id,
        reply_parameters=(
            ReplyParameters(to.reply_to, allow_sending_without_reply=True) if to.reply_to else None
        ),
        **limits,
    )
    if to.log:
        d.log.record_outgoing(
            chat_id=to.chat_id,
            customer_id=to.customer_id,
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
    text, parse_mode = fit(d.texts.render(key, lang_of(context), **values))
    inline_markup = markup if isinstance(markup, InlineKeyboardMarkup) else None
    await query.edit_message_text(text, parse_mode=parse_mode, reply_markup=inline_markup)
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


async def clear_buttons(query: CallbackQuery) -> None:
    """Take the buttons off a message; a second tap (already cleared) is not an error."""
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


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


@cache
def menu_labels(texts: Texts) -> dict[str, T]:
    """Every language's menu label mapped to its key, to recognise reply-keyboard presses.

    Cached: labels are fixed per process, and this runs on every menu press.
    """
    return {label: key for key in MENU_BUTTONS for label in texts.all_languages(key).values()}


def run_at(
    queue: JobQueue[Any] | None,
    clock: Clock,
    name: str,
    callback: Callable[[CareContext], Coroutine[Any, Any, None]],
    due: datetime | None,
    data: object,
) -> None:
    """(Re)schedule the one job called ``name`` for ``due`` (None: just cancel it).

    Due times come from database rows and the service clock, so the delay is computed
    against that clock and clamped to zero: a job whose time passed (while the bot was
    down) runs at once. ``misfire_grace_time=None``: APScheduler's default of 1 s would
    silently drop a job the loop got to late.
    """
    if queue is None:  # pragma: no cover - the job-queue extra is a hard dependency
        return
    for job in queue.get_jobs_by_name(name):
        job.schedule_removal()
    if due is None:
        return
    delay = max(0.0, (due - clock.now()).total_seconds())
    queue.run_once(
        callback, when=delay, data=data, name=name, job_kwargs={"misfire_grace_time": None}
    )


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


def leave_half_finished_steps(context: CareContext) -> None:
    """A command or a menu button abandons a typed-timezone step or a complaint being written."""
    state = context.user_data
    if state is None:
        return
    state.awaiting = None
    if state.customer is not None:
        deps(context).desk.drafts.discard(state.customer.id)


def state_of(context: CareContext) -> ChatState:
    assert context.user_data is not None
    return context.user_data


# New messages in private chats; edits are stored by the recorder but not answered again.
PRIVATE_MESSAGES = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
