"""The staff chat: replies relayed to customers, ticket buttons and staff commands.

Only staff act: people in the staff chat (or, when ``[staff] members`` is set, only those
ids and the admins). Which ticket a message belongs to comes from our own map (the forum
topic, or the card/relayed message it replies to), never from forwarded-sender info.
"""

from __future__ import annotations

import html
import re
from typing import Any

from telegram import Message, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.canned import CannedError, check_canned
from bot.sla import Priority
from bot.texts import T
from bot.tickets import Actor, Ticket, TicketStatus
from handlers.common import PRIVATE_MESSAGES, Outgoing, deps, reply, send_text
from handlers.context import CareContext
from handlers.desk import Desk, desk_of
from handlers.record import message_kind
from handlers.ticket_actions import TicketWork, UnknownCanned, canned_replies

STAFF_COMMANDS = ("resolve", "note", "canned", "ban", "unban", "claim", "priority")
TICKET_BUTTON = re.compile(r"^tk:(\d{1,12}):(claim|resolve|up|down)$")


def staff_actor(update: Update, context: CareContext) -> Actor | None:
    """The staff member behind this update, or None if the sender may not act."""
    config, chat, user = deps(context).config, update.effective_chat, update.effective_user
    if chat is None or user is None or not config.staff.chat_id or chat.id != config.staff.chat_id:
        return None
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        # An anonymous admin of the staff chat posts as the chat itself (replies to
        # customers then go unsigned: there is no person's name).
        if message.sender_chat.id != chat.id:
            return None
        return Actor("staff", None, chat.title or "")
    if config.staff.members_listed and not config.staff.is_staff(user.id):
        return None
    return Actor("staff", user.id, user.first_name)


def ticket_here(update: Update, context: CareContext) -> Ticket | None:
    """The ticket a staff-chat message belongs to: its forum topic, or what it replies to."""
    d, message = deps(context), update.effective_message
    if message is None:
        return None
    chat_id = message.chat_id
    if message.is_topic_message and message.message_thread_id:
        return d.desk.tickets.by_topic(chat_id, message.message_thread_id)
    replied = message.reply_to_message
    if replied is None:
        return None
    record = d.desk.relays.by_message(chat_id, replied.message_id)
    if record is not None:
        return d.services.tickets.get(record.ticket_id)
    return d.desk.tickets.by_card(chat_id, replied.message_id)


def explicit_reply_to(message: Message) -> int | None:
    """The message staff replied to, not counting a forum topic's own root."""
    replied = message.reply_to_message
    if replied is None or replied.message_id == message.message_thread_id:
        return None
    return replied.message_id


async def answer_here(update: Update, context: CareContext, key: T, **values: Any) -> None:
    """A reply for staff where they wrote (same topic), in the staff language; if it is
    about a ticket, mapped to it (so replying to it stays in the ticket)."""
    message = update.effective_message
    assert message is not None
    d = deps(context)
    thread = message.message_thread_id if message.is_topic_message else None
    to = Outgoing(message.chat_id, d.config.staff_language, thread_id=thread, reply_to=message.id)
    sent = await send_text(context.bot, d, to, key, **values)
    ticket = values.get("ticket")
    if isinstance(ticket, Ticket):
        desk_of(context).remember(ticket, sent)


async def staff_message(update: Update, context: CareContext) -> None:
    """Staff wrote in a ticket's place: store it, then copy it to the customer."""
    message = update.effective_message
    ticket = ticket_here(update, context)
    if message is None or ticket is None:
        return  # team chatter outside any ticket
    staff = staff_actor(update, context)
    if staff is None:
        await answer_here(update, context, T.STAFF_NOT_STAFF)
        return
    if ticket.status == TicketStatus.CLOSED:
        await answer_here(update, context, T.STAFF_TICKET_DONE, ticket=ticket)
        return
    await desk_of(context).reply(
        ticket,
        staff,
        kind=message_kind(message),
        text=message.text_html if message.text else message.caption_html,
        source=(message.chat_id, message.message_id),
        reply_to_message_id=explicit_reply_to(message),
    )


async def staff_command(update: Update, context: CareContext) -> None:
    """/resolve, /note, /canned, /ban, /unban, /claim, /priority in a ticket's place."""
    message = update.effective_message
    assert message is not None
    assert message.text is not None
    command, _, rest = message.text.partition(" ")
    name = command[1:].split("@")[0].lower()
    staff = staff_actor(update, context)
    if staff is None:
        await answer_here(update, context, T.STAFF_NOT_STAFF)
        return
    ticket = ticket_here(update, context)
    if name == "canned" and (ticket is None or _manages_canned(rest)):
        await manage_canned(update, context, staff, rest.strip())
        return
    if ticket is None:
        await answer_here(update, context, T.STAFF_NOT_IN_TICKET)
        return
    await TicketAction(desk_of(context), context, ticket, staff).run(update, name, rest.strip())


def _manages_canned(rest: str) -> bool:
    word = rest.strip().split(" ")[0]
    return word in ("", "add", "del")


