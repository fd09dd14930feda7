"""Tickets: complaints and inquiries handed to people, with their states and SLA clocks.

A ticket moves open -> answered (waiting for the customer) -> resolved -> reopened/closed;
every change is stored with its time and actor. SLA due times are counted in business
time (support hours in the shop's timezone, minus holidays) and stored on the ticket, so
the scheduler can be rebuilt from the database at any start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.sla import BusinessCalendar, Priority


class TicketStatus(StrEnum):
    OPEN = "open"  # waiting for staff
    ANSWERED = "answered"  # waiting for the customer
    RESOLVED = "resolved"
    REOPENED = "reopened"  # the customer wrote again after resolution: waiting for staff
    CLOSED = "closed"


ACTIVE_STATUSES = (TicketStatus.OPEN, TicketStatus.ANSWERED, TicketStatus.REOPENED)
# Waiting for staff (an answer moves these to ANSWERED). The resolution clock runs in every
# active state, waiting for the customer included: it measures the whole time to a fix.
AWAITING_STAFF = (TicketStatus.OPEN, TicketStatus.REOPENED)


class TicketKind(StrEnum):
    COMPLAINT = "complaint"
    INQUIRY = "inquiry"


class Breach(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


PRIORITY_ORDER = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT)
DEFAULT_CATEGORIES = ("damaged", "late", "wrong_item", "missing_item", "refund", "other")


@dataclass(frozen=True)
class Actor:
    """Who did something: a customer, a staff member (Telegram user) or the system."""

    kind: str  # "customer" | "staff" | "system"
    id: int | None = None
    name: str = ""

    @classmethod
    def system(cls) -> Actor:
        return cls("system", None, "carebot")


@dataclass(frozen=True)
class Ticket:
    id: int
    customer_id: int
    kind: TicketKind
    source: str
    status: TicketStatus
    priority: Priority
    created_at: datetime
    updated_at: datetime
    category: str | None = None
    order_id: int | None = None
    subject: str | None = None
    assignee_id: int | None = None
    assignee_name: str | None = None
    staff_chat_id: int | None = None
    staff_thread_id: int | None = None
    card_message_id: int | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    first_response_breached_at: datetime | None = None
    resolution_breached_at: datetime | None = None
    satisfaction: int | None = None

    @property
    def assigned(self) -> bool:
        """Someone has it: a Telegram user, or a name only (a dashboard account without a
        Telegram id, an anonymous group admin)."""
        return self.assignee_id is not None or bool(self.assignee_name)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def posted(self) -> bool:
        """Already has its place in the staff chat (topic, or card message to reply to)."""
        return self.card_message_id is not None

    def pending_checks(self) -> list[tuple[Breach, datetime]]:
        """SLA targets still running (not met, not breached), with their due times."""
        checks: list[tuple[Breach, datetime]] = []
        if (
            self.first_response_at is None
            and self.first_response_breached_at is None
            and self.first_response_due is not None
            and self.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        ):
            checks.append((Breach.FIRST_RESPONSE, self.first_response_due))
        if (
            self.resolution_breached_at is None
            and self.resolution_due is not None
            and self.status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED)
        ):
            checks.append((Breach.RESOLUTION, self.resolution_due))
        return checks

    def next_due(self) -> datetime | None:
        dues = [due for _, due in self.pending_checks()]
        return min(dues) if dues else None


@dataclass(frozen=True)
class TicketDraft:
    """A complaint being written: which order, which category, what the customer said."""

    customer_id: int
    step: str  # "order" | "category" | "describe"
    order_id: int | None = None
    category: str | None = None
    messages: tuple[DraftMessage, ...] = ()


@dataclass(frozen=True)
class DraftMessage:
    chat_id: int
    message_id: int
    kind: str
    text: str | None = None


@dataclass(frozen=True)
class RelayRecord:
    """One message of a ticket's conversation, and where it was copied to."""

    id: int
    ticket_id: int
    direction: str  # "from_customer" | "to_customer" | "note"
    kind: str
    text: str | None
    source_chat_id: int
    source_message_id: int
    target_chat_id: int | None
    target_message_id: int | None
    relay_status: str  # "pending" | "delivered" | "failed" | "internal"
    author_id: int | None = None
    author_name: str | None = None
    reply_to_message_id: int | None = None  # in the source chat: what this message answered
    relay_error: str | None = None
    created_at: datetime | None = None

    @property
    def author(self) -> Actor:
        kind = "customer" if self.direction == "from_customer" else "staff"
        return Actor(kind, self.author_id, self.author_name or "")


@dataclass(frozen=True)
class TicketEvent:
    at: datetime
    event: str
    actor: Actor
    from_status: str | None = None
    to_status: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class NewTicket:
    customer_id: int
    kind: TicketKind
    source: str
    priority: Priority
    created_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    category: str | None = None
    order_id: int | None = None
    subject: str | None = None


