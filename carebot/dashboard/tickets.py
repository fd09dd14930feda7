"""Tickets on the web: the list with filters, one ticket with its conversation and customer,
and the staff actions (reply, canned reply, note, claim, resolve, priority).

Every action goes through the desk the staff chat uses (``handlers.desk.Desk`` and
``handlers.ticket_actions.TicketWork``): a reply typed here is stored in the same relay
ledger, signed the same way, moves the ticket and its SLA job the same way, and a copy is
posted in the ticket's staff topic so staff in Telegram see what was answered from the web.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlite_utils import Database

from bot.canned import CannedError, render_canned
from bot.reports import format_duration
from bot.sla import Priority
from bot.telegram_html import parse_html
from bot.texts import TELEGRAM_TEXT_LIMIT, money
from bot.tickets import ACTIVE_STATUSES, PRIORITY_ORDER, Actor, RelayRecord, Ticket, TicketStatus
from carebot.dashboard.app import (
    Dashboard,
    Routes,
    account_of,
    dashboard_of,
    flash,
    form_of,
    int_param,
    page_number,
    render_page,
    see_other,
    text_field,
)
from carebot.ticket_views import actor_label, sla_state, target_state, topic
from handlers.desk import WEB_CANNED, WEB_KINDS, WEB_NOTE, WEB_REPLY
from handlers.ticket_actions import TicketWork, UnknownCanned, canned_replies
from storage.dashboard_tickets import (
    ACTIVE,
    PAGE_SIZE,
    UNASSIGNED,
    TicketFilters,
    TicketListing,
    TicketPage,
    ticket_listing,
    ticket_page,
)

MAX_SEARCH = 100
MAX_NOTE = TELEGRAM_TEXT_LIMIT
STATES = [s.value for s in TicketStatus]
PRIORITIES = [p.value for p in PRIORITY_ORDER]
SIDES = {"from_customer": "customer", "to_customer": "staff", "note": "note"}
UNLABELLED_KINDS = ("text", "note", WEB_REPLY, WEB_NOTE)  # the side already says what they are
CANNED_KINDS = ("canned", WEB_CANNED)


def zone_of(dashboard: Dashboard) -> ZoneInfo:
    return ZoneInfo(dashboard.config.shop.timezone)


def ticket_url(ticket_id: int) -> str:
    return f"/admin/tickets/{ticket_id}"


# ------------------------------------------------------------------ the list


def filters_of(request: web.Request) -> tuple[TicketFilters, list[str]]:
    """The list's filters from the query string, and what was wrong with any (then ignored)."""
    query = request.query
    problems = []
    status = query.get("status", "").strip()
    if status and status != ACTIVE and status not in STATES:
        problems.append(f"State: there is no state called “{status}”; showing every state.")
        status = ""
    priority = query.get("priority", "").strip()
    if priority and priority not in PRIORITIES:
        problems.append(
            f"Priority: “{priority}” is not one of {', '.join(PRIORITIES)}; showing every priority."
        )
        priority = ""
    search = query.get("q", "").strip()
    if len(search) > MAX_SEARCH:
        problems.append(f"Search: only the first {MAX_SEARCH} characters were used.")
        search = search[:MAX_SEARCH]
    filters = TicketFilters(
        status=status,
        category=query.get("category", "").strip()[:64],
        priority=priority,
        assignee=query.get("assignee", "").strip()[:128],
        breached=query.get("breached", "") in ("1", "on", "yes"),
        search=search,
    )
    return filters, problems


def list_url(filters: TicketFilters, **changes: Any) -> str:
    """The list with these filters (and ``changes``, e.g. another page or state)."""
    values: dict[str, Any] = {
        "status": filters.status,
        "category": filters.category,
        "priority": filters.priority,
        "assignee": filters.assignee,
        "breached": "1" if filters.breached else "",
        "q": filters.search,
        **changes,
    }
    query = urlencode({k: v for k, v in values.items() if v not in ("", None)})
    return "/admin/tickets" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class StateTab:
    label: str
    value: str
    count: int
    url: str


def state_tabs(listing: TicketListing, filters: TicketFilters) -> list[StateTab]:
    """ "All 12", "Active 5", "Open 3"...: counts under the other filters, each a link."""
    counts = listing.counts
    active = sum(counts.get(s.value, 0) for s in ACTIVE_STATUSES)
    tabs = [
        StateTab("All", "", sum(counts.values()), list_url(filters, status="")),
        StateTab("Active", ACTIVE, active, list_url(filters, status=ACTIVE)),
    ]
    tabs += [
        StateTab(s.capitalize(), s, counts.get(s, 0), list_url(filters, status=s)) for s in STATES
    ]
    return tabs