class TicketAction:
    """One staff action on one ticket from a command: the Telegram side of ``TicketWork``
    (answers in the topic), which the web dashboard calls too."""

    def __init__(self, desk: Desk, context: CareContext, ticket: Ticket, staff: Actor) -> None:
        self.desk, self.context, self.ticket, self.staff = desk, context, ticket, staff
        self.work = TicketWork(desk, staff)
        self.d = desk.d
        self.now = self.d.clock.now()

    async def run(self, update: Update, name: str, argument: str) -> None:
        if name == "note":
            await self.note(update, argument)
        elif name == "canned":
            await self.canned(update, argument)
        elif name in ("ban", "unban"):
            await self.ban(update, banned=name == "ban")
        elif name == "priority":
            await self.priority(update, argument)
        elif name in ("claim", "resolve"):
            act = self.work.claim if name == "claim" else self.work.resolve
            if await act(self.ticket) is None:
                await answer_here(update, self.context, T.STAFF_TICKET_DONE, ticket=self.ticket)

    async def priority(self, update: Update, argument: str) -> None:
        try:
            priority = Priority(argument.lower())
        except ValueError:
            await answer_here(update, self.context, T.STAFF_USAGE, usage="priority")
            return
        self.ticket = await self.work.set_priority(self.ticket, priority)

    async def note(self, update: Update, text: str) -> None:
        """An internal note: stored with the ticket, never sent to the customer."""
        message = update.effective_message
        assert message is not None
        if not text:
            await answer_here(update, self.context, T.STAFF_USAGE, usage="note")
            return
        source = (message.chat_id, message.message_id)
        self.desk.keep_note(self.ticket, self.staff, text, source, kind="note")
        await answer_here(update, self.context, T.STAFF_NOTE_SAVED, ticket=self.ticket)

    async def canned(self, update: Update, name: str) -> None:
        """Send a canned reply, filled in for this customer and ticket."""
        message = update.effective_message
        assert message is not None
        if self.ticket.status == TicketStatus.CLOSED:  # as for a reply typed here
            await answer_here(update, self.context, T.STAFF_TICKET_DONE, ticket=self.ticket)
            return
        try:
            text = self.work.canned_text(self.ticket, name)
        except UnknownCanned:
            replies = canned_replies(self.d)
            await answer_here(
                update, self.context, T.STAFF_CANNED_MISSING, name=name, names=list(replies)
            )
            return
        except CannedError as exc:
            await answer_here(update, self.context, T.STAFF_CANNED_INVALID, reason=str(exc))
            return
        await self.desk.reply(
            self.ticket,
            self.staff,
            kind="canned",
            text=html.escape(text),
            source=(message.chat_id, message.message_id),
        )

    async def ban(self, update: Update, *, banned: bool) -> None:
        """/ban: the customer is told politely, then ignored; /unban lifts it."""
        self.d.desk.customers.update_settings(self.ticket.customer_id, self.now, banned=banned)
        self.d.desk.tickets.add_event(
            self.ticket.id, self.now, "banned" if banned else "unbanned", self.staff
        )
        notice = T.BANNED_NOTICE if banned else T.UNBANNED_NOTICE
        await self.desk.tell_customer(self.ticket, notice, shop=self.d.config.shop.name)
        key = T.STAFF_BANNED if banned else T.STAFF_UNBANNED
        await answer_here(update, self.context, key, ticket=self.ticket, staff=self.staff)


async def manage_canned(update: Update, context: CareContext, staff: Actor, rest: str) -> None:
    """/canned (list), /canned add NAME TEXT, /canned del NAME."""
    d = deps(context)
    verb, _, tail = rest.partition(" ")
    name, _, body = tail.strip().partition(" ")
    name = name.lower()
    if verb == "add":
        try:
            check_canned(name, body)
        except CannedError as exc:
            await answer_here(update, context, T.STAFF_CANNED_INVALID, reason=str(exc))
            return
        d.desk.canned.save(name, body.strip(), staff.id, d.clock.now())
        await answer_here(update, context, T.STAFF_CANNED_SAVED, name=name)
    elif verb == "del":
        deleted = d.desk.canned.delete(name)
        in_config = name in d.config.tickets.canned.as_dict()
        await answer_here(
            update, context, T.STAFF_CANNED_DELETED, name=name, deleted=deleted, in_config=in_config
        )
    else:
        await answer_here(update, context, T.STAFF_CANNED_LIST, replies=canned_replies(d))


async def ticket_button(update: Update, context: CareContext) -> None:
    """Claim / Resolve / Priority buttons on a ticket's card (staff only, own card only)."""
    query = update.callback_query
    assert query is not None
    d = deps(context)
    staff = staff_actor(update, context)
    match = TICKET_BUTTON.match(query.data or "")
    if staff is None or match is None:
        await query.answer(d.texts.render(T.STAFF_NOT_STAFF, d.config.staff_language), True)
        return
    ticket = d.services.tickets.get(int(match.group(1)))
    card = query.message
    if ticket is None or card is None or ticket.card_message_id != card.message_id:
        await query.answer()  # a card we did not make, or a forged ticket id
        return
    work = TicketWork(desk_of(context), staff)
    verb = match.group(2)
    if verb in ("up", "down"):
        await work.shift_priority(ticket, 1 if verb == "up" else -1)
    elif await (work.claim(ticket) if verb == "claim" else work.resolve(ticket)) is None:
        await query.answer()
        return
    toast = d.texts.render(T.STAFF_ACTION_DONE, d.config.staff_language, action=verb)
    await query.answer(toast)


async def not_for_customers(update: Update, context: CareContext) -> None:
    """A staff command in a private chat: refused, nothing else happens."""
    await reply(update, context, T.STAFF_ONLY)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler(STAFF_COMMANDS, not_for_customers, filters=PRIVATE_MESSAGES))
    app.add_handler(CallbackQueryHandler(ticket_button, pattern=r"^tk:"))
    chat_id = app.bot_data.deps.config.staff.chat_id
    if not chat_id:
        return
    in_staff_chat = filters.Chat(chat_id) & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler(STAFF_COMMANDS, staff_command, filters=in_staff_chat))
    relayable = in_staff_chat & ~filters.COMMAND & ~filters.StatusUpdate.ALL
    app.add_handler(MessageHandler(relayable, staff_message))
