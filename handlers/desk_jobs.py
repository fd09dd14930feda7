"""Help-desk jobs: SLA due checks (one job per ticket), closing old resolved tickets, and
the start-up pass that rebuilds jobs and resumes anything a stop interrupted.

Due times live on the ticket rows, so the jobs can always be rebuilt from the database;
a check whose time passed while the bot was down runs at start (``misfire_grace_time``
None, delay clamped to zero).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from telegram.error import TelegramError
from telegram.ext import Application

from handlers.context import CareContext, Deps
from handlers.desk import Desk, desk_of

logger = logging.getLogger("carebot.desk")
CLOSE_STALE_EVERY = timedelta(hours=1)


async def close_stale_tickets(context: CareContext) -> None:
    """Hourly: resolved tickets past the reopen window become closed."""
    d = context.bot_data.deps
    desk = desk_of(context)
    for ticket_id in d.services.tickets.close_stale(d.clock.now()):
        ticket = d.services.tickets.get(ticket_id)
        if ticket is not None:
            await desk.refresh(ticket)


async def start_desk(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """At start: learn the staff chat's shape, post tickets that never made it there,
    resume relays a stop interrupted, and rebuild every SLA job from the database."""
    d: Deps = app.bot_data.deps
    if d.staff_chat.chat_id:
        try:
            chat = await app.bot.get_chat(d.staff_chat.chat_id)
            d.staff_chat.is_forum = bool(chat.is_forum)
        except TelegramError as exc:
            # Without knowing about topics, tickets are threaded by replies (which works in
            # a forum's General topic too); posting is retried with each customer message.
            logger.error(
                "staff chat %s is not reachable (%s): is the bot a member? Tickets are kept "
                "and posted once it is",
                d.staff_chat.chat_id,
                exc,
            )
    desk = Desk(app.bot, d, app.job_queue)
    for ticket in d.desk.tickets.unposted():
        await desk.post(ticket)
    for record in d.desk.relays.undelivered():
        resumed = d.services.tickets.get(record.ticket_id)
        if resumed is not None and resumed.posted:
            # Stored but not marked delivered: the stop may have come after Telegram took
            # it. Sent again (never lost), so it may arrive twice.
            logger.warning(
                "ticket #%s: resuming a relay (%s) a stop interrupted; it may arrive twice",
                record.ticket_id,
                record.direction,
            )
            await desk.relay(resumed, record)
    scheduled = 0
    for ticket in d.desk.tickets.with_pending_checks():
        ticket = d.services.tickets.ensure_dues(ticket, d.clock.now())
        desk.track(ticket)
        scheduled += 1
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            close_stale_tickets,
            interval=CLOSE_STALE_EVERY,
            first=timedelta(minutes=2),
            name="tickets:close-stale",
        )
    logger.info("help desk ready: %d SLA checks scheduled", scheduled)
