"""The survey report's reads over a real SQLite file, with surveys sent and answered.

Times are UTC. The shop of the command-line tests is in Berlin (UTC+1 in November), so a
survey sent on Sunday 22 November at 23:30 UTC was sent on Monday the 23rd there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config
from bot.importing import ProductRow
from bot.models import OrderStatus
from bot.survey_report import GroupBy, SurveyRecord, build_survey_report
from bot.surveys import SurveyKind
from bot.tickets import TicketKind, TicketService
from storage.imports import ProductCatalogWriter
from storage.repositories import NewOrderItem, Repositories
from storage.survey_report import surveys_sent
from storage.surveys import SurveyRepository
from storage.tickets import TicketRepository
from tests.conftest import START

BERLIN = ZoneInfo("Europe/Berlin")
CATALOG = [
    ProductRow("MUG-RED", "Red mug", "mugs", Decimal("8.50")),
    ProductRow("MUG-BLUE", "Blue mug", "mugs", Decimal("8.50")),
    ProductRow("CARD-XMAS", "Christmas card", "cards", Decimal("2.95")),
    ProductRow("CARD-BDAY", "Birthday card", "cards", Decimal("2.95")),
]
# Not in the catalog: the order import creates it without a category.
CANDLE = NewOrderItem("CANDLE", "Scented candle", 1, 12.0)
POSTAGE = NewOrderItem("POST", "Postage", 1, 3.5)  # a fee line, never a product


def utc(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def berlin_day(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, tzinfo=BERLIN)


def item(sku: str) -> NewOrderItem:
    return NewOrderItem(sku, sku.title(), 1, 5.0)


@dataclass
class Sender:
    """Surveys planned, sent and answered through the survey repository, at given times."""

    store: SurveyRepository
    messages: int = 0

    def send(
        self,
        customer_id: int,
        sent_at: datetime,
        *,
        order_id: int | None = None,
        ticket_id: int | None = None,
        staff: str | None = None,
        score: int | None = None,
        nps: int | None = None,
        comment: str | None = None,
    ) -> int:
        kind = SurveyKind.PURCHASE if order_id is not None else SurveyKind.SUPPORT
        survey = self.store.create(
            customer_id=customer_id,
            kind=kind,
            due_at=sent_at,
            now=sent_at - timedelta(days=3),
            order_id=order_id,
            ticket_id=ticket_id,
            staff_id=500 if staff else None,
            staff_name=staff,
        )
        assert survey is not None
        assert self.store.claim(survey.id)
        self.messages += 1
        self.store.sent(
            survey.id, 9000 + customer_id, self.messages, sent_at, sent_at + timedelta(days=7)
        )
        if score is not None:
            followup = "nps" if nps is not None else "comment" if comment is not None else None
            answered = sent_at + timedelta(hours=2)
            assert self.store.record_score(survey.id, score, followup, answered)
            if followup is not None:
                later = answered + timedelta(minutes=5)
                self.store.record_followup(survey.id, comment=comment, nps=nps, now=later)
        return survey.id


def make_surveys(repos: Repositories, config: Config) -> SurveyRepository:
    """Eight orders and four tickets, with their surveys (Berlin weeks 48 and 49).

    Purchase (category: the order's most common product category):
      1001 Ann   mugs 2, cards 1, postage  -> mugs           Mon 23 Nov 10:00  5, NPS 10
      1002 Ben   cards 1, mugs 1 (a tie)   -> cards          Tue 24 Nov 10:00  4, NPS 9
      1003 Cat   candle, postage           -> uncategorised  Wed 25 Nov 10:00  2, a comment
      1004 Dan   cards 2, candle           -> cards          Mon 30 Nov 10:00  not answered
      1005 Eve   mugs                         planned for 2 Dec, never sent
      1006 Fay   mugs     Sun 22 Nov 22:30 (23:30 in Berlin: before the period)  1
      1007 Ann   cards    Sun 22 Nov 23:30 (Monday 00:30 in Berlin: in week 48)  3
      1008 Fay   mugs                                        Tue 1 Dec 10:00   4, NPS 5
    Support (category: the ticket's, "inquiry" without one):
      Ann  complaint/damaged  Bob    Mon 23 Nov 15:00  5
      Ben  inquiry            Carol  Tue 24 Nov 12:00  4
      Cat  complaint/late     Bob    Thu 3 Dec 09:00   1, a comment
      Dan  inquiry            Carol  Fri 4 Dec 09:00   not answered
    """
    ProductCatalogWriter(repos.db, START).upsert(CATALOG)
    people = {
        name: repos.customers.create_shop_customer(f"C{n}", first_name=name, now=START)
        for n, name in enumerate(["Ann", "Ben", "Cat", "Dan", "Eve", "Fay"], start=1)
    }
    orders = {
        number: repos.orders.save_order(
            external_id=str(number),
            customer_id=people[who],
            status=OrderStatus.DELIVERED,
            placed_at=utc(16, 9),
            currency="GBP",
            items=items,
            now=utc(16, 9),
        )
        for number, who, items in [
            (1001, "Ann", [item("MUG-RED"), item("MUG-BLUE"), item("CARD-XMAS"), POSTAGE]),
            (1002, "Ben", [item("CARD-XMAS"), item("MUG-RED")]),
            (1003, "Cat", [CANDLE, POSTAGE]),
            (1004, "Dan", [item("CARD-BDAY"), item("CARD-XMAS"), CANDLE]),
            (1005, "Eve", [item("MUG-RED")]),
            (1006, "Fay", [item("MUG-BLUE")]),
            (1007, "Ann", [item("CARD-BDAY")]),
            (1008, "Fay", [item("MUG-BLUE")]),
        ]
    }
    service = TicketService(
        TicketRepository(repos.db), config.sla_policy(), config.ticket_settings()
    )
    tickets = {
        who: service.open(people[who], kind, "test", utc(20, 10), category=category).ticket.id
        for who, kind, category in [
            ("Ann", TicketKind.COMPLAINT, "damaged"),
            ("Ben", TicketKind.INQUIRY, None),
            ("Cat", TicketKind.COMPLAINT, "late"),
            ("Dan", TicketKind.INQUIRY, None),
        ]
    }
    store = SurveyRepository(repos.db)
    send = Sender(store).send
    send(people["Ann"], utc(23, 10), order_id=orders[1001], score=5, nps=10)
    send(people["Ben"], utc(24, 10), order_id=orders[1002], score=4, nps=9)
    send(people["Cat"], utc(25, 10), order_id=orders[1003], score=2, comment="arrived broken")
    send(people["Dan"], utc(30, 10), order_id=orders[1004])
    planned = store.create(
        customer_id=people["Eve"],
        kind=SurveyKind.PURCHASE,
        order_id=orders[1005],
        due_at=utc(2, 10, month=12),
        now=utc(29, 10),
    )
    assert planned is not None
    send(people["Fay"], utc(22, 22, 30), order_id=orders[1006], score=1, comment="late")
    send(people["Ann"], utc(22, 23, 30), order_id=orders[1007], score=3, comment="ok")
    send(people["Fay"], utc(1, 10, month=12), order_id=orders[1008], score=4, nps=5)
    send(people["Ann"], utc(23, 15), ticket_id=tickets["Ann"], staff="Bob", score=5)
    send(people["Ben"], utc(24, 12), ticket_id=tickets["Ben"], staff="Carol", score=4)
    send(
        people["Cat"],
        utc(3, 9, month=12),
        ticket_id=tickets["Cat"],
        staff="Bob",
        score=1,
        comment="still waiting",
    )
    send(people["Dan"], utc(4, 9, month=12), ticket_id=tickets["Dan"], staff="Carol")
    return store


def summary(records: list[SurveyRecord]) -> list[tuple[str, str, int | None, int | None, str]]:
    return [(r.kind, r.topic, r.score, r.nps, r.staff) for r in records]


def test_surveys_sent_in_two_berlin_weeks(repos: Repositories, config: Config) -> None:
    make_surveys(repos, config)
    records = surveys_sent(repos.db, berlin_day(23), berlin_day(7, month=12))
    assert summary(records) == [
        ("purchase", "cards", 3, None, "-"),  # 1007: Monday 00:30 in Berlin
        ("purchase", "mugs", 5, 10, "-"),  # 1001: two mugs, one card
        ("support", "damaged", 5, None, "Bob"),
        ("purchase", "cards", 4, 9, "-"),  # 1002: one card, one mug: the first by name
        ("support", "inquiry", 4, None, "Carol"),
        ("purchase", "uncategorised", 2, None, "-"),  # 1003: a candle and postage
        ("purchase", "cards", None, None, "-"),  # 1004
        ("purchase", "mugs", 4, 5, "-"),  # 1008
        ("support", "late", 1, None, "Bob"),
        ("support", "inquiry", None, None, "Carol"),
    ]
    assert records[0].sent_at == utc(22, 23, 30)
    assert [r.category for r in records if r.topic in ("uncategorised", "inquiry")] == [
        None,
        None,
        None,
    ]


def test_period_is_half_open_and_never_sent_surveys_do_not_count(
    repos: Repositories, config: Config
) -> None:
    make_surveys(repos, config)
    # From 1001's sending (included) to 1002's (excluded).
    records = surveys_sent(repos.db, utc(23, 10), utc(24, 10))
    assert [r.sent_at for r in records] == [utc(23, 10), utc(23, 15)]
    # No end: everything from Fay's 1006 on; Eve's planned survey was never sent.
    assert len(surveys_sent(repos.db, utc(22, 22, 30), None)) == 11
    assert surveys_sent(repos.db, utc(4, 9, 1, month=12), None) == []


def test_only_one_kind(repos: Repositories, config: Config) -> None:
    make_surveys(repos, config)
    since, until = berlin_day(23), berlin_day(7, month=12)
    support = surveys_sent(repos.db, since, until, SurveyKind.SUPPORT)
    assert [r.topic for r in support] == ["damaged", "inquiry", "late", "inquiry"]
    purchase = surveys_sent(repos.db, since, until, SurveyKind.PURCHASE)
    assert len(purchase) == 6
    assert {r.kind for r in purchase} == {"purchase"}


def test_report_over_two_weeks_of_surveys(repos: Repositories, config: Config) -> None:
    make_surveys(repos, config)
    records = surveys_sent(repos.db, berlin_day(23), berlin_day(7, month=12))
    report = build_survey_report(records, GroupBy.WEEK, BERLIN)
    total = report.total
    assert (total.sent, total.answered, total.scores) == (10, 8, (1, 1, 1, 3, 2))
    assert total.response_rate == 0.8
    assert total.average_score == 3.5  # 28 / 8
    assert total.csat == 5 / 8
    assert (total.nps_answers, total.promoters, total.detractors) == (3, 2, 1)
    assert total.nps == pytest.approx(100 / 3)
    weeks = {g.name: g.stats for g in report.groups}
    assert list(weeks) == ["2026-W48", "2026-W49"]
    assert (weeks["2026-W48"].sent, weeks["2026-W48"].answered) == (6, 6)
    assert (weeks["2026-W49"].sent, weeks["2026-W49"].answered) == (4, 2)
    # In London, 1007 (Sunday 23:30) is still in week 47.
    london = build_survey_report(records, GroupBy.WEEK, ZoneInfo("Europe/London"))
    assert [(g.name, g.stats.sent) for g in london.groups] == [
        ("2026-W47", 1),
        ("2026-W48", 5),
        ("2026-W49", 4),
    ]
