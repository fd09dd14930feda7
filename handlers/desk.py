"""The help desk's Telegram side: tickets in the staff chat, and messages relayed both ways.

Every relayed message is stored (``ticket_messages``) before it is copied, and its copy's id
is stored after, so the map links both directions and a crash in between is resumed at
start. A relay Telegram refuses stays in the ticket and gets a visible note in the topic.
Used by handlers and by jobs alike, so it takes the bot and the dependencies explicitly.
"""

from __future__ import annotations

import contextlib
import html
import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from telegram import Bot, InlineKeyboardMarkup, Message, MessageId, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import JobQueue

from bot.models import Customer
from bot.telegram_html import visible_length
from bot.texts import T
from bot.tickets import Actor, Breach, RelayRecord, Ticket, TicketStatus
from handlers.common import Outgoing, fit, inline_keyboard, run_at, send_text
from handlers.context import CareContext, Deps
from storage.tickets import DASHBOARD_CHAT_ID

logger = logging.getLogger("carebot.desk")

# Telegram's descriptions when a forum topic (or the message to reply to) is gone.
_TOPIC_GONE = ("thread not found", "topic_id_invalid", "topic_deleted", "replied not found")
RECENT_ORDERS_ON_CARD = 3
MAX_CAPTION = 1024
EARLIER_TICKETS_ON_CARD = 5
# Staff messages written on the web dashboard. Replies go to the customer as text (their copy
# in the staff chat is the bot's post, not an original to copy) and are signed with the
# account's name (a dashboard account is always a person, unlike an anonymous group admin).
WEB_REPLY = "web"
WEB_CANNED = "web_canned"
WEB_NOTE = "web_note"
WEB_KINDS = (WEB_REPLY, WEB_CANNED, WEB_NOTE)
SENT_AS_TEXT = ("canned", *WEB_KINDS)


def topic_gone(error: TelegramError) -> bool:
    return isinstance(error, BadRequest) and any(
        marker in error.message.lower() for marker in _TOPIC_GONE
    )


def source_gone(error: BadRequest) -> bool:
    return "message to copy not found" in error.message.lower()


def describe_error(error: TelegramError) -> str:
    if isinstance(error, Forbidden):
        return "blocked"
    if isinstance(error, RetryAfter):
        return "rate_limited"
    return "rejected"