def breached(ticket: Ticket) -> bool:
    return (
        ticket.first_response_breached_at is not None or ticket.resolution_breached_at is not None
    )


async def ticket_list(request: web.Request) -> web.StreamResponse:
    """Tickets matching the filters, newest activity first, 50 a page."""
    dashboard = dashboard_of(request)
    filters, problems = filters_of(request)
    page = page_number(request)

    def load(db: Database) -> TicketListing:
        return ticket_listing(db, filters, page=page, per_page=PAGE_SIZE)

    listing = await dashboard.off_loop(load)
    pages = max(1, -(-listing.total // PAGE_SIZE))
    zone, now = zone_of(dashboard), dashboard.now()
    categories = sorted({*dashboard.config.tickets.categories, *listing.categories})
    return render_page(
        request,
        "tickets/list.html",
        filters=filters,
        problems=problems,
        listing=listing,
        rows=[
            (row, sla_state(row.ticket, zone, now), breached(row.ticket)) for row in listing.rows
        ],
        tabs=state_tabs(listing, filters),
        states=STATES,
        active=ACTIVE,
        priorities=PRIORITIES,
        categories=categories,
        unassigned=UNASSIGNED,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
        previous_url=list_url(filters, page=page - 1) if page > 1 else None,
        next_url=list_url(filters, page=page + 1) if page < pages else None,
        topic=topic,
        zone=zone,
    )


# ------------------------------------------------------------------ one ticket


@dataclass(frozen=True)
class MessageView:
    """One message of the conversation as the page shows it (always plain text)."""

    side: str  # "customer" | "staff" | "note"
    author: str
    at: datetime | None
    kind: str
    kind_label: str | None  # "canned reply", "photo"...; None for plain text and notes
    text: str
    from_dashboard: bool
    status: str  # "delivered" | "pending" | "failed" | "internal"
    error: str | None


def message_view(record: RelayRecord) -> MessageView:
    """Staff replies are stored as Telegram HTML: shown as the text the customer read, never
    as markup (the page escapes it like any other text)."""
    text = record.text or ""
    if record.direction == "to_customer":
        text = parse_html(text).text
    side = SIDES.get(record.direction, "note")
    author = record.author_name or ("customer" if side == "customer" else "staff")
    return MessageView(
        side=side,
        author=author,
        at=record.created_at,
        kind=record.kind,
        kind_label=kind_label(record.kind),
        text=text,
        from_dashboard=record.kind in WEB_KINDS,
        status=record.relay_status,
        error=record.relay_error,
    )


def kind_label(kind: str) -> str | None:
    if kind in UNLABELLED_KINDS:
        return None
    return "canned reply" if kind in CANNED_KINDS else kind


@dataclass(frozen=True)
class CannedOption:
    name: str
    text: str | None  # filled in for this ticket; None if it cannot be used
    problem: str | None


def canned_options(work: TicketWork, ticket: Ticket) -> list[CannedOption]:
    """Every canned reply filled in for this ticket (its values looked up once, not per reply)."""
    values = work.canned_values(ticket)
    options = []
    for name, body in canned_replies(work.d).items():
        try:
            options.append(CannedOption(name, render_canned(body, values), None))
        except CannedError as exc:
            options.append(CannedOption(name, None, str(exc)))
    return options


def web_staff(request: web.Request) -> TicketWork:
    """The signed-in account acting on tickets, as the staff chat's desk knows staff."""
    account = account_of(request)
    actor = Actor("staff", account.telegram_user_id, account.display_name)
    return TicketWork(dashboard_of(request).desk(), actor)


async def show_ticket(
    request: web.Request,
    ticket_id: int,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> web.Response:
    """The ticket's page; after a refused action, with the reason next to its form and what
    was typed kept."""
    dashboard = dashboard_of(request)

    def load(db: Database) -> TicketPage | None:
        return ticket_page(db, ticket_id)

    found = await dashboard.off_loop(load)
    if found is None:
        raise web.HTTPNotFound(text=f"There is no ticket #{ticket_id}.")
    ticket, zone = found.ticket, zone_of(dashboard)
    work = web_staff(request)
    first_response_after = (
        format_duration(ticket.first_response_at - ticket.created_at)
        if ticket.first_response_at
        else None
    )
    return render_page(
        request,
        "tickets/ticket.html",
        status=status,
        page=found,
        ticket=ticket,
        customer=found.customer,
        messages=[message_view(m) for m in found.messages],
        events=found.events,
        actor_label=actor_label,
        topic=topic,
        first_response_state=target_state(
            ticket.first_response_at,
            ticket.first_response_due,
            ticket.first_response_breached_at,
            zone,
        ),
        resolution_state=target_state(
            ticket.resolved_at, ticket.resolution_due, ticket.resolution_breached_at, zone
        ),
        first_response_after=first_response_after,
        closed=ticket.status == TicketStatus.CLOSED,
        resolvable=ticket.active,
        canned=canned_options(work, ticket),
        priorities=PRIORITIES,
        errors=errors or {},
        typed=typed or {},
        money=money,
        currency=dashboard.config.shop.currency,
        limit=TELEGRAM_TEXT_LIMIT,
        zone=zone,
    )


async def ticket_detail(request: web.Request) -> web.StreamResponse:
    """One ticket: conversation, timeline, customer card and the actions."""
    return await show_ticket(request, int_param(request, "ticket_id"))


# ------------------------------------------------------------------ actions


async def current_ticket(request: web.Request) -> Ticket:
    """The ticket in the URL, read now (not from the page the form came from)."""
    ticket_id = int_param(request, "ticket_id")
    ticket = dashboard_of(request).deps.services.tickets.get(ticket_id)
    if ticket is None:
        raise web.HTTPNotFound(text=f"There is no ticket #{ticket_id}.")
    return ticket


def closed_message(ticket: Ticket) -> str:
    return (
        f"Ticket #{ticket.id} is closed: messages no longer reach the customer. "
        "If they write again, a new ticket opens."
    )


def too_long(length: int) -> str:
    return (
        f"The reply is {length} characters as Telegram counts them (with the signature, if "
        f"replies are signed); the limit is {TELEGRAM_TEXT_LIMIT}. "
        f"Shorten it by {length - TELEGRAM_TEXT_LIMIT}."
    )


def delivery_notice(ticket: Ticket, record: RelayRecord | None, what: str) -> str:
    if record is None or record.relay_status == "pending":
        return f"The {what} on ticket #{ticket.id} is stored and will be sent shortly."
    if record.relay_status == "failed":
        return (
            f"The {what} was NOT delivered to the customer ({record.relay_error}). "
            f"It is kept in ticket #{ticket.id}, and staff were told in its topic."
        )
    return f"The {what} was sent to the customer on Telegram."


async def reply(request: web.Request) -> web.StreamResponse:
    """A reply typed on the web: to the customer through Telegram, as from the topic."""
    ticket = await current_ticket(request)
    text = text_field(await form_of(request), "text")
    typed = {"reply": text}
    if ticket.status == TicketStatus.CLOSED:
        return await refuse(request, ticket, "reply", closed_message(ticket), typed, 409)
    if not text:
        return await refuse(request, ticket, "reply", "Reply: write something to send.", typed)
    return await send(request, ticket, text, WEB_REPLY, "reply", typed, what="reply")


async def canned(request: web.Request) -> web.StreamResponse:
    """Send a canned reply, filled in for this ticket's customer."""
    ticket = await current_ticket(request)
    name = text_field(await form_of(request), "name")
    typed = {"canned": name}
    if ticket.status == TicketStatus.CLOSED:
        return await refuse(request, ticket, "canned", closed_message(ticket), typed, 409)
    try:
        text = web_staff(request).canned_text(ticket, name)
    except UnknownCanned:
        problem = f"Canned reply: there is none called “{name}”." if name else "Choose one."
        return await refuse(request, ticket, "canned", problem, typed)
    except CannedError as exc:
        problem = f"Canned reply “{name}” cannot be used: {exc}"
        return await refuse(request, ticket, "canned", problem, typed)
    what = f"canned reply “{name}”"
    return await send(request, ticket, text, WEB_CANNED, "canned", typed, what=what, detail=name)


async def send(
    request: web.Request,
    ticket: Ticket,
    text: str,
    kind: str,
    field: str,
    typed: dict[str, str],
    *,
    what: str,
    detail: str = "",
) -> web.StreamResponse:
    """Plain ``text`` to the customer through the desk, unless it is over Telegram's limit as
    the customer would get it (signed, if replies are signed)."""
    work = web_staff(request)
    body = html.escape(text)
    length = work.desk.reply_length(ticket, work.staff, body, kind)
    if length > TELEGRAM_TEXT_LIMIT:
        return await refuse(request, ticket, field, too_long(length), typed)
    record = await work.desk.reply_from_web(ticket, work.staff, body, kind=kind)
    raise done(request, ticket, field, delivery_notice(ticket, record, what), detail)


async def note(request: web.Request) -> web.StreamResponse:
    """An internal note: kept with the ticket and shown in its topic, never sent."""
    ticket = await current_ticket(request)
    text = text_field(await form_of(request), "text")
    typed = {"note": text}
    if not text:
        return await refuse(request, ticket, "note", "Note: write something to save.", typed)
    if len(text) > MAX_NOTE:
        problem = f"Note: {len(text)} characters; the limit is {MAX_NOTE}."
        return await refuse(request, ticket, "note", problem, typed)
    work = web_staff(request)
    await work.desk.note_from_web(ticket, work.staff, text)
    notice = f"Note saved on ticket #{ticket.id} (not sent to the customer)."
    raise done(request, ticket, "note", notice)


async def claim(request: web.Request) -> web.StreamResponse:
    """Take the ticket (as in the staff chat: the card shows who has it)."""
    ticket = await current_ticket(request)
    if await web_staff(request).claim(ticket) is None:
        return await refuse(request, ticket, "action", closed_message(ticket), {}, 409)
    raise done(request, ticket, "claim", f"You have ticket #{ticket.id}.")


async def resolve(request: web.Request) -> web.StreamResponse:
    """Resolve: the customer is told, and the after-support survey is planned."""
    ticket = await current_ticket(request)
    if await web_staff(request).resolve(ticket) is None:
        problem = f"Ticket #{ticket.id} is already {ticket.status.value}: nothing to resolve."
        return await refuse(request, ticket, "action", problem, {}, 409)
    notice = f"Ticket #{ticket.id} is resolved; the customer was told."
    raise done(request, ticket, "resolve", notice)


async def priority(request: web.Request) -> web.StreamResponse:
    """Priority up, down, or set to a level (SLA targets still running move with it)."""
    ticket = await current_ticket(request)
    chosen = text_field(await form_of(request), "priority").lower()
    work = web_staff(request)
    if chosen in ("up", "down"):
        changed = await work.shift_priority(ticket, 1 if chosen == "up" else -1)
    elif chosen in PRIORITIES:
        changed = await work.set_priority(ticket, Priority(chosen))
    else:
        problem = f"Priority: choose {', '.join(PRIORITIES)}."
        return await refuse(request, ticket, "priority", problem, {"priority": chosen})
    if changed.priority == ticket.priority:
        flash(request, f"Ticket #{ticket.id} stays at {ticket.priority.value} priority.")
        raise see_other(ticket_url(ticket.id))
    before, after = ticket.priority.value, changed.priority.value
    notice = f"Ticket #{ticket.id} is now {after} priority."
    raise done(request, ticket, "priority", notice, f"{before} -> {after}")


def done(
    request: web.Request, ticket: Ticket, action: str, notice: str, detail: str = ""
) -> web.HTTPSeeOther:
    """After an action (raise it): audit-logged, the notice shown, back to the ticket's page."""
    dashboard_of(request).audit(request, f"ticket.{action}", f"#{ticket.id} {detail}".rstrip())
    flash(request, notice)
    return see_other(ticket_url(ticket.id))


async def refuse(
    request: web.Request,
    ticket: Ticket,
    field: str,
    message: str,
    typed: dict[str, str],
    status: int = 400,
) -> web.Response:
    """The ticket's page again, with why the action was refused next to its form."""
    return await show_ticket(
        request, ticket.id, status=status, errors={field: message}, typed=typed
    )


def register(routes: Routes) -> None:
    routes.get("/tickets", ticket_list)
    routes.get("/tickets/{ticket_id}", ticket_detail)
    routes.post("/tickets/{ticket_id}/reply", reply)
    routes.post("/tickets/{ticket_id}/canned", canned)
    routes.post("/tickets/{ticket_id}/note", note)
    routes.post("/tickets/{ticket_id}/claim", claim)
    routes.post("/tickets/{ticket_id}/resolve", resolve)
    routes.post("/tickets/{ticket_id}/priority", priority)