class TicketStore(Protocol):
    def create(self, ticket: NewTicket, actor: Actor) -> Ticket: ...
    def get(self, ticket_id: int) -> Ticket | None: ...
    def newest_for_customer(self, customer_id: int) -> Ticket | None: ...
    def active_for_customer(self, customer_id: int) -> list[Ticket]: ...
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
    ) -> Ticket | None: ...
    def update(
        self,
        ticket_id: int,
        *,
        actor: Actor,
        now: datetime,
        event: str,
        changes: dict[str, object],
        detail: str | None = None,
    ) -> Ticket: ...
    def record_breach(self, ticket_id: int, breach: Breach, now: datetime) -> bool: ...
    def stale_resolved(self, resolved_before: datetime) -> list[int]: ...


@dataclass(frozen=True)
class SlaPolicy:
    calendar: BusinessCalendar
    first_response: dict[Priority, timedelta]
    resolution: dict[Priority, timedelta]

    def dues(
        self, created_at: datetime, priority: Priority
    ) -> tuple[datetime | None, datetime | None]:
        return (
            self.calendar.add(created_at, self.first_response[priority]),
            self.calendar.add(created_at, self.resolution[priority]),
        )


@dataclass(frozen=True)
class TicketSettings:
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    reopen_days: int = 7
    default_priority: Priority = Priority.NORMAL
    key_customer_priority: Priority = Priority.HIGH


@dataclass(frozen=True)
class Opened:
    ticket: Ticket
    created: bool  # False: the customer's open ticket was reused


@dataclass(frozen=True)
class CustomerWrote:
    ticket: Ticket
    reopened: bool = False


