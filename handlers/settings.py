"""Settings: language, timezone, reminder opt-out; /stop."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CommandHandler

from bot.config import SUPPORTED_LANGUAGES
from bot.services import COMMON_TIMEZONES
from bot.texts import T
from handlers.buttons import CustomerButton
from handlers.common import (
    PRIVATE_MESSAGES,
    clear_buttons,
    customer_of,
    deps,
    edit,
    inline_keyboard,
    label,
    lang_of,
    main_menu,
    reply,
    state_of,
)
from handlers.context import CareContext

SETTING = re.compile(r"^set:(lang|tz|rem|ord|tzother)$")
LANGUAGE = re.compile(r"^lang:([a-z]{2})$")
TIMEZONE = re.compile(r"^tz:(\d{1,2})$")


def _settings_view(context: CareContext) -> tuple[InlineKeyboardMarkup, dict[str, Any]]:
    d, customer = deps(context), customer_of(context)
    reminders_on = not customer.reminders_opt_out
    updates_on = not customer.order_updates_opt_out
    keyboard = inline_keyboard(
        [
            [
                (label(context, T.BTN_LANGUAGE), "set:lang"),
                (label(context, T.BTN_TIMEZONE), "set:tz"),
            ],
            [(label(context, T.BTN_REMINDERS_TOGGLE, reminders_on=reminders_on), "set:rem")],
            [(label(context, T.BTN_ORDER_UPDATES_TOGGLE, updates_on=updates_on), "set:ord")],
        ]
    )
    values = {
        "language_name": label(context, T.LANGUAGE_NAME),
        "timezone": customer.timezone,
        "shop_timezone": d.config.shop.timezone,
        "reminders_on": reminders_on,
        "updates_on": updates_on,
    }
    return keyboard, values


async def show_settings(update: Update, context: CareContext) -> None:
    """/settings and the menu button."""
    keyboard, values = _settings_view(context)
    await reply(update, context, T.SETTINGS, markup=keyboard, **values)


async def setting_chosen(update: Update, context: CareContext) -> None:
    """A button on the settings message."""
    query = update.callback_query
    assert query is not None
    d, customer = deps(context), customer_of(context)
    match = SETTING.match(query.data or "")
    await query.answer()
    choice = match.group(1) if match else None
    if choice == "lang":
        options = [
            (d.texts.render(T.LANGUAGE_NAME, lang), f"lang:{lang}") for lang in SUPPORTED_LANGUAGES
        ]
        await edit(query, context, T.LANGUAGE_PROMPT, markup=inline_keyboard([options]))
    elif choice == "tz":
        rows = [[(zone, f"tz:{i}")] for i, zone in enumerate(COMMON_TIMEZONES)]
        rows.append([(label(context, T.BTN_TIMEZONE_OTHER), "set:tzother")])
        current = customer.timezone or d.config.shop.timezone
        await edit(query, context, T.TIMEZONE_PROMPT, markup=inline_keyboard(rows), current=current)
    elif choice == "tzother":
        state_of(context).awaiting = "timezone"
        await clear_buttons(query)
    elif choice in ("rem", "ord"):
        if choice == "rem":
            d.services.customers.set_reminders(customer, enabled=customer.reminders_opt_out)
        else:
            d.services.customers.set_order_updates(customer, enabled=customer.order_updates_opt_out)
        _refresh_customer(context)
        keyboard, values = _settings_view(context)
        await edit(query, context, T.SETTINGS, markup=keyboard, **values)


async def language_chosen(update: Update, context: CareContext) -> None:
    """Switch language; the menu keyboard is re-sent in the new language."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    match = LANGUAGE.match(query.data or "")
    d = deps(context)
    if not match or not d.services.customers.set_language(customer_of(context), match.group(1)):
        return
    _refresh_customer(context)
    await clear_buttons(query)
    await reply(
        update,
        context,
        T.LANGUAGE_CHANGED,
        markup=main_menu(d.texts, lang_of(context)),
        language_name=label(context, T.LANGUAGE_NAME),
    )


async def timezone_chosen(update: Update, context: CareContext) -> None:
    """One of the common timezones was tapped."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    match = TIMEZONE.match(query.data or "")
    if match and int(match.group(1)) < len(COMMON_TIMEZONES):
        await clear_buttons(query)
        await _apply_timezone(update, context, COMMON_TIMEZONES[int(match.group(1))])


async def timezone_typed(update: Update, context: CareContext) -> None:
    """Free text after "Other: type it"; a wrong name asks again (the menu leaves)."""
    text = update.effective_message.text if update.effective_message else ""
    await _apply_timezone(update, context, text or "")


async def _apply_timezone(update: Update, context: CareContext, name: str) -> None:
    d = deps(context)
    zone = d.services.customers.set_timezone(customer_of(context), name)
    if zone is None:
        await reply(update, context, T.TIMEZONE_INVALID, value=name[:64])
        return
    state_of(context).awaiting = None
    _refresh_customer(context)
    local_time = d.clock.now().astimezone(ZoneInfo(zone)).strftime("%H:%M")
    await reply(update, context, T.TIMEZONE_CHANGED, timezone=zone, local_time=local_time)


async def stop_reminders(update: Update, context: CareContext) -> None:
    """/stop: no more reminders, offers or surveys (service messages still arrive)."""
    deps(context).services.customers.stop_unasked_messages(customer_of(context))
    _refresh_customer(context)
    await reply(update, context, T.REMINDERS_OFF)


def _refresh_customer(context: CareContext) -> None:
    state = state_of(context)
    assert state.customer is not None
    state.customer = deps(context).services.customers.reload(state.customer)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("settings", show_settings, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("stop", stop_reminders, filters=PRIVATE_MESSAGES))
    app.add_handler(CustomerButton(setting_chosen, pattern=r"^set:"))
    app.add_handler(CustomerButton(language_chosen, pattern=r"^lang:"))
    app.add_handler(CustomerButton(timezone_chosen, pattern=r"^tz:"))
