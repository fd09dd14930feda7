"""/start (with deep-link binding), /help."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.services import LinkOutcome
from bot.texts import T
from handlers.common import (
    PRIVATE_MESSAGES,
    chat_id_of,
    customer_of,
    deps,
    identity,
    lang_of,
    main_menu,
    reply,
    state_of,
)
from handlers.context import CareContext

_LINK_MESSAGES = {
    LinkOutcome.LINKED: T.LINK_SUCCESS,
    LinkOutcome.ALREADY_LINKED: T.LINK_SUCCESS,
    LinkOutcome.INVALID: T.LINK_INVALID,
    LinkOutcome.EXPIRED: T.LINK_EXPIRED,
    LinkOutcome.USED: T.LINK_USED,
    LinkOutcome.OTHER_ACCOUNT: T.LINK_OTHER_ACCOUNT,
    LinkOutcome.TELEGRAM_IN_USE: T.LINK_TELEGRAM_IN_USE,
}


async def start(update: Update, context: CareContext) -> None:
    """Greet the customer by name in their language; a deep-link token binds their account."""
    d, customer, shop = deps(context), customer_of(context), deps(context).config.shop
    if context.args:
        result = d.services.links.redeem(context.args[0], identity(update), chat_id_of(update))
        if result.customer:
            customer = state_of(context).customer = result.customer
        await reply(
            update,
            context,
            _LINK_MESSAGES[result.outcome],
            name=customer.first_name,
            shop=shop.name,
            contact=shop.contact,
        )
    await reply(
        update,
        context,
        T.WELCOME,
        markup=main_menu(d.texts, lang_of(context)),
        name=customer.first_name,
        shop=shop.name,
        linked=customer.is_linked,
    )


async def help_command(update: Update, context: CareContext) -> None:
    """List what the bot can do."""
    d = deps(context)
    await reply(
        update,
        context,
        T.HELP,
        markup=main_menu(d.texts, lang_of(context)),
        shop=d.config.shop.name,
    )


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("start", start, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("help", help_command, filters=PRIVATE_MESSAGES))