class TicketService:
    """Decides ticket states; the store makes each change atomic and records the event."""

    def __init__(self, store: TicketStore, policy: SlaPolicy, settings: TicketSettings) -> None:
        self.store = store
        self.policy = policy
        self.settings = settings

    def get(self, ticket_id: int) -> Ticket | None:
        return self.store.get(ticket_id)

    def active_for(self, customer_id: int) -> list[Ticket]:
        return self.store.active_for_customer(customer_id)

    def conversation_for(self, customer_id: int, now: datetime) -> Ticket | None:
        """The ticket a customer's next message belongs to: their newest active one, else
        their latest ticket if it is resolved and still inside the reopen window."""
        newest = self.store.newest_for_customer(customer_id)  # an active one if there is one
        if newest is not None and (newest.active or self.reopenable(newest, now)):
            return newest
        return None

    def reopenable(self, ticket: Ticket, now: datetime) -> bool:
        return (
            ticket.status == TicketStatus.RESOLVED
            and ticket.resolved_at is not None
            and now - ticket.resolved_at <= timedelta(days=self.settings.reopen_days)
        )

    def open(
        self,
        customer_id: int,
        kind: TicketKind,
        source: str,
        now: datetime,
        *,
        category: str | None = None,
        order_id: int | None = None,
        subject: str | None = None,
        key_customer: bool = False,
    ) -> Opened:
        """Open a ticket; an inquiry while another ticket is active joins that one instead."""
        if kind == TicketKind.INQUIRY:
            current = self.conversation_for(customer_id, now)
            if current is not None:
                return Opened(current, created=False)
        priority = (
            self.settings.key_customer_priority if key_customer else self.settings.default_priority
        )
        first_due, resolution_due = self.policy.dues(now, priority)
        ticket = self.store.create(
            NewTicket(
                customer_id=customer_id,
                kind=kind,
                source=source,
                priority=priority,
                created_at=now,
                first_response_due=first_due,
                resolution_due=resolution_due,
                category=category,
                order_id=order_id,
                subject=subject,
            ),
            Actor("customer", customer_id),
        )
        return Opened(ticket, created=True)

    def customer_wrote(self, ticket: Ticket, now: datetime) -> CustomerWrote:
        """The customer wrote into the ticket: it waits for staff again (reopening if resolved)."""
        actor = Actor("customer", ticket.customer_id)
        if ticket.status == TicketStatus.ANSWERED:
            changed = self.store.transition(
                ticket.id,
                allowed_from=(TicketStatus.ANSWERED,),
                to=TicketStatus.OPEN,
                actor=actor,
                now=now,
                event="customer_replied",
            )
            return CustomerWrote(changed or ticket)
        if ticket.status == TicketStatus.RESOLVED and self.reopenable(ticket, now):
            # A reopened ticket gets a fresh resolution clock from now, unless it already
            # missed its target: that miss stays on record (reports count it).
            changes: dict[str, object] = {"resolved_at": None}
            if ticket.resolution_breached_at is None:
                changes["resolution_due"] = self.policy.dues(now, ticket.priority)[1]
            changed = self.store.transition(
                ticket.id,
                allowed_from=(TicketStatus.RESOLVED,),
                to=TicketStatus.REOPENED,
                actor=actor,
                now=now,
                event="reopened",
                changes=changes,
            )
            return CustomerWrote(changed or ticket, reopened=changed is not None)
        return CustomerWrote(ticket)

    def staff_replied(self, ticket: Ticket, staff: Actor, now: datetime) -> Ticket:
        """A reply reached the customer: first response recorded, now waiting for them."""
        changes: dict[str, object] = {}
        if ticket.first_response_at is None:
            changes.update(
                first_response_at=now, first_responder_id=staff.id, first_responder_name=staff.name
            )
        if not ticket.assigned:
            changes.update(assignee_id=staff.id, assignee_name=staff.name)
        if ticket.status in AWAITING_STAFF:
            changed = self.store.transition(
                ticket.id,
                allowed_from=AWAITING_STAFF,
                to=TicketStatus.ANSWERED,
                actor=staff,
                now=now,
                event="staff_replied",
                changes=changes,
            )
            if changed is not None:
                return changed
        if changes:
            return self.store.update(
                ticket.id, actor=staff, now=now, event="staff_replied", changes=changes
            )
        return ticket

    def claim(self, ticket: Ticket, staff: Actor, now: datetime) -> Ticket:
        return self.store.update(
            ticket.id,
            actor=staff,
            now=now,
            event="claimed",
            changes={"assignee_id": staff.id, "assignee_name": staff.name},
        )

    def resolve(self, ticket: Ticket, actor: Actor, now: datetime) -> Ticket | None:
        """Resolve an active ticket; None if it was not active (already resolved/closed)."""
        return self.store.transition(
            ticket.id,
            allowed_from=ACTIVE_STATUSES,
            to=TicketStatus.RESOLVED,
            actor=actor,
            now=now,
            event="resolved",
            changes={
                "resolved_at": now,
                "resolved_by_id": actor.id,
                "resolved_by_name": actor.name,
            },
        )

    def set_priority(
        self, ticket: Ticket, priority: Priority, actor: Actor, now: datetime
    ) -> Ticket:
        """Change priority; SLA targets still running are recomputed from when they started."""
        if priority == ticket.priority:
            return ticket
        first_due, resolution_due = self.policy.dues(ticket.created_at, priority)
        changes: dict[str, object] = {"priority": priority.value}
        if ticket.first_response_at is None and ticket.first_response_breached_at is None:
            changes["first_response_due"] = first_due
        if ticket.resolution_breached_at is None and ticket.status != TicketStatus.REOPENED:
            changes["resolution_due"] = resolution_due
        return self.store.update(
            ticket.id,
            actor=actor,
            now=now,
            event="priority",
            changes=changes,
            detail=f"{ticket.priority.value} -> {priority.value}",
        )

    def shift_priority(self, ticket: Ticket, steps: int, actor: Actor, now: datetime) -> Ticket:
        index = PRIORITY_ORDER.index(ticket.priority) + steps
        index = max(0, min(len(PRIORITY_ORDER) - 1, index))
        return self.set_priority(ticket, PRIORITY_ORDER[index], actor, now)

    def breaches_due(self, ticket_id: int, now: datetime) -> tuple[Ticket | None, list[Breach]]:
        """Targets of the ticket that are now missed, each recorded (and returned) once."""
        ticket = self.store.get(ticket_id)
        if ticket is None:
            return None, []
        found = [
            breach
            for breach, due in ticket.pending_checks()
            if due <= now and self.store.record_breach(ticket.id, breach, now)
        ]
        return self.store.get(ticket_id), found

    def ensure_dues(self, ticket: Ticket, now: datetime) -> Ticket:
        """Tickets from before SLA tracking (migrated requests) get due times counted from
        now: counting from their creation would flood staff with breaches at the upgrade."""
        if ticket.first_response_due is not None or ticket.resolution_due is not None:
            return ticket
        first_due, resolution_due = self.policy.dues(now, ticket.priority)
        return self.store.update(
            ticket.id,
            actor=Actor.system(),
            now=now,
            event="sla_set",
            changes={"first_response_due": first_due, "resolution_due": resolution_due},
        )

    def close_stale(self, now: datetime) -> list[int]:
        """Close resolved tickets whose reopen window has passed."""
        cutoff = now - timedelta(days=self.settings.reopen_days)
        closed = []
        for ticket_id in self.store.stale_resolved(cutoff):
            if self.store.transition(
                ticket_id,
                allowed_from=(TicketStatus.RESOLVED,),
                to=TicketStatus.CLOSED,
                actor=Actor.system(),
                now=now,
                event="closed",
                changes={"closed_at": now},
            ):
                closed.append(ticket_id)
        return closed

    def category_allowed(self, category: str) -> bool:
        return category in self.settings.categories
