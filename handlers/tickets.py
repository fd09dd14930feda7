"""The customer's side of tickets: the complaint form, "talk to a person", /status, and
whatever they write while a ticket is open (it goes to staff).

The complaint form is stored in the database (``ticket_drafts``) step by step, so a restart
in the middle does not lose it. Callback data is never trusted: the order button is checked
against the customer's own orders and the category against the configured list.
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Message, Update
from telegram.ext import Application, CommandHandler, MessageHandler, filters

from bot.texts import T
from bot.tickets import Actor, DraftMessage, Opened, Ticket, TicketDraft, TicketKind
from handlers.buttons import CustomerButton
from handlers.common import (
    PRIVATE_MESSAGES,
    clear_buttons,
    customer_of,
    deps,
    edit,
    inline_keyboard,
    label,
    local_zone,
    reply,
)
from handlers.context import CareContext
from handlers.desk import desk_of
from handlers.record import message_kind

COMPLAINT = re.compile(r"^cpl:(?:o:(\d{1,12})|c:([a-z0-9_]{1,32})|(send)|(cancel))$")
PERSON = re.compile(r"^person:(no_match|not_helpful):(\d{1,10})$")
# Media a customer can add to a ticket (copied to staff as they are).
TICKET_MEDIA = (
    filters.PHOTO
    | filters.Document.ALL
    | filters.VIDEO
    | filters.VOICE
    | filters.VIDEO_NOTE
    | filters.AUDIO
    | filters.Sticker.ALL
    | filters.LOCATION
    | filters.CONTACT
)


async def complaint_start(update: Update, context: CareContext) -> None:
    """Menu "Complaint" or /complaint: which order is it about (if they have orders)?"""
    d, customer = deps(context), customer_of(context)
    orders = d.services.orders.recent(customer) if customer.is_linked else []
    step = "order" if orders else "category"
    d.desk.drafts.save(TicketDraft(customer.id, step), d.clock.now())
    if not orders:
        await reply(update, context, T.COMPLAINT_CHOOSE_CATEGORY, markup=category_buttons(context))
        return
    rows = [[(label(context, T.BTN_ORDER, order=o), f"cpl:o:{o.id}")] for o in orders]
    rows.append([(label(context, T.BTN_NOT_ABOUT_ORDER), "cpl:o:0")])
    rows.append([(label(context, T.BTN_CANCEL), "cpl:cancel")])
    await reply(update, context, T.COMPLAINT_CHOOSE_ORDER, markup=inline_keyboard(rows))


def category_buttons(context: CareContext) -> Any:
    categories = deps(context).config.tickets.categories
    rows = [
        [(label(context, T.CATEGORY_NAME, category=c), f"cpl:c:{c}") for c in categories[i : i + 2]]
        for i in range(0, len(categories), 2)
    ]
    rows.append([(label(context, T.BTN_CANCEL), "cpl:cancel")])
    return inline_keyboard(rows)


async def complaint_button(update: Update, context: CareContext) -> None:
    """A step of the complaint form: order, category, send or cancel."""
    query = update.callback_query
    assert query is not None
    d, customer = deps(context), customer_of(context)
    match = COMPLAINT.match(query.data or "")
    draft = d.desk.drafts.get(customer.id)
    if match is None or draft is None:
        await query.answer(label(context, T.FORM_EXPIRED), show_alert=True)
        await clear_buttons(query)
        return
    order_id, category, send, cancel = match.groups()
    if cancel:
        d.desk.drafts.discard(customer.id)
        await query.answer()
        await edit(query, context, T.COMPLAINT_CANCELLED)
    elif order_id is not None and draft.step == "order":
        await order_chosen(update, context, draft, int(order_id))
    elif category is not None and draft.step == "category":
        await category_chosen(update, context, draft, category)
    elif send and draft.step == "describe" and draft.messages:
        await query.answer()
        await clear_buttons(query)
        await submit_complaint(update, context, draft)
    else:
        await query.answer(label(context, T.FORM_EXPIRED), show_alert=True)


async def order_chosen(
    update: Update, context: CareContext, draft: TicketDraft, order_id: int
) -> None:
    """Only the customer's own order is accepted (a forged id is "not found")."""
    query = update.callback_query
    assert query is not None
    d, customer = deps(context), customer_of(context)
    if order_id and d.services.orders.detail(customer, order_id) is None:
        await query.answer(label(context, T.ORDER_NOT_FOUND), show_alert=True)
        return
    await query.answer()
    updated = TicketDraft(customer.id, "category", order_id or None)
    d.desk.drafts.save(updated, d.clock.now())
    await edit(query, context, T.COMPLAINT_CHOOSE_CATEGORY, markup=category_buttons(context))