@dataclass(frozen=True)
class Desk:
    bot: Bot
    d: Deps
    queue: JobQueue[Any] | None = None  # for the tickets' SLA jobs

    def track(self, ticket: Ticket) -> None:
        """Keep the ticket's SLA job in step with its (changed) state."""
        schedule_sla(self.queue, self.d, ticket)

    # ------------------------------------------------------------------ staff chat

    @property
    def staff_chat_id(self) -> int:
        return self.d.staff_chat.chat_id

    @property
    def staff_lang(self) -> str:
        return self.d.config.staff_language

    def label(self, key: T, lang: str | None = None, **values: Any) -> str:
        return self.d.texts.render(key, lang or self.staff_lang, **values)

    def staff_place(self, ticket: Ticket) -> Outgoing:
        """Into the ticket's topic (forum) or as a reply to its card (plain group)."""
        return Outgoing(
            self.staff_chat_id,
            self.staff_lang,
            ticket.customer_id,
            thread_id=ticket.staff_thread_id,
            reply_to=None if ticket.staff_thread_id else ticket.card_message_id,
        )

    async def note(
        self,
        ticket: Ticket,
        key: T,
        *,
        mapped: bool = True,
        recreate: bool = True,
        **values: Any,
    ) -> Message | None:
        """A message for staff in the ticket's place; never reaches the customer. ``mapped``:
        remembered as the ticket's (off when the caller stores it in the ledger itself).
        If the ticket's topic was deleted, the ticket gets a new one and the note goes there
        (unless ``recreate`` is off: the note that announces a new topic)."""
        if not self.staff_chat_id or not ticket.posted:
            return None
        try:
            try:
                message = await self._note(ticket, key, **values)
            except TelegramError as exc:
                if not (recreate and self.topic_deleted(ticket, exc)):
                    raise
                moved = await self.post(ticket, recreated=True)
                if not moved.posted or moved.staff_thread_id == ticket.staff_thread_id:
                    raise  # no new topic either: Telegram refused
                message = await self._note(moved, key, **values)
        except TelegramError as exc:
            logger.warning("note on ticket #%s not posted: %s", ticket.id, exc)
            return None
        if mapped:
            self.remember(ticket, message)
        return message

    async def _note(self, ticket: Ticket, key: T, **values: Any) -> Message:
        place = self.staff_place(ticket)
        return await send_text(self.bot, self.d, place, key, ticket=ticket, **values)

    def topic_deleted(self, ticket: Ticket, error: TelegramError) -> bool:
        """Telegram refused a post into the ticket's topic because the topic is gone."""
        return topic_gone(error) and ticket.staff_thread_id is not None

    def remember(self, ticket: Ticket, message: Message) -> None:
        """Map a bot post in the staff chat to its ticket, so a reply to it finds the ticket
        (in a group without topics that is how staff answer)."""
        self.d.desk.relays.record(
            ticket.id,
            direction="note",
            kind="bot",
            text=None,
            source_chat_id=message.chat_id,
            source_message_id=message.message_id,
            author=Actor.system(),
            now=self.d.clock.now(),
        )

    async def post(self, ticket: Ticket, *, recreated: bool = False) -> Ticket:
        """Give the ticket its topic (or card message) in the staff chat, then copy what the
        customer wrote so far. Without a staff chat, or if Telegram refuses, the ticket stays
        unposted and is tried again at the next start or customer message."""
        if not self.staff_chat_id:
            return ticket
        thread_id = None
        try:
            if self.d.staff_chat.is_forum:
                topic = await self.bot.create_forum_topic(
                    self.staff_chat_id, self.topic_title(ticket)
                )
                thread_id = topic.message_thread_id
            card = await send_text(
                self.bot,
                self.d,
                Outgoing(self.staff_chat_id, self.staff_lang, ticket.customer_id, thread_id),
                T.STAFF_CARD,
                markup=self.card_buttons(ticket),
                **self.card_values(ticket),
            )
        except TelegramError as exc:
            logger.warning("ticket #%s not posted to the staff chat: %s", ticket.id, exc)
            if thread_id is not None:  # no card: do not leave an empty topic behind
                with contextlib.suppress(TelegramError):
                    await self.bot.delete_forum_topic(self.staff_chat_id, thread_id)
            return ticket
        ticket = self.d.desk.tickets.place(
            ticket.id,
            chat_id=self.staff_chat_id,
            thread_id=thread_id,
            card_message_id=card.message_id,
        )
        if recreated:
            await self.note(ticket, T.STAFF_TOPIC_RECREATED, recreate=False)
        for record in self.d.desk.relays.undelivered(ticket.id):
            await self.relay(ticket, record)
        return ticket

    def topic_title(self, ticket: Ticket) -> str:
        customer = self.d.desk.customers.get(ticket.customer_id)
        order = self.order_of(ticket)
        return self.label(
            T.STAFF_TOPIC_TITLE,
            ticket=ticket,
            name=customer.first_name if customer else "?",
            order_number=order.external_id if order else None,
            resolved=ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED),
        )[:128]

    def order_of(self, ticket: Ticket) -> Any:
        if ticket.order_id is None:
            return None
        return self.d.desk.orders.get_for_customer(ticket.order_id, ticket.customer_id)

    def card_values(self, ticket: Ticket) -> dict[str, Any]:
        """Everything staff should know at a glance, for the card template."""
        desk = self.d.desk
        customer = desk.customers.get(ticket.customer_id)
        stats = desk.segments.stats_for(ticket.customer_id)
        earlier = [t for t in desk.tickets.for_customer(ticket.customer_id) if t.id != ticket.id][
            :EARLIER_TICKETS_ON_CARD
        ]
        zone = ZoneInfo(self.d.config.shop.timezone)
        return {
            "ticket": ticket,
            "customer": customer,
            "stats": stats.stats if stats else None,
            "order": self.order_of(ticket),
            "recent": desk.segments.recent_orders(ticket.customer_id, RECENT_ORDERS_ON_CARD),
            "earlier": earlier,
            "zone": zone,
            "currency": self.d.config.shop.currency,
        }

    def card_buttons(self, ticket: Ticket) -> InlineKeyboardMarkup | None:
        if ticket.status == TicketStatus.CLOSED:
            return None
        rows = [
            [
                (self.label(T.BTN_CLAIM), f"tk:{ticket.id}:claim"),
                (self.label(T.BTN_RESOLVE), f"tk:{ticket.id}:resolve"),
            ],
            [
                (self.label(T.BTN_PRIORITY_UP), f"tk:{ticket.id}:up"),
                (self.label(T.BTN_PRIORITY_DOWN), f"tk:{ticket.id}:down"),
            ],
        ]
        if ticket.status == TicketStatus.RESOLVED:
            rows[0] = rows[0][:1]
        return inline_keyboard(rows)

    async def refresh(self, ticket: Ticket, *, rename: bool = False) -> None:
        """Redraw the card (status, priority, assignee, SLA) and, if asked, the topic name."""
        if not ticket.posted or ticket.staff_chat_id != self.staff_chat_id:
            return
        assert ticket.card_message_id is not None
        text, mode = fit(self.label(T.STAFF_CARD, **self.card_values(ticket)))
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=self.staff_chat_id,
                message_id=ticket.card_message_id,
                parse_mode=mode,
                reply_markup=self.card_buttons(ticket),
            )
        except TelegramError as exc:
            if "not modified" not in str(exc).lower():
                logger.warning("card of ticket #%s not updated: %s", ticket.id, exc)
        if rename and ticket.staff_thread_id is not None:
            try:
                await self.bot.edit_forum_topic(
                    self.staff_chat_id, ticket.staff_thread_id, name=self.topic_title(ticket)
                )
            except TelegramError as exc:
                logger.info("topic of ticket #%s not renamed: %s", ticket.id, exc)

    # ------------------------------------------------------------------ relays

    async def relay(self, ticket: Ticket, record: RelayRecord) -> bool:
        if record.direction == "from_customer":
            return await self.to_staff(ticket, record)
        if record.direction == "to_customer":
            return await self.to_customer(ticket, record) is not None
        return False

    async def to_staff(self, ticket: Ticket, record: RelayRecord) -> bool:
        """Copy a customer's message into the ticket's place (recreating a deleted topic)."""
        if not self.staff_chat_id:
            return False
        if not ticket.posted:
            await self.post(ticket)  # copies every undelivered message, this one included
            stored = self.d.desk.relays.get(record.id)
            return stored is not None and stored.relay_status == "delivered"
        try:
            copy = await self._copy_to_staff(ticket, record)
        except TelegramError as exc:
            if self.topic_deleted(ticket, exc):
                await self.post(ticket, recreated=True)  # copies the pending messages again
                stored = self.d.desk.relays.get(record.id)
                return stored is not None and stored.relay_status == "delivered"
            self.d.desk.relays.failed(record.id, str(exc), self.d.clock.now())
            logger.warning("message of ticket #%s not copied to staff: %s", ticket.id, exc)
            await self.note(ticket, T.STAFF_RELAY_FAILED, reason=describe_error(exc), to_staff=True)
            return False
        self.d.desk.relays.delivered(
            record.id, self.staff_chat_id, copy.message_id, self.d.clock.now()
        )
        return True

    async def _copy_to_staff(self, ticket: Ticket, record: RelayRecord) -> MessageId:
        place = self.staff_place(ticket)
        return await self.bot.copy_message(
            self.staff_chat_id,
            record.source_chat_id,
            record.source_message_id,
            message_thread_id=place.thread_id,
            reply_parameters=(
                ReplyParameters(place.reply_to, allow_sending_without_reply=True)
                if place.reply_to
                else None
            ),
        )

    async def to_customer(self, ticket: Ticket, record: RelayRecord) -> Ticket | None:
        """Send a staff message to the customer; on success the ticket records the reply."""
        customer = self.d.desk.customers.get(ticket.customer_id)
        chat_id = customer.telegram_user_id if customer else None
        now = self.d.clock.now()
        if customer is None or chat_id is None:
            self.d.desk.relays.failed(record.id, "customer has no Telegram chat", now)
            await self.note(ticket, T.STAFF_RELAY_FAILED, reason="no_chat", to_staff=False)
            return None
        try:
            copy = await self._send_to_customer(customer, chat_id, record)
        except TelegramError as exc:
            self.d.desk.relays.failed(record.id, str(exc), now)
            if isinstance(exc, Forbidden):
                self.d.desk.customers.update_settings(customer.id, now, blocked=True)
            logger.warning("reply on ticket #%s not delivered: %s", ticket.id, exc)
            await self.note(
                ticket, T.STAFF_RELAY_FAILED, reason=describe_error(exc), to_staff=False
            )
            return None
        self.d.desk.relays.delivered(record.id, chat_id, copy.message_id, now)
        self.d.log.record_outgoing(
            chat_id=chat_id,
            customer_id=customer.id,
            kind="staff_reply",
            telegram_message_id=copy.message_id,
            text=record.text,
            now=now,
        )
        updated = self.d.services.tickets.staff_replied(ticket, record.author, now)
        if updated.status != ticket.status or ticket.first_response_at is None:
            await self.refresh(updated)
        self.track(updated)
        return updated

    async def _send_to_customer(
        self, customer: Customer, chat_id: int, record: RelayRecord
    ) -> MessageId | Message:
        reply_to = self._original_in_customer_chat(record)
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        body = self._signed(customer, record)
        if not (record.kind in SENT_AS_TEXT or (body is not None and record.kind == "text")):
            caption = body if body is not None and visible_length(body) <= MAX_CAPTION else None
            try:
                return await self.bot.copy_message(
                    chat_id,
                    record.source_chat_id,
                    record.source_message_id,
                    caption=caption,
                    parse_mode=ParseMode.HTML if caption else None,
                    reply_parameters=reply,
                )
            except BadRequest as exc:
                # The staff message went (its topic deleted, say) before it was copied: a
                # text reply is stored, so it still goes; media cannot.
                if not (record.kind == "text" and record.text and source_gone(exc)):
                    raise
        text, mode = fit(body or record.text or "")
        return await self.bot.send_message(chat_id, text, parse_mode=mode, reply_parameters=reply)

    def _signed(self, customer: Customer, record: RelayRecord) -> str | None:
        """The reply (text, or a photo's caption) signed "Maria, Demo Gifts:" when
        ``sign_replies`` is on; None when it goes as the shop. A signed caption over
        Telegram's limit goes unsigned."""
        if not (record.text and self._signs(record.kind, record.author_id)):
            return None
        return self._sign(customer, record.author_name or "", record.text)

    def _signs(self, kind: str, author_id: int | None) -> bool:
        """Anonymous group admins have no person's name to sign with; dashboard accounts do."""
        return self.d.config.staff.sign_replies and (author_id is not None or kind in WEB_KINDS)

    def _sign(self, customer: Customer, agent: str, body: str) -> str:
        return self.label(
            T.STAFF_REPLY_SIGNED,
            self.d.services.customers.language_of(customer),
            agent=agent,
            shop=self.d.config.shop.name,
            body=body,
        )

    def reply_length(self, ticket: Ticket, staff: Actor, text_html: str, kind: str) -> int:
        """A reply's length as the customer gets it (with the signature, if replies are
        signed), counted as Telegram counts against its limit."""
        customer = self.d.desk.customers.get(ticket.customer_id)
        if customer is not None and self._signs(kind, staff.id):
            text_html = self._sign(customer, staff.name, text_html)
        return visible_length(text_html)

    # ------------------------------------------------------------------ staff replies

    async def reply(
        self,
        ticket: Ticket,
        staff: Actor,
        *,
        kind: str,
        text: str | None,
        source: tuple[int, int],
        reply_to_message_id: int | None = None,
    ) -> RelayRecord | None:
        """A staff reply to the customer: stored first (keyed by its source message, chat and
        id), then sent. Returns the stored record with the outcome (delivered, or failed with
        the reason); None if that source was already stored (an update delivered twice)."""
        record = self.d.desk.relays.record(
            ticket.id,
            direction="to_customer",
            kind=kind,
            text=text,
            source_chat_id=source[0],
            source_message_id=source[1],
            author=staff,
            now=self.d.clock.now(),
            reply_to_message_id=reply_to_message_id,
        )
        if record is None:
            return None
        await self.to_customer(ticket, record)
        return self.d.desk.relays.get(record.id)

    async def reply_from_web(
        self, ticket: Ticket, staff: Actor, text_html: str, *, kind: str = WEB_REPLY
    ) -> RelayRecord | None:
        """A reply written on the web dashboard, sent as one typed in the ticket's topic. A
        copy goes into the topic first: staff in Telegram see what was answered, and the copy
        is the reply's source in the ledger (a reply to it in Telegram stays in the ticket)."""
        ticket, source = await self._dashboard_copy(ticket, T.STAFF_WEB_REPLY, staff, text_html)
        return await self.reply(ticket, staff, kind=kind, text=text_html, source=source)

    async def note_from_web(self, ticket: Ticket, staff: Actor, text: str) -> RelayRecord | None:
        """An internal note written on the dashboard: stored, and shown to staff in the topic."""
        ticket, source = await self._dashboard_copy(
            ticket, T.STAFF_WEB_NOTE, staff, html.escape(text)
        )
        return self.keep_note(ticket, staff, text, source, kind=WEB_NOTE)

    def keep_note(
        self, ticket: Ticket, staff: Actor, text: str, source: tuple[int, int], *, kind: str
    ) -> RelayRecord | None:
        """An internal note stored with the ticket (keyed by its source message, chat and id);
        never sent to the customer. None if that source was already stored."""
        return self.d.desk.relays.record(
            ticket.id,
            direction="note",
            kind=kind,
            text=text,
            source_chat_id=source[0],
            source_message_id=source[1],
            author=staff,
            now=self.d.clock.now(),
        )

    async def _dashboard_copy(
        self, ticket: Ticket, key: T, staff: Actor, body_html: str
    ) -> tuple[Ticket, tuple[int, int]]:
        """Post a dashboard message's copy in the ticket's staff place (giving the ticket its
        place first if it has none yet) and return the ticket with the copy's (chat, message)
        ids. Without a staff chat, or if Telegram refuses, the dashboard numbers the message
        itself (chat 0), so it is still stored exactly once."""
        if self.staff_chat_id and not ticket.posted:
            ticket = await self.post(ticket)
        copy = await self.note(ticket, key, mapped=False, agent=staff.name, body=body_html)
        if copy is not None:
            return ticket, (copy.chat_id, copy.message_id)
        return ticket, (DASHBOARD_CHAT_ID, self.d.desk.relays.next_dashboard_message_id())

    def _original_in_customer_chat(self, record: RelayRecord) -> int | None:
        """If staff replied to a relayed customer message, the customer's original message."""
        if record.reply_to_message_id is None:
            return None
        original = self.d.desk.relays.by_message(self.staff_chat_id, record.reply_to_message_id)
        if (
            original is None
            or original.direction != "from_customer"
            or original.ticket_id != record.ticket_id
        ):
            return None
        return original.source_message_id

    # ------------------------------------------------------------------ customer notices

    async def tell_customer(self, ticket: Ticket, key: T, **values: Any) -> bool:
        """A notice to the ticket's customer in their language (False if it did not arrive)."""
        customer = self.d.desk.customers.get(ticket.customer_id)
        if customer is None or customer.telegram_user_id is None:
            return False
        lang = self.d.services.customers.language_of(customer)
        try:
            await send_text(
                self.bot,
                self.d,
                Outgoing(customer.telegram_user_id, lang, customer.id),
                key,
                ticket=ticket,
                **values,
            )
        except Forbidden:
            self.d.desk.customers.update_settings(customer.id, self.d.clock.now(), blocked=True)
            await self.note(ticket, T.STAFF_RELAY_FAILED, reason="blocked", to_staff=False)
            return False
        except TelegramError as exc:
            logger.warning("notice %s on ticket #%s not sent: %s", key.name, ticket.id, exc)
            return False
        return True

    # ------------------------------------------------------------------ SLA

    async def announce_breaches(self, ticket: Ticket, breaches: list[Breach]) -> None:
        """Warn in the ticket's place and ping each admin privately, once per breach."""
        zone = ZoneInfo(self.d.config.shop.timezone)
        for breach in breaches:
            values: dict[str, Any] = {"breach": breach.value, "zone": zone}
            await self.note(ticket, T.STAFF_BREACH, **values)
            for admin in self.d.config.staff.admins:
                try:
                    await send_text(
                        self.bot,
                        self.d,
                        Outgoing(admin, self.staff_lang),
                        T.STAFF_ADMIN_BREACH,
                        ticket=ticket,
                        **values,
                    )
                except TelegramError as exc:  # admin never started the bot, or blocked it
                    logger.warning(
                        "admin %s not told of the breach on #%s: %s", admin, ticket.id, exc
                    )


def desk_of(context: CareContext) -> Desk:
    return Desk(context.bot, context.bot_data.deps, context.job_queue)


def schedule_sla(queue: JobQueue[Any] | None, d: Deps, ticket: Ticket) -> None:
    """(Re)schedule the ticket's next SLA check (none once every target is met or missed)."""
    run_at(queue, d.clock, f"sla:{ticket.id}", sla_check, ticket.next_due(), ticket.id)


async def sla_check(context: CareContext) -> None:
    """A ticket's SLA target came due: announce what was missed, then wait for the next."""
    d = context.bot_data.deps
    assert context.job is not None
    ticket_id = context.job.data
    assert isinstance(ticket_id, int)
    now = d.clock.now()
    ticket, breaches = d.services.tickets.breaches_due(ticket_id, now)
    if ticket is None:
        return
    if breaches:
        desk = desk_of(context)
        await desk.announce_breaches(ticket, breaches)
        await desk.refresh(ticket)
    following = ticket.next_due()
    if following is not None and following > now:
        schedule_sla(context.job_queue, d, ticket)
