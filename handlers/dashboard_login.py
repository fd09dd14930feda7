"""/login: a one-time link to the web dashboard, sent to an admin's (or linked account's)
private chat. The link is not written to the message log: it is a credential."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler, filters

from bot.texts import T
from handlers.common import deps, reply, send
from handlers.context import CareContext
from storage.dashboard import issue_login_link


async def login_command(update: Update, context: CareContext) -> None:
    """/login: a one-time dashboard link (10 minutes) for admins and linked staff accounts."""
    d, user = deps(context), update.effective_user
    account = (
        d.dashboard.accounts.for_telegram_login(
            user.id,
            user.full_name,
            is_config_admin=user.id in d.config.staff.admins,
            now=d.clock.now(),
        )
        if user
        else None
    )
    if account is None:
        await reply(update, context, T.ADMIN_ONLY)
        return
    if not (d.config.web_server_needed and d.config.web.dashboard):
        await reply(update, context, T.DASHBOARD_OFF)
        return
    url = issue_login_link(d.dashboard.links, account.id, d.config.web.base_url, d.clock.now())
    d.dashboard.audit.add(account.id, "login link", "sent by /login", d.clock.now())
    assert update.effective_chat is not None
    await send(
        context,
        update.effective_chat.id,
        T.DASHBOARD_LINK,
        log=False,
        url=url,
        shop=d.config.shop.name,
    )


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("login", login_command, filters=filters.ChatType.PRIVATE))