async def category_chosen(
    update: Update, context: CareContext, draft: TicketDraft, category: str
) -> None:
    query = update.callback_query
    assert query is not None
    d = deps(context)
    if not d.services.tickets.category_allowed(category):
        await query.answer(label(context, T.FORM_EXPIRED), show_alert=True)
        return
    await query.answer()
    updated = TicketDraft(draft.customer_id, "describe", draft.order_id, category)
    d.desk.drafts.save(updated, d.clock.now())
    cancel = inline_keyboard([[(label(context, T.BTN_CANCEL), "cpl:cancel")]])
    await edit(query, context, T.COMPLAINT_DESCRIBE, markup=cancel, category=category)


async def describe_step(update: Update, context: CareContext, draft: TicketDraft) -> None:
    """A description message (text or photo): kept in the draft until the customer sends."""
    d, message = deps(context), update.effective_message
    assert message is not None
    updated = TicketDraft(
        draft.customer_id,
        draft.step,
        draft.order_id,
        draft.category,
        (*draft.messages, as_draft_message(message)),
    )
    d.desk.drafts.save(updated, d.clock.now())
    if draft.messages:
        return  # the "Send" button is already under the first one
    buttons = inline_keyboard(
        [[(label(context, T.BTN_SEND), "cpl:send"), (label(context, T.BTN_CANCEL), "cpl:cancel")]]
    )
    await reply(update, context, T.COMPLAINT_ADDED, markup=buttons)


async def submit_complaint(update: Update, context: CareContext, draft: TicketDraft) -> None:
    d, customer = deps(context), customer_of(context)
    now = d.clock.now()
    subject = next((m.text for m in draft.messages if m.text), None)
    opened = d.services.tickets.open(
        customer.id,
        TicketKind.COMPLAINT,
        "complaint",
        now,
        category=draft.category,
        order_id=draft.order_id,
        subject=subject,
        key_customer=is_key_customer(context),
    )
    for m in draft.messages:
        record_from_customer(context, opened.ticket, m)
    d.desk.drafts.discard(customer.id)
    await confirm_and_post(update, context, opened)


def is_key_customer(context: CareContext) -> bool:
    stats = deps(context).desk.segments.stats_for(customer_of(context).id)
    return bool(stats and stats.stats.key_customer)


def record_from_customer(context: CareContext, ticket: Ticket, message: DraftMessage) -> None:
    """Store a customer's message in the ticket, before it is copied anywhere."""
    customer = customer_of(context)
    deps(context).desk.relays.record(
        ticket.id,
        direction="from_customer",
        kind=message.kind,
        text=message.text,
        source_chat_id=message.chat_id,
        source_message_id=message.message_id,
        author=Actor("customer", customer.id, customer.first_name),
        now=deps(context).clock.now(),
    )


def as_draft_message(message: Message) -> DraftMessage:
    return DraftMessage(
        message.chat_id, message.message_id, message_kind(message), message.text or message.caption
    )


async def confirm_and_post(update: Update, context: CareContext, opened: Opened) -> None:
    """Tell the customer their ticket number and when to expect an answer; post it for staff.

    A request that joined an existing ticket is shown to staff there (and reopens it if
    it was resolved)."""
    ticket = opened.ticket
    if not opened.created:
        await reply(update, context, T.TICKET_CONTINUES, ticket=ticket)
        await desk_of(context).note(ticket, T.STAFF_PERSON_ASKED)
        await customer_continued(update, context, ticket)
        return
    zone = local_zone(context)
    due = ticket.first_response_due.astimezone(zone) if ticket.first_response_due else None
    await reply(
        update,
        context,
        T.TICKET_OPENED,
        ticket=ticket,
        due=due,
        target=deps(context).config.sla.first_response_targets[ticket.priority],
        local_timezone=zone.key,
    )
    desk = desk_of(context)
    desk.track(await desk.post(ticket))


