"""Tickets, their event history, the relayed-message map, complaint drafts, canned replies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from bot.sla import Priority
from bot.tickets import (
    ACTIVE_STATUSES,
    Actor,
    Breach,
    DraftMessage,
    NewTicket,
    RelayRecord,
    Ticket,
    TicketDraft,
    TicketEvent,
    TicketKind,
    TicketStatus,
)
from storage.database import write_transaction
from storage.repositories import CustomerRepository, OrderRepository, all_rows, one_row
from storage.segments import SegmentRepository
from storage.surveys import SurveyRepository

# The "chat" of ticket messages written on the web dashboard with no Telegram copy to key them
# by (Telegram chat ids are never 0).
DASHBOARD_CHAT_ID = 0

_ACTIVE_MARKS = ", ".join("?" for _ in ACTIVE_STATUSES)

_TIME_FIELDS = (
    "created_at",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "first_response_due",
    "resolution_due",
    "first_response_breached_at",
    "resolution_breached_at",
)
_TICKET_FIELDS = (
    "id",
    "customer_id",
    "source",
    "category",
    "order_id",
    "subject",
    "assignee_id",
    "assignee_name",
    "staff_chat_id",
    "staff_thread_id",
    "card_message_id",
    "satisfaction",
)


def _time(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def ticket_from_row(row: dict[str, Any]) -> Ticket:
    """A ``tickets`` row as a Ticket (other columns a query joins in are ignored)."""
    times: dict[str, Any] = {name: _time(row[name]) for name in _TIME_FIELDS}
    created, updated = times.pop("created_at"), times.pop("updated_at")
    assert created is not None
    assert updated is not None
    return Ticket(
        kind=TicketKind(row["kind"]),
        status=TicketStatus(row["status"]),
        priority=Priority(row["priority"]),
        created_at=created,
        updated_at=updated,
        **{name: row[name] for name in _TICKET_FIELDS},
        **times,
    )


def _stored(value: object) -> object:
    """Python values as stored: times as UTC ISO text, enums as their value."""
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, Priority | TicketStatus | TicketKind):
        return value.value
    return value


class TicketRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, ticket: NewTicket, actor: Actor) -> Ticket:
        now = to_iso(ticket.created_at)
        with write_transaction(self.db):
            cursor = self.db.execute(
                """INSERT INTO tickets (customer_id, kind, source, category, order_id, subject,
                       status, priority, created_at, updated_at, first_response_due,
                       resolution_due)
                   VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)""",
                [
                    ticket.customer_id,
                    ticket.kind.value,
                    ticket.source,
                    ticket.category,
                    ticket.order_id,
                    ticket.subject,
                    ticket.priority.value,
                    now,
                    now,
                    _stored(ticket.first_response_due),
                    _stored(ticket.resolution_due),
                ],
            )
            ticket_id = cursor.lastrowid
            assert ticket_id is not None
            self._event(ticket_id, ticket.created_at, "created", actor, None, "open", None)
        created = self.get(ticket_id)
        assert created is not None
        return created

    def get(self, ticket_id: int) -> Ticket | None:
        row = one_row(self.db, "SELECT * FROM tickets WHERE id = ?", [ticket_id])
        return ticket_from_row(row) if row else None

    def by_topic(self, chat_id: int, thread_id: int) -> Ticket | None:
        row = one_row(
            self.db,
            "SELECT * FROM tickets WHERE staff_chat_id = ? AND staff_thread_id = ?",
            [chat_id, thread_id],
        )
        return ticket_from_row(row) if row else None

    def by_card(self, chat_id: int, message_id: int) -> Ticket | None:
        row = one_row(
            self.db,
            "SELECT * FROM tickets WHERE staff_chat_id = ? AND card_message_id = ?",
            [chat_id, message_id],
        )
        return ticket_from_row(row) if row else None

    def newest_for_customer(self, customer_id: int) -> Ticket | None:
        """The customer's newest active ticket, else their newest ticket of any status.

        One query (not "active ones, then the latest"): it runs for every customer message.
        """
        row = one_row(
            self.db,
            f"""SELECT * FROM tickets WHERE customer_id = ?
                ORDER BY status IN ({_ACTIVE_MARKS}) DESC, id DESC LIMIT 1""",
            [customer_id, *ACTIVE_STATUSES],
        )
        return ticket_from_row(row) if row else None

    def active_for_customer(self, customer_id: int) -> list[Ticket]:
        rows = all_rows(
            self.db,
            f"""SELECT * FROM tickets WHERE customer_id = ? AND status IN ({_ACTIVE_MARKS})
                ORDER BY id""",
            [customer_id, *ACTIVE_STATUSES],
        )
        return [ticket_from_row(r) for r in rows]

    def for_customer(self, customer_id: int, *, limit: int = 10) -> list[Ticket]:
        rows = self.db.query(
            "SELECT * FROM tickets WHERE customer_id = ? ORDER BY id DESC LIMIT ?",
            [customer_id, limit],
        )
        return [ticket_from_row(r) for r in rows]

    def with_pending_checks(self) -> list[Ticket]:
        """Tickets whose SLA clocks may still be running (rebuilt into jobs at start)."""
        rows = self.db.query(
            """SELECT * FROM tickets WHERE status NOT IN ('resolved', 'closed')
               AND ((first_response_at IS NULL AND first_response_breached_at IS NULL)
                    OR resolution_breached_at IS NULL)"""
        )
        return [ticket_from_row(r) for r in rows]

    def unposted(self) -> list[Ticket]:
        """Active tickets not yet placed in the staff chat (no staff chat then, or it failed)."""
        rows = self.db.query(
            f"""SELECT * FROM tickets WHERE card_message_id IS NULL AND status IN ({_ACTIVE_MARKS})
                ORDER BY id""",
            list(ACTIVE_STATUSES),
        )
        return [ticket_from_row(r) for r in rows]

    def listing(self, *, statuses: Sequence[str] = (), limit: int = 50) -> list[Ticket]:
        where, params = "", []
        if statuses:
            where = f"WHERE status IN ({', '.join('?' for _ in statuses)})"
            params = list(statuses)
        rows = self.db.query(
            f"SELECT * FROM tickets {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [ticket_from_row(r) for r in rows]

    def transition(
        self,
        ticket_id: int,
        *,
        allowed_from: Sequence[TicketStatus],
        to: TicketStatus,
        actor: Actor,
        now: datetime,
        event: str,
        changes: dict[str, object] | None = None,
    ) -> Ticket | None:
        """Move to ``to`` only from one of ``allowed_from`` (checked inside the write lock)."""
        with write_transaction(self.db):
            row = one_row(self.db, "SELECT status FROM tickets WHERE id = ?", [ticket_id])
            if row is None or row["status"] not in allowed_from:
                return None
            self._set(ticket_id, {**(changes or {}), "status": to.value}, now)
            self._event(ticket_id, now, event, actor, row["status"], to.value, None)
        return self.get(ticket_id)

    def update(
        self,
        ticket_id: int,
        *,
        actor: Actor,
        now: datetime,
        event: str,
        changes: dict[str, object],
        detail: str | None = None,
    ) -> Ticket:
        with write_transaction(self.db):
            self._set(ticket_id, changes, now)
            self._event(ticket_id, now, event, actor, None, None, detail)
        ticket = self.get(ticket_id)
        assert ticket is not None
        return ticket

    def place(
        self, ticket_id: int, *, chat_id: int, thread_id: int | None, card_message_id: int
    ) -> Ticket:
        """Where the ticket lives in the staff chat (its topic and customer card)."""
        self.db.execute(
            """UPDATE tickets SET staff_chat_id = ?, staff_thread_id = ?, card_message_id = ?
               WHERE id = ?""",
            [chat_id, thread_id, card_message_id, ticket_id],
        )
        ticket = self.get(ticket_id)
        assert ticket is not None
        return ticket

    def record_breach(self, ticket_id: int, breach: Breach, now: datetime) -> bool:
        """Mark a missed target once; False if it was already marked (or met meanwhile)."""
        column = f"{breach.value}_breached_at"
        met = "first_response_at IS NULL AND " if breach == Breach.FIRST_RESPONSE else ""
        with write_transaction(self.db):
            cursor = self.db.execute(
                f"""UPDATE tickets SET {column} = ? WHERE id = ? AND {column} IS NULL AND {met}
                    status NOT IN ('resolved', 'closed')""",
                [to_iso(now), ticket_id],
            )
            if cursor.rowcount != 1:
                return False
            self._event(ticket_id, now, "sla_breach", Actor.system(), None, None, breach.value)
        return True

    def stale_resolved(self, resolved_before: datetime) -> list[int]:
        rows = self.db.query(
            "SELECT id FROM tickets WHERE status = 'resolved' AND resolved_at < ?",
            [to_iso(resolved_before)],
        )
        return [r["id"] for r in rows]

    def events(self, ticket_id: int) -> list[TicketEvent]:
        rows = self.db.query(
            "SELECT * FROM ticket_events WHERE ticket_id = ? ORDER BY id", [ticket_id]
        )
        return [
            TicketEvent(
                at=from_iso(r["at"]),
                event=r["event"],
                actor=Actor(r["actor_kind"], r["actor_id"], r["actor_name"] or ""),
                from_status=r["from_status"],
                to_status=r["to_status"],
                detail=r["detail"],
            )
            for r in rows
        ]

    def add_event(
        self, ticket_id: int, now: datetime, event: str, actor: Actor, detail: str | None = None
    ) -> None:
        self._event(ticket_id, now, event, actor, None, None, detail)

    def _set(self, ticket_id: int, changes: dict[str, object], now: datetime) -> None:
        values = {name: _stored(value) for name, value in changes.items()}
        values["updated_at"] = to_iso(now)
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        self.db.execute(
            f"UPDATE tickets SET {assignments} WHERE id = :ticket_id",
            {**values, "ticket_id": ticket_id},
        )

    def _event(
        self,
        ticket_id: int,
        now: datetime,
        event: str,
        actor: Actor,
        from_status: str | None,
        to_status: str | None,
        detail: str | None,
    ) -> None:
        self.db.execute(
            """INSERT INTO ticket_events (ticket_id, at, event, actor_kind, actor_id, actor_name,
                   from_status, to_status, detail)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                ticket_id,
                to_iso(now),
                event,
                actor.kind,
                actor.id,
                actor.name or None,
                from_status,
                to_status,
                detail,
            ],
        )


