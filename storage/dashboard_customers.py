"""Customer search and the customer profile as the dashboard shows them (reads only).

Everything here runs in a worker thread on a connection of its own (the dashboard's
``off_loop``): a search over a million customers is a table scan of a few tenths of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso
from bot.models import full_name
from bot.segments import Segment
from bot.tickets import Ticket
from storage.repositories import like_escaped
from storage.segments import CustomerProfile, OrderLine, SegmentRepository, StoredStats
from storage.tickets import TicketRepository


def _moment(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


@dataclass(frozen=True)
class CustomerHit:
    """One search result."""

    id: int
    name: str
    external_id: str | None
    telegram_user_id: int | None
    username: str | None
    email: str | None
    country: str | None
    last_seen_at: datetime | None
    segment: Segment | None
    key_customer: bool
    orders: int
    spend: float | None


def _hit(row: dict[str, Any]) -> CustomerHit:
    return CustomerHit(
        id=row["id"],
        name=full_name(row["first_name"], row["last_name"]),
        external_id=row["external_id"],
        telegram_user_id=row["telegram_user_id"],
        username=row["username"],
        email=row["email"],
        country=row["country"],
        last_seen_at=_moment(row["last_seen_at"]),
        segment=Segment(row["segment"]) if row["segment"] else None,
        key_customer=bool(row["key_customer"]),
        orders=row["orders"] or 0,
        spend=row["spend"],
    )


_SEARCH = """
    SELECT c.id, c.first_name, c.last_name, c.external_id, c.telegram_user_id, c.username,
           c.email, c.country, c.last_seen_at, s.segment, s.key_customer, s.orders, s.spend
    FROM customers c LEFT JOIN customer_stats s ON s.customer_id = c.id