async def person_requested(update: Update, context: CareContext) -> None:
    """/person, the menu button, or "Talk to a person" under an answer: an inquiry ticket."""
    d, query = deps(context), update.callback_query
    customer, now = customer_of(context), d.clock.now()
    source, question_id = "menu", None
    if query is not None:
        await query.answer()
        match = PERSON.match(query.data or "")
        if match is None:
            return
        source, question_id = match.group(1), int(match.group(2))
        await clear_buttons(query)
    chat_id = update.effective_chat.id if update.effective_chat else customer.id
    question = d.log.incoming_text(chat_id, question_id) if question_id else None
    opened = d.services.tickets.open(
        customer.id,
        TicketKind.INQUIRY,
        source,
        now,
        subject=question,
        key_customer=is_key_customer(context),
    )
    if question_id and question:
        asked = DraftMessage(chat_id, question_id, "text", question)
        record_from_customer(context, opened.ticket, asked)
    await confirm_and_post(update, context, opened)


async def into_ticket(update: Update, context: CareContext) -> bool:
    """Route a customer's message into their complaint draft or open ticket.

    Returns False when neither applies (the message is then answered as usual).
    """
    d, customer, message = deps(context), customer_of(context), update.effective_message
    assert message is not None
    draft = d.desk.drafts.get(customer.id)
    if draft is not None and draft.step == "describe":
        await describe_step(update, context, draft)
        return True
    now = d.clock.now()
    ticket = d.services.tickets.conversation_for(customer.id, now)
    if ticket is None:
        return False
    await relay_customer_message(update, context, ticket, message)
    return True


async def relay_customer_message(
    update: Update, context: CareContext, ticket: Ticket, message: Message
) -> None:
    """Store the customer's message in the ticket (before anything else), then pass it on."""
    record_from_customer(context, ticket, as_draft_message(message))
    await customer_continued(update, context, ticket)


async def customer_continued(update: Update, context: CareContext, ticket: Ticket) -> None:
    """The customer added to a ticket: it waits for staff again (a resolved one reopens),
    and what they wrote is copied to the ticket's place in the staff chat."""
    d = deps(context)
    wrote = d.services.tickets.customer_wrote(ticket, d.clock.now())
    desk = desk_of(context)
    if wrote.reopened:
        await reply(update, context, T.TICKET_REOPENED, ticket=wrote.ticket)
        await desk.note(wrote.ticket, T.STAFF_REOPENED)
        await desk.refresh(wrote.ticket, rename=True)
    elif wrote.ticket.status != ticket.status:
        await desk.refresh(wrote.ticket)
    for record in d.desk.relays.undelivered(ticket.id):
        await desk.relay(wrote.ticket, record)
    if wrote.ticket.status != ticket.status:
        desk.track(wrote.ticket)


async def customer_media(update: Update, context: CareContext) -> None:
    """A photo, document, voice... goes into the draft or ticket; otherwise a pointer to text."""
    if not await into_ticket(update, context):
        await reply(update, context, T.UNSUPPORTED_MEDIA)


async def my_tickets(update: Update, context: CareContext) -> None:
    """/status: the customer's open tickets, with their state."""
    d, customer = deps(context), customer_of(context)
    tickets = d.services.tickets.active_for(customer.id)
    if not tickets:
        await reply(update, context, T.STATUS_NONE)
        return
    zone = local_zone(context)
    await reply(update, context, T.STATUS_LIST, tickets=tickets, zone=zone)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("complaint", complaint_start, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("person", person_requested, filters=PRIVATE_MESSAGES))
    app.add_handler(CommandHandler("status", my_tickets, filters=PRIVATE_MESSAGES))
    app.add_handler(CustomerButton(complaint_button, pattern=r"^cpl:"))
    app.add_handler(CustomerButton(person_requested, pattern=r"^person:"))


def register_media(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registered after the menu and free text: media that no other handler took."""
    app.add_handler(MessageHandler(PRIVATE_MESSAGES & TICKET_MEDIA, customer_media))
