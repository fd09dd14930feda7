"""Reads for the dashboard's ticket pages: the filtered list (newest activity first, with
counts per state) and everything one ticket's page shows. Run off the event loop, each on a
connection of its own (``Dashboard.off_loop``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso
from bot.models import Order
from bot.segments import CustomerStats
from bot.tickets import ACTIVE_STATUSES, RelayRecord, Ticket, TicketEvent
from storage.repositories import OrderRepository, like_escaped, one_row
from storage.segments import OrderLine, SegmentRepository
from storage.tickets import RelayMap, TicketRepository, ticket_from_row

PAGE_SIZE = 50
ACTIVE = "active"  # the state filter for open, answered and reopened tickets together
UNASSIGNED = "-"  # the assignee filter for tickets nobody has claimed or answered
RECENT_ORDERS = 5
OTHER_TICKETS = 10

# The latest thing that happened on a ticket: a change to it, or a message in it (bot posts
# in the staff chat are only anchors for replies, not activity).
_LAST_ACTIVITY = """max(t.updated_at, coalesce(
    (SELECT max(m.created_at) FROM ticket_messages m WHERE m.ticket_id = t.id AND m.kind != 'bot'),
    t.updated_at))"""


@dataclass(frozen=True)
class TicketFilters:
    status: str = ""  # a TicketStatus value, ACTIVE, or "" for every state
    category: str = ""
    priority: str = ""
    assignee: str = ""  # a staff member's name, UNASSIGNED, or "" for anyone
    breached: bool = False  # only tickets that missed an SLA target
    search: str = ""  # the customer's name, username or shop id, or a ticket id ("12", "#12")


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    customer_name: str
    username: str | None
    last_activity: datetime


@dataclass(frozen=True)
class TicketListing:
    rows: list[TicketRow]
    total: int  # tickets matching every filter
    counts: dict[str, int]  # per state, matching every filter but the state
    assignees: list[str]  # everyone who holds or held a ticket, for the filter
    categories: list[str]  # categories tickets have, for the filter


def _where(filters: TicketFilters, *, with_status: bool) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if with_status and filters.status == ACTIVE:
        clauses.append(f"t.status IN ({', '.join('?' for _ in ACTIVE_STATUSES)})")
        params += [s.value for s in ACTIVE_STATUSES]
    elif with_status and filters.status:
        clauses.append("t.status = ?")
        params.append(filters.status)
    if filters.category:
        clauses.append("t.category = ?")
        params.append(filters.category)
    if filters.priority:
        clauses.append("t.priority = ?")
        params.append(filters.priority)
    if filters.assignee == UNASSIGNED:
        clauses.append("t.assignee_name IS NULL")
    elif filters.assignee:
        clauses.append("t.assignee_name = ?")
        params.append(filters.assignee)
    if filters.breached:
        clauses.append(
            "(t.first_response_breached_at IS NOT NULL OR t.resolution_breached_at IS NOT NULL)"
        )
    search = filters.search.strip()
    if search:
        matches = [
            "trim(c.first_name || ' ' || coalesce(c.last_name, '')) LIKE ? ESCAPE '\\'",
            "c.username LIKE ? ESCAPE '\\'",
            "c.external_id = ?",
        ]
        name, username = like_escaped(search), like_escaped(search.lstrip("@"))
        params += [f"%{name}%", f"%{username}%", search]
        number = search.removeprefix("#")
        if number.isdigit() and len(number) <= 12:
            matches.append("t.id = ?")
            params.append(int(number))
        clauses.append(f"({' OR '.join(matches)})")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def ticket_listing(
    db: Database, filters: TicketFilters, *, page: int = 1, per_page: int = PAGE_SIZE
) -> TicketListing:
    """One page of tickets matching ``filters``, newest activity first."""
    where, params = _where(filters, with_status=True)
    rows = db.query(
        f"""SELECT t.*, c.first_name AS customer_first_name, c.last_name AS customer_last_name,
                   c.username AS customer_username, {_LAST_ACTIVITY} AS last_activity
            FROM tickets t LEFT JOIN customers c ON c.id = t.customer_id
            {where}
            ORDER BY last_activity DESC, t.id DESC LIMIT ? OFFSET ?""",
        [*params, per_page, (max(1, page) - 1) * per_page],
    )
    listed = [
        TicketRow(
            ticket=ticket_from_row(r),
            customer_name=" ".join(
                p for p in (r["customer_first_name"], r["customer_last_name"]) if p
            ),
            username=r["customer_username"],
            last_activity=from_iso(r["last_activity"]),
        )
        for r in rows
    ]
    where, params = _where(filters, with_status=False)
    counts = {
        r["status"]: r["n"]
        for r in db.query(
            f"""SELECT t.status, count(*) AS n
                FROM tickets t LEFT JOIN customers c ON c.id = t.customer_id
                {where} GROUP BY t.status""",
            params,
        )
    }
    if filters.status == ACTIVE:
        total = sum(counts.get(s.value, 0) for s in ACTIVE_STATUSES)
    elif filters.status:
        total = counts.get(filters.status, 0)
    else:
        total = sum(counts.values())
    assignees = [
        r["assignee_name"]
        for r in db.query(
            """SELECT DISTINCT assignee_name FROM tickets WHERE assignee_name IS NOT NULL
               ORDER BY assignee_name"""
        )
    ]
    categories = [
        r["category"]
        for r in db.query(
            "SELECT DISTINCT category FROM tickets WHERE category IS NOT NULL ORDER BY category"
        )
    ]
    return TicketListing(listed, total, counts, assignees, categories)


# ------------------------------------------------------------------ one ticket


@dataclass(frozen=True)
class CustomerCard:
    """Who the ticket is from, as staff need it next to the conversation."""

    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language: str | None
    external_id: str | None
    telegram_user_id: int | None
    country: str | None
    blocked: bool
    banned: bool
    stats: CustomerStats | None
    recent_orders: list[OrderLine]
    other_tickets: list[Ticket]

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class TicketPage:
    ticket: Ticket
    order: Order | None
    messages: list[RelayRecord]
    events: list[TicketEvent]
    customer: CustomerCard | None


def customer_card(
    db: Database, customer_id: int, *, besides: int | None = None
) -> CustomerCard | None:
    row = one_row(
        db,
        """SELECT id, first_name, last_name, username, language, external_id, telegram_user_id,
                  country, blocked, banned
           FROM customers WHERE id = ?""",
        [customer_id],
    )
    if row is None:
        return None
    segments = SegmentRepository(db)
    stored = segments.stats_for(customer_id)
    others = TicketRepository(db).for_customer(customer_id, limit=OTHER_TICKETS + 1)
    return CustomerCard(
        id=row["id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        username=row["username"],
        language=row["language"],
        external_id=row["external_id"],
        telegram_user_id=row["telegram_user_id"],
        country=row["country"],
        blocked=bool(row["blocked"]),
        banned=bool(row["banned"]),
        stats=stored.stats if stored else None,
        recent_orders=segments.recent_orders(customer_id, RECENT_ORDERS),
        other_tickets=[t for t in others if t.id != besides][:OTHER_TICKETS],
    )


def ticket_page(db: Database, ticket_id: int) -> TicketPage | None:
    """Everything a ticket's page shows; None if there is no such ticket."""
    tickets = TicketRepository(db)
    ticket = tickets.get(ticket_id)
    if ticket is None:
        return None
    order = (
        OrderRepository(db).get_for_customer(ticket.order_id, ticket.customer_id)
        if ticket.order_id is not None
        else None
    )
    return TicketPage(
        ticket=ticket,
        order=order,
        messages=RelayMap(db).for_ticket(ticket_id),
        events=tickets.events(ticket_id),
        customer=customer_card(db, ticket.customer_id, besides=ticket_id),
    )
