"""Tickets on a real SQLite file: states with their history, SLA due times in business
hours, breaches recorded once, the relay map, drafts, and the migration of old requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import FixedClock
from bot.config import Config
from bot.sla import Priority
from bot.tickets import Actor, Breach, DraftMessage, TicketDraft, TicketKind, TicketService
from storage.database import open_database
from storage.migrations import MIGRATIONS
from storage.repositories import Repositories
from storage.tickets import DeskStores

MARIA = Actor("staff", 701, "Maria")


def service_over(repos: Repositories, config: Config) -> tuple[TicketService, DeskStores]:
    desk = DeskStores.over(repos.db)
    return TicketService(desk.tickets, config.sla_policy(), config.ticket_settings()), desk


def test_due_times_count_support_hours_only(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, _ = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=UTC))  # Monday 20:00 London: closed
    ticket = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    # open again Saturday 10:00-14:00: 4 business hours end at 14:00
    assert ticket.first_response_due == datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    assert ticket.priority == Priority.NORMAL
    key = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now(), key_customer=True)
    assert key.ticket.priority == Priority.HIGH  # a key customer starts higher


def test_a_ticket_claimed_by_name_only_stays_with_its_claimer(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, _ = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    alex = Actor("staff", None, "Alex")  # a dashboard account with no Telegram id
    claimed = tickets.claim(ticket, alex, clock.now())
    replied = tickets.staff_replied(claimed, MARIA, clock.now())
    assert (replied.assignee_id, replied.assignee_name) == (None, "Alex")
    assert replied.status == "answered"


def test_a_message_goes_to_the_newest_active_ticket_else_a_reopenable_one(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, _ = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    assert tickets.conversation_for(ann, clock.now()) is None  # no ticket yet
    older = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    newer = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    assert tickets.conversation_for(ann, clock.now()) == newer
    resolved = tickets.resolve(newer, MARIA, clock.now())
    assert resolved is not None
    # an active ticket wins over a newer resolved one
    assert tickets.conversation_for(ann, clock.now()) == older
    assert tickets.resolve(older, MARIA, clock.now()) is not None
    # none active: the newest one, while it can still be reopened
    assert tickets.conversation_for(ann, clock.now()) == tickets.get(newer.id)
    clock.advance(timedelta(days=8))
    assert tickets.conversation_for(ann, clock.now()) is None


def test_states_and_their_history(repos: Repositories, config: Config, clock: FixedClock) -> None:
    tickets, desk = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.INQUIRY, "menu", clock.now()).ticket
    again = tickets.open(ann, TicketKind.INQUIRY, "no_match", clock.now())
    assert not again.created
    assert again.ticket.id == ticket.id  # one conversation at a time
    clock.advance(timedelta(minutes=30))
    answered = tickets.staff_replied(ticket, MARIA, clock.now())
    assert answered.status == "answered"
    assert answered.first_response_at == clock.now()
    assert answered.pending_checks() == [(Breach.RESOLUTION, answered.resolution_due)]
    assert tickets.customer_wrote(answered, clock.now()).ticket.status == "open"
    resolved = tickets.resolve(answered, MARIA, clock.now())
    assert resolved is not None
    assert resolved.status == "resolved"
    assert tickets.resolve(resolved, MARIA, clock.now()) is None  # not twice
    clock.advance(timedelta(days=8))
    assert tickets.conversation_for(ann, clock.now()) is None  # past the reopen window
    assert tickets.close_stale(clock.now()) == [ticket.id]
    history = [(e.event, e.from_status, e.to_status) for e in desk.tickets.events(ticket.id)]
    assert history == [
        ("created", None, "open"),
        ("staff_replied", "open", "answered"),
        ("customer_replied", "answered", "open"),
        ("resolved", "open", "resolved"),
        ("closed", "resolved", "closed"),
    ]


def test_a_breach_is_recorded_once_and_not_after_the_target_is_met(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, _ = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.INQUIRY, "menu", clock.now()).ticket
    assert tickets.breaches_due(ticket.id, clock.now())[1] == []
    clock.advance(timedelta(hours=5))
    after, found = tickets.breaches_due(ticket.id, clock.now())
    assert found == [Breach.FIRST_RESPONSE]
    assert after is not None
    assert after.first_response_breached_at == clock.now()
    assert tickets.breaches_due(ticket.id, clock.now())[1] == []
    other = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    tickets.staff_replied(other, MARIA, clock.now())
    clock.advance(timedelta(days=30))  # 24 support hours: the demo shop opens 7 h a week
    assert tickets.breaches_due(other.id, clock.now())[1] == [Breach.RESOLUTION]


def test_priority_change_moves_the_running_targets(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, _ = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    urgent = tickets.shift_priority(ticket, 5, MARIA, clock.now())  # clamped at urgent
    assert urgent.priority == Priority.URGENT
    assert urgent.first_response_due == clock.now() + timedelta(hours=1)
    assert urgent.resolution_due == clock.now() + timedelta(hours=4)


def test_relay_map_links_both_ways_and_stores_once(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, desk = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.INQUIRY, "menu", clock.now()).ticket
    values = {
        "direction": "from_customer",
        "kind": "text",
        "text": "hello",
        "source_chat_id": 1001,
        "source_message_id": 5,
        "author": Actor("customer", ann),
        "now": clock.now(),
    }
    record = desk.relays.record(ticket.id, **values)  # type: ignore[arg-type]
    assert record is not None
    assert desk.relays.record(ticket.id, **values) is None  # type: ignore[arg-type]
    assert [r.id for r in desk.relays.undelivered()] == [record.id]
    desk.relays.delivered(record.id, -100, 77, clock.now())
    original = desk.relays.by_message(1001, 5)
    copy = desk.relays.by_message(-100, 77)
    assert original == copy
    assert desk.relays.undelivered() == []


def test_a_draft_survives_a_reopened_connection(tmp_path: Path, clock: FixedClock) -> None:
    repos = Repositories.over(open_database(tmp_path / "d.db"))
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    draft = TicketDraft(ann, "describe", None, "late", (DraftMessage(1001, 9, "photo", None),))
    DeskStores.over(repos.db).drafts.save(draft, clock.now())
    repos.db.close()
    reopened = DeskStores.over(open_database(tmp_path / "d.db"))
    assert reopened.drafts.get(ann) == draft


def test_open_handoff_requests_become_tickets(tmp_path: Path) -> None:
    db = open_database(tmp_path / "old.db", migrate=False)
    MIGRATIONS.apply(db, stop_before="m003_tickets")
    db.execute(
        """INSERT INTO customers (id, first_name, created_at, updated_at)
           VALUES (1, 'Ann', '2026-11-01T10:00:00+00:00', '2026-11-01T10:00:00+00:00')"""
    )
    for reason, question, status in [
        ("complaint", "broken mug", "open"),
        ("no_match", "paypal?", "open"),
        ("menu", None, "closed"),
    ]:
        db.execute(
            """INSERT INTO handoff_requests (customer_id, reason, question, status, created_at)
               VALUES (1, ?, ?, ?, '2026-11-20T10:00:00+00:00')""",
            [reason, question, status],
        )
    MIGRATIONS.apply(db)
    rows = list(db.query("SELECT kind, source, subject, status FROM tickets ORDER BY id"))
    assert rows == [
        {"kind": "complaint", "source": "complaint", "subject": "broken mug", "status": "open"},
        {"kind": "inquiry", "source": "no_match", "subject": "paypal?", "status": "open"},
    ]
    assert "handoff_requests" not in db.table_names()


def test_reopening_keeps_a_missed_resolution_on_record(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, _ = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.COMPLAINT, "complaint", clock.now()).ticket
    ticket = tickets.staff_replied(ticket, MARIA, clock.now())
    clock.advance(timedelta(days=30))
    assert tickets.breaches_due(ticket.id, clock.now())[1] == [Breach.RESOLUTION]
    resolved = tickets.resolve(ticket, MARIA, clock.now())
    assert resolved is not None
    reopened = tickets.customer_wrote(resolved, clock.now())
    assert reopened.reopened
    assert reopened.ticket.resolution_breached_at is not None  # still counted as missed


def test_migrated_tickets_get_due_times_from_the_upgrade_not_their_creation(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    tickets, desk = service_over(repos, config)
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    ticket = tickets.open(ann, TicketKind.INQUIRY, "menu", clock.now() - timedelta(days=60))
    desk.tickets.update(
        ticket.ticket.id,
        actor=Actor.system(),
        now=clock.now(),
        event="test",
        changes={"first_response_due": None, "resolution_due": None},
    )
    stored = desk.tickets.get(ticket.ticket.id)
    assert stored is not None
    dued = tickets.ensure_dues(stored, clock.now())
    assert dued.first_response_due == clock.now() + timedelta(hours=4)