"""
_NAME = "(c.first_name || ' ' || coalesce(c.last_name, ''))"


def search_customers(db: Database, query: str, *, limit: int, offset: int) -> list[CustomerHit]:
    """Customers matching a name, @username, shop (external) id, Telegram id or email.

    Exact matches on an id, username or email come first, then names starting with the
    query, then the rest; without a query, the customers who wrote most recently.
    """
    query = query.strip()
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if not query:
        sql = _SEARCH + " ORDER BY c.last_seen_at DESC NULLS LAST, s.spend DESC NULLS LAST, c.id"
    else:
        bare = query.removeprefix("@")
        params.update(
            exact=query,
            bare=bare.lower(),
            number=int(query) if query.isdigit() and len(query) < 19 else None,
            contains=f"%{like_escaped(query)}%",
            prefix=f"{like_escaped(query)}%",
            bare_contains=f"%{like_escaped(bare)}%",
        )
        sql = (
            _SEARCH
            + f"""
            WHERE {_NAME} LIKE :contains ESCAPE '\\'
               OR c.username LIKE :bare_contains ESCAPE '\\'
               OR c.email LIKE :contains ESCAPE '\\'
               OR c.external_id LIKE :prefix ESCAPE '\\'
               OR c.telegram_user_id = :number
            ORDER BY CASE
                WHEN c.external_id = :exact OR c.telegram_user_id = :number
                     OR lower(c.username) = :bare OR lower(c.email) = lower(:exact) THEN 0
                WHEN {_NAME} LIKE :prefix ESCAPE '\\' THEN 1
                ELSE 2 END,
                s.spend DESC NULLS LAST, c.id
            """
        )
    sql += " LIMIT :limit OFFSET :offset"
    return [_hit(row) for row in db.query(sql, params)]


@dataclass(frozen=True)
class ItemLine:
    sku: str
    description: str
    quantity: int
    unit_price: float
    is_product: bool


@dataclass(frozen=True)
class SurveyAnswer:
    id: int
    kind: str
    status: str
    order_external_id: str | None
    ticket_id: int | None
    sent_at: datetime | None
    answered_at: datetime | None
    score: int | None
    comment: str | None
    nps: int | None


@dataclass(frozen=True)
class ReminderReceived:
    campaign_id: int
    campaign: str
    occasion: str
    status: str
    reason: str | None
    due_at: datetime
    sent_at: datetime | None
    response: str | None
    clicks: int


@dataclass(frozen=True)
class MessageLine:
    direction: str
    kind: str
    text: str | None
    at: datetime


@dataclass(frozen=True)
class CustomerFile:
    """Everything the profile page shows about one customer."""

    contact: CustomerProfile
    stats: StoredStats | None
    orders: list[tuple[OrderLine, list[ItemLine]]]
    order_count: int
    tickets: list[Ticket]
    surveys: list[SurveyAnswer]
    reminders: list[ReminderReceived]
    messages: list[MessageLine]


def orders_with_items(
    db: Database, customer_id: int, *, limit: int, offset: int
) -> list[tuple[OrderLine, list[ItemLine]]]:
    """Orders and returns, newest first, each with its lines (fees included, marked)."""
    orders = SegmentRepository(db).recent_orders(customer_id, limit, offset)
    items: dict[int, list[ItemLine]] = {o.id: [] for o in orders}
    if orders:
        marks = ", ".join("?" * len(orders))
        for r in db.query(
            f"""SELECT order_id, sku, description, quantity, unit_price, is_product
                FROM order_items WHERE order_id IN ({marks}) ORDER BY order_id, line_no""",
            list(items),
        ):
            items[r.pop("order_id")].append(ItemLine(**{**r, "is_product": bool(r["is_product"])}))
    return [(o, items[o.id]) for o in orders]


def survey_answers(db: Database, customer_id: int, limit: int = 50) -> list[SurveyAnswer]:
    """Surveys sent to the customer (answered or not), newest first; planned ones left out."""
    rows = db.query(
        """SELECT s.id, s.kind, s.status, o.external_id AS order_external_id, s.ticket_id,
                  s.sent_at, s.answered_at, s.score, s.comment, s.nps
           FROM surveys s LEFT JOIN orders o ON o.id = s.order_id
           WHERE s.customer_id = ? AND s.sent_at IS NOT NULL
           ORDER BY s.sent_at DESC, s.id DESC LIMIT ?""",
        [customer_id, limit],
    )
    return [
        SurveyAnswer(
            **{**r, "sent_at": _moment(r["sent_at"]), "answered_at": _moment(r["answered_at"])}
        )
        for r in rows
    ]


def reminders_received(db: Database, customer_id: int, limit: int = 50) -> list[ReminderReceived]:
    """Campaign reminders planned for the customer (sent, skipped or still pending)."""
    rows = db.query(
        """SELECT c.id AS campaign_id, c.name AS campaign, c.occasion, d.status, d.reason,
                  d.due_at, d.sent_at, d.response, d.clicks
           FROM campaign_deliveries d JOIN campaigns c ON c.id = d.campaign_id
           WHERE d.customer_id = ? ORDER BY d.due_at DESC, d.id DESC LIMIT ?""",
        [customer_id, limit],
    )
    return [
        ReminderReceived(**{**r, "due_at": from_iso(r["due_at"]), "sent_at": _moment(r["sent_at"])})
        for r in rows
    ]


def recent_messages(db: Database, customer_id: int, limit: int = 30) -> list[MessageLine]:
    """The latest messages in and out of the customer's private chat, oldest first (not what
    the staff chat got about them, such as ticket cards)."""
    rows = db.query(
        """SELECT m.direction, m.kind, m.text, m.created_at
           FROM messages m JOIN customers c ON c.id = m.customer_id
           WHERE m.customer_id = ? AND m.chat_id = c.telegram_chat_id
           ORDER BY m.id DESC LIMIT ?""",
        [customer_id, limit],
    )
    lines = [
        MessageLine(r["direction"], r["kind"], r["text"], from_iso(r["created_at"])) for r in rows
    ]
    return lines[::-1]


def customer_file(
    db: Database, customer_id: int, *, orders_limit: int, orders_offset: int
) -> CustomerFile | None:
    """The profile page's data in one pass over one connection."""
    segments = SegmentRepository(db)
    contact = segments.profile_by_id(customer_id)
    if contact is None:
        return None
    return CustomerFile(
        contact=contact,
        stats=segments.stats_for(customer_id),
        orders=orders_with_items(db, customer_id, limit=orders_limit, offset=orders_offset),
        order_count=segments.order_count(customer_id),
        tickets=TicketRepository(db).for_customer(customer_id, limit=50),
        surveys=survey_answers(db, customer_id),
        reminders=reminders_received(db, customer_id),
        messages=recent_messages(db, customer_id),
    )
