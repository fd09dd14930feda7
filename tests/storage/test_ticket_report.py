"""The ticket report over a real SQLite file, with tickets worked through the ticket service.

Support hours are the demo shop's (Monday 09:00-18:00, Saturday 10:00-14:00, London, which
is UTC in November), so business and wall-clock times differ in known ways.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.clock import FixedClock
from bot.config import Config
from bot.models import OrderStatus
from bot.reports import build_report
from bot.tickets import Actor, TicketKind, TicketService
from storage.reports import customer_labels, order_external_id, tickets_created
from storage.repositories import Repositories
from storage.tickets import RelayMap, TicketRepository
from tests.conftest import START

BOB = Actor("staff", 501, "Bob")
CAROL = Actor("staff", 502, "Carol")
STAFF_CHAT = -100123


def monday(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def saturday(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 28, hour, minute, tzinfo=UTC)


# Where the clock stands when the scenario is over.
END = saturday(13)


def make_tickets(repos: Repositories, config: Config) -> dict[str, int]:
    """Five tickets opened on Monday 2026-11-23 and worked on until Saturday; their ids.

    #1 Ann, complaint (damaged, order 536365) 10:00: Bob answers 10:30, resolves 12:00.
    #2 Ben, inquiry 10:15: Carol answers 11:15, resolves Saturday 10:45.
    #3 Cat, complaint (late) 11:00: first response missed at 15:00, Bob answers 17:00.
    #4 Eve, key customer, inquiry 12:00 (high priority): never answered, both targets missed.
    #5 Dan, complaint (damaged) 17:30: Bob answers Saturday 10:30 (1h of business time).
    Bob's last message to Ann could not be delivered.
    """
    clock = FixedClock(START)
    service = TicketService(
        TicketRepository(repos.db), config.sla_policy(), config.ticket_settings()
    )
    relays = RelayMap(repos.db)
    people = {
        name: repos.customers.create_shop_customer(ext, first_name=name, last_name=last, now=START)
        for name, last, ext in [
            ("Ann", "Peeters", "C1"),
            ("Ben", None, "C2"),
            ("Cat", None, "C3"),
            ("Dan", None, "C4"),
            ("Eve", None, "C5"),
        ]
    }
    order = repos.orders.save_order(
        external_id="536365",
        customer_id=people["Ann"],
        status=OrderStatus.DELIVERED,
        placed_at=START - timedelta(days=3),
        currency="GBP",
        items=[],
        now=START,
    )

    def at(moment: datetime) -> datetime:
        clock.set(moment)
        return clock.now()

    def message(ticket_id: int, direction: str, text: str, author: Actor, number: int) -> int:
        record = relays.record(
            ticket_id,
            direction=direction,
            kind="text",
            text=text,
            source_chat_id=STAFF_CHAT if direction != "from_customer" else 7000 + ticket_id,
            source_message_id=number,
            author=author,
            now=clock.now(),
        )
        assert record is not None
        return record.id

    ann = service.open(
        people["Ann"],
        TicketKind.COMPLAINT,
        "complaint",
        at(monday(10)),
        category="damaged",
        order_id=order,
    ).ticket
    sent = message(ann.id, "from_customer", "My mug arrived\nbroken", Actor("customer"), 1)
    relays.delivered(sent, STAFF_CHAT, 11, clock.now())
    ben = service.open(people["Ben"], TicketKind.INQUIRY, "handoff", at(monday(10, 15))).ticket
    ann = service.staff_replied(ann, BOB, at(monday(10, 30)))
    sent = message(ann.id, "to_customer", "Sorry! A new one is on its way.", BOB, 12)
    relays.delivered(sent, 7000 + ann.id, 2, clock.now())
    cat = service.open(
        people["Cat"], TicketKind.COMPLAINT, "complaint", at(monday(11)), category="late"
    ).ticket
    message(ann.id, "note", "replacement sent with DPD", BOB, 13)
    ben = service.staff_replied(ben, CAROL, at(monday(11, 15)))
    eve = service.open(
        people["Eve"], TicketKind.INQUIRY, "handoff", at(monday(12)), key_customer=True
    ).ticket
    sent = message(ann.id, "to_customer", "Anything else?", BOB, 14)
    relays.failed(sent, "Forbidden: bot was blocked by the user", clock.now())
    assert service.resolve(ann, BOB, clock.now()) is not None
    service.breaches_due(eve.id, at(monday(14)))
    service.breaches_due(cat.id, at(monday(15)))
    cat = service.staff_replied(cat, BOB, at(monday(17)))
    dan = service.open(
        people["Dan"], TicketKind.COMPLAINT, "complaint", at(monday(17, 30)), category="damaged"
    ).ticket
    dan = service.staff_replied(dan, BOB, at(saturday(10, 30)))
    assert service.resolve(ben, CAROL, at(saturday(10, 45))) is not None
    service.breaches_due(eve.id, at(saturday(12)))
    return {"ann": ann.id, "ben": ben.id, "cat": cat.id, "dan": dan.id, "eve": eve.id}


def test_report_over_a_week_of_tickets(repos: Repositories, config: Config) -> None:
    make_tickets(repos, config)
    records = tickets_created(repos.db, monday(0), monday(0) + timedelta(days=7))
    report = build_report(records, config.business_calendar())
    assert report.total == 5
    assert report.by_status == {
        "open": 1,
        "answered": 2,
        "resolved": 2,
        "reopened": 0,
        "closed": 0,
    }
    assert report.by_kind == {"complaint": 3, "inquiry": 2}
    assert report.by_topic == {"damaged": 2, "inquiry": 2, "late": 1}
    assert (report.first_response_breaches, report.resolution_breaches) == (2, 1)

    first = report.first_response
    # Business: 30m, 1h, 6h, 1h (Monday 17:30-18:00 and Saturday 10:00-10:30).
    assert first.count == 4
    assert first.business_median == timedelta(hours=1)
    assert first.business_p90 == timedelta(hours=6)
    # Wall clock: 30m, 1h, 6h, 4d 17h.
    assert first.wall_median == timedelta(hours=3, minutes=30)
    assert first.wall_p90 == timedelta(days=4, hours=17)

    resolution = report.resolution
    # #1: 2h. #2: Monday 10:15-18:00 (7h 45m) and Saturday 10:00-10:45: 8h 30m.
    assert resolution.count == 2
    assert resolution.business_median == timedelta(hours=5, minutes=15)
    assert resolution.business_p90 == timedelta(hours=8, minutes=30)
    assert resolution.wall_median == timedelta(days=2, hours=13, minutes=15)
    assert resolution.wall_p90 == timedelta(days=5, minutes=30)

    staff = {s.name: s for s in report.staff}
    assert list(staff) == ["Bob", "Carol"]
    assert (staff["Bob"].first_answered, staff["Bob"].resolved) == (3, 1)
    assert staff["Bob"].median_first_response == timedelta(hours=1)  # of 30m, 6h, 1h
    assert (staff["Carol"].first_answered, staff["Carol"].resolved) == (1, 1)
    assert staff["Carol"].median_first_response == timedelta(hours=1)


def test_period_is_half_open(repos: Repositories, config: Config) -> None:
    make_tickets(repos, config)
    # From 10:15 (included) to 11:00 (excluded): Ben's inquiry, not Cat's complaint.
    records = tickets_created(repos.db, monday(10, 15), monday(11))
    assert [r.created_at for r in records] == [monday(10, 15)]
    assert len(tickets_created(repos.db, monday(17, 30), None)) == 1
    assert tickets_created(repos.db, monday(18), None) == []
    assert records[0].first_responder_name == "Carol"
    assert records[0].resolved_by_name == "Carol"


def test_customer_labels_and_order_ids(repos: Repositories, config: Config) -> None:
    ids = make_tickets(repos, config)
    tickets = TicketRepository(repos.db)
    ann = tickets.get(ids["ann"])
    assert ann is not None
    assert ann.order_id is not None
    assert order_external_id(repos.db, ann.order_id) == "536365"
    assert order_external_id(repos.db, 9999) is None
    labels = customer_labels(repos.db, [ann.customer_id, ann.customer_id, 9999])
    assert list(labels) == [ann.customer_id]
    assert str(labels[ann.customer_id]) == "Ann Peeters (C1)"
    assert customer_labels(repos.db, []) == {}