def _relay(row: dict[str, Any]) -> RelayRecord:
    return RelayRecord(
        id=row["id"],
        ticket_id=row["ticket_id"],
        direction=row["direction"],
        kind=row["kind"],
        text=row["text"],
        source_chat_id=row["source_chat_id"],
        source_message_id=row["source_message_id"],
        target_chat_id=row["target_chat_id"],
        target_message_id=row["target_message_id"],
        relay_status=row["relay_status"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        reply_to_message_id=row["reply_to_message_id"],
        relay_error=row["relay_error"],
        created_at=_time(row["created_at"]),
    )


class RelayMap:
    """Every message of a ticket's conversation, stored before it is copied, with both ids."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        ticket_id: int,
        *,
        direction: str,
        kind: str,
        text: str | None,
        source_chat_id: int,
        source_message_id: int,
        author: Actor,
        now: datetime,
        reply_to_message_id: int | None = None,
    ) -> RelayRecord | None:
        """Store a message of the ticket (intent first); None if it was already stored."""
        status = "internal" if direction == "note" else "pending"
        cursor = self.db.execute(
            """INSERT INTO ticket_messages (ticket_id, direction, author_id, author_name, kind,
                   text, source_chat_id, source_message_id, reply_to_message_id, relay_status,
                   created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (source_chat_id, source_message_id) DO NOTHING""",
            [
                ticket_id,
                direction,
                author.id,
                author.name or None,
                kind,
                text,
                source_chat_id,
                source_message_id,
                reply_to_message_id,
                status,
                to_iso(now),
            ],
        )
        if cursor.rowcount != 1:
            return None
        return self.get(cursor.lastrowid or 0)

    def get(self, record_id: int) -> RelayRecord | None:
        row = one_row(self.db, "SELECT * FROM ticket_messages WHERE id = ?", [record_id])
        return _relay(row) if row else None

    def delivered(self, record_id: int, chat_id: int, message_id: int, now: datetime) -> None:
        self.db.execute(
            """UPDATE ticket_messages SET relay_status = 'delivered', target_chat_id = ?,
                   target_message_id = ?, relay_error = NULL, relayed_at = ? WHERE id = ?""",
            [chat_id, message_id, to_iso(now), record_id],
        )

    def failed(self, record_id: int, error: str, now: datetime) -> None:
        self.db.execute(
            """UPDATE ticket_messages SET relay_status = 'failed', relay_error = ?, relayed_at = ?
               WHERE id = ?""",
            [error[:500], to_iso(now), record_id],
        )

    def by_message(self, chat_id: int, message_id: int) -> RelayRecord | None:
        """The record a message in a chat belongs to: as the original or as the copy."""
        row = one_row(
            self.db,
            """SELECT * FROM ticket_messages
               WHERE (source_chat_id = :chat AND source_message_id = :message)
                  OR (target_chat_id = :chat AND target_message_id = :message)
               ORDER BY id LIMIT 1""",
            {"chat": chat_id, "message": message_id},
        )
        return _relay(row) if row else None

    def next_dashboard_message_id(self) -> int:
        """The key for a message written on the dashboard without a Telegram copy: one past
        the last such key (taken and used by the caller with no await in between)."""
        row = one_row(
            self.db,
            """SELECT coalesce(max(source_message_id), 0) + 1 AS next FROM ticket_messages
               WHERE source_chat_id = ?""",
            [DASHBOARD_CHAT_ID],
        )
        assert row is not None
        return int(row["next"])

    def undelivered(self, ticket_id: int | None = None) -> list[RelayRecord]:
        """Messages stored but not (yet) copied: resumed at start, oldest first."""
        where = "relay_status = 'pending'"
        params: list[Any] = []
        if ticket_id is not None:
            where += " AND ticket_id = ?"
            params.append(ticket_id)
        rows = self.db.query(f"SELECT * FROM ticket_messages WHERE {where} ORDER BY id", params)
        return [_relay(r) for r in rows]

    def for_ticket(self, ticket_id: int) -> list[RelayRecord]:
        """The conversation (bot posts in the staff chat are only anchors for replies)."""
        rows = self.db.query(
            "SELECT * FROM ticket_messages WHERE ticket_id = ? AND kind != 'bot' ORDER BY id",
            [ticket_id],
        )
        return [_relay(r) for r in rows]


class DraftRepository:
    """Complaints being written, kept in the database so a restart does not lose them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, customer_id: int) -> TicketDraft | None:
        row = one_row(self.db, "SELECT * FROM ticket_drafts WHERE customer_id = ?", [customer_id])
        if row is None:
            return None
        return TicketDraft(
            customer_id=row["customer_id"],
            step=row["step"],
            order_id=row["order_id"],
            category=row["category"],
            messages=tuple(DraftMessage(*m) for m in json.loads(row["messages"])),
        )

    def save(self, draft: TicketDraft, now: datetime) -> None:
        messages = json.dumps(
            [[m.chat_id, m.message_id, m.kind, m.text] for m in draft.messages],
            ensure_ascii=False,
        )
        self.db.execute(
            """INSERT INTO ticket_drafts (customer_id, step, order_id, category, messages,
                   created_at, updated_at)
               VALUES (:customer, :step, :order_id, :category, :messages, :now, :now)
               ON CONFLICT (customer_id) DO UPDATE SET step = :step, order_id = :order_id,
                   category = :category, messages = :messages, updated_at = :now""",
            {
                "customer": draft.customer_id,
                "step": draft.step,
                "order_id": draft.order_id,
                "category": draft.category,
                "messages": messages,
                "now": to_iso(now),
            },
        )

    def discard(self, customer_id: int) -> bool:
        cursor = self.db.execute("DELETE FROM ticket_drafts WHERE customer_id = ?", [customer_id])
        return cursor.rowcount == 1


class CannedReplyRepository:
    """Canned replies written by staff with ``/canned add`` (config ones are defaults)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> dict[str, str]:
        return {
            r["name"]: r["body"] for r in self.db.query("SELECT name, body FROM canned_replies")
        }

    def save(self, name: str, body: str, author_id: int | None, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO canned_replies (name, body, updated_by, updated_at)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET body = excluded.body,
                   updated_by = excluded.updated_by, updated_at = excluded.updated_at""",
            [name, body, author_id, to_iso(now)],
        )

    def delete(self, name: str) -> bool:
        return self.db.execute("DELETE FROM canned_replies WHERE name = ?", [name]).rowcount == 1


@dataclass(frozen=True)
class DeskStores:
    """What the help desk reads and writes besides the ticket service."""

    tickets: TicketRepository
    relays: RelayMap
    drafts: DraftRepository
    canned: CannedReplyRepository
    segments: SegmentRepository
    orders: OrderRepository
    customers: CustomerRepository
    surveys: SurveyRepository

    @classmethod
    def over(cls, db: Database) -> DeskStores:
        return cls(
            tickets=TicketRepository(db),
            relays=RelayMap(db),
            drafts=DraftRepository(db),
            canned=CannedReplyRepository(db),
            segments=SegmentRepository(db),
            orders=OrderRepository(db),
            customers=CustomerRepository(db),
            surveys=SurveyRepository(db),
        )
