"""Campaigns on the demo shop's real purchase history (UCI online retail excerpt, Dec 2009 to
Dec 2011, 262 customers) in real SQLite files: who the audience rules select, who is
excluded and why, the delivery ledger, the life cycle and the campaign report.

Every expected audience is computed here by plain SQL over the orders (not by the code under
test). The planning moment is 10 Dec 2011, the day after the excerpt's last order.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from bot.campaign_service import PlannedReminder
from bot.campaigns import (
    Campaign,
    CampaignError,
    CampaignSpec,
    CampaignStatus,
    DeliveryStatus,
    parse_campaign,
)
from bot.clock import to_iso
from bot.config import Config
from bot.models import TelegramIdentity
from bot.occasions import parse_custom_occasion
from bot.sla import Priority
from bot.tickets import Actor, NewTicket, TicketKind
from carebot.loading import demo_config
from storage.campaign_planning import apply_action, planning_for, preview, write_plan
from storage.campaigns import (
    CampaignRepository,
    CustomOccasionRepository,
    DeliveryLedger,
    campaign_report,
)
from storage.database import open_database
from storage.repositories import Repositories
from storage.tickets import TicketRepository

NOW = datetime(2011, 12, 10, tzinfo=UTC)
# Five days before Christmas 2011 at 10:00 in London (UTC in winter): the reminders' moment.
SEND_DAY = datetime(2011, 12, 20, 10, 0, tzinfo=UTC)
BOUND_AT = datetime(2011, 1, 1, tzinfo=UTC)
USER_BASE = 70_000
LANGUAGES = ("en", "zh")
DEMO_ON_TELEGRAM = {3, 78}  # Ann and Wei, bound by the demo shop itself
PURCHASE = "kind = 'order' AND status NOT IN ('cancelled', 'refunded')"


def bind_on_telegram(repos: Repositories, customer_ids: set[int]) -> None:
    """As if each had started the bot earlier (private chat id = user id)."""
    for customer_id in sorted(customer_ids):
        customer = repos.customers.get(customer_id)
        assert customer is not None
        if customer.telegram_user_id is None:
            who = TelegramIdentity(USER_BASE + customer_id, customer.first_name or "Customer")
            repos.customers.bind_telegram(customer_id, who, who.user_id, BOUND_AT)


@pytest.fixture(scope="session")
def everyone_on_telegram(demo_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo shop with every customer on Telegram, built once; copied per test."""
    path = tmp_path_factory.mktemp("everyone") / "carebot.db"
    shutil.copyfile(demo_database, path)
    repos = Repositories.over(open_database(path))
    bind_on_telegram(repos, ids(repos.db, "SELECT id FROM customers"))
    repos.db.close()
    return path


@dataclass
class Shop:
    repos: Repositories
    config: Config
    path: Path

    @property
    def db(self) -> Database:
        return self.repos.db


def open_shop(tmp_path: Path, database: Path) -> Iterator[Shop]:
    config = demo_config(tmp_path)
    path = tmp_path / "carebot.db"
    shutil.copyfile(database, path)
    repos = Repositories.over(open_database(path))
    yield Shop(repos, config, path)
    repos.db.close()


@pytest.fixture
def shop(tmp_path: Path, everyone_on_telegram: Path) -> Iterator[Shop]:
    yield from open_shop(tmp_path, everyone_on_telegram)


@pytest.fixture
def demo_shop(tmp_path: Path, demo_database: Path) -> Iterator[Shop]:
    """As imported: only the two demo customers are on Telegram."""
    yield from open_shop(tmp_path, demo_database)


def christmas(
    name: str = "christmas-2011", year: int = 2011, template: str = "Hi", **audience: Any
) -> CampaignSpec:
    return parse_campaign(
        {
            "name": name,
            "occasion": "christmas",
            "year": year,
            "template": {"en": template},
            "audience": audience,
        },
        languages=LANGUAGES,
    )


def recipients(shop: Shop, spec: CampaignSpec, year: int = 2011) -> set[int]:
    """Everyone the planner would write a ledger row for."""
    planning = planning_for(shop.db, shop.config, spec, year)
    return {p.customer_id for chunk in planning.planner.plan(planning.source, NOW) for p in chunk}


# ---------------------------------------------------------------- expected audiences, by SQL


def ids(db: Database, sql: str, params: list[Any] | None = None) -> set[int]:
    return {row[0] for row in db.execute(sql, params or []).fetchall()}


def everyone(db: Database) -> set[int]:
    return ids(db, "SELECT id FROM customers")


def christmas_buyers(db: Database, days: int = 21, years: int = 1) -> set[int]:
    """Bought in the ``days`` before Christmas 2009 and/or 2010, in at least ``years`` of them."""
    windows: list[str] = []
    for year in (2009, 2010):
        christmas_day = date(year, 12, 25)
        windows += [(christmas_day - timedelta(days=days)).isoformat(), christmas_day.isoformat()]
    return ids(
        db,
        f"""SELECT customer_id FROM orders WHERE {PURCHASE}
               AND ((placed_at >= ? AND placed_at < ?) OR (placed_at >= ? AND placed_at < ?))
            GROUP BY customer_id HAVING COUNT(DISTINCT substr(placed_at, 1, 4)) >= ?""",
        [*windows, years],
    )


def bought_from(db: Database, *categories: str) -> set[int]:
    marks = ", ".join("?" for _ in categories)
    return ids(
        db,
        f"""SELECT o.customer_id FROM orders o JOIN order_items i ON i.order_id = o.id
            JOIN products p ON p.id = i.product_id
            WHERE o.kind = 'order' AND p.category IN ({marks})""",
        list(categories),
    )


def in_segments(db: Database, *segments: str) -> set[int]:
    marks = ", ".join("?" for _ in segments)
    return ids(
        db, f"SELECT customer_id FROM customer_stats WHERE segment IN ({marks})", [*segments]
    )


def key_customers(db: Database) -> set[int]:
    return ids(db, "SELECT customer_id FROM customer_stats WHERE key_customer = 1")


def with_orders(db: Database, at_least: int) -> set[int]:
    return ids(
        db,
        f"SELECT customer_id FROM orders WHERE {PURCHASE} GROUP BY customer_id "
        "HAVING COUNT(*) >= ?",
        [at_least],
    )


def living_in(db: Database, *countries: str) -> set[int]:
    marks = ", ".join("?" for _ in countries)
    return ids(db, f"SELECT id FROM customers WHERE country IN ({marks})", [*countries])


def bought_since(db: Database, days: int) -> set[int]:
    """Bought at or after NOW - days."""
    since = to_iso(NOW - timedelta(days=days))
    return ids(db, f"SELECT customer_id FROM orders WHERE {PURCHASE} AND placed_at >= ?", [since])


Expected = Callable[[Database], set[int]]
AUDIENCES: dict[str, tuple[dict[str, Any], Expected]] = {
    "no rules": ({}, everyone),
    "christmas buyers, 21 days": ({"occasion_buyers_days": 21}, christmas_buyers),
    "christmas buyers, 7 days": (
        {"occasion_buyers_days": 7},
        lambda db: christmas_buyers(db, days=7),
    ),
    "christmas buyers in both years": (
        {"occasion_buyers_days": 21, "occasion_min_years": 2},
        lambda db: christmas_buyers(db, years=2),
    ),
    "categories": (
        {"categories": ["garden", "toys-and-games"]},
        lambda db: bought_from(db, "garden", "toys-and-games"),
    ),
    "segments": (
        {"segments": ["champions", "loyal"]},
        lambda db: in_segments(db, "champions", "loyal"),
    ),
    "key customers": ({"key_customers": True}, key_customers),
    "min orders": ({"min_orders": 10}, lambda db: with_orders(db, 10)),
    "countries": ({"countries": ["FR", "ES"]}, lambda db: living_in(db, "France", "Spain")),
    "bought in the last 30 days": (
        {"last_purchase_within_days": 30},
        lambda db: bought_since(db, 30),
    ),
    "win-back: nothing for 180 days": (
        {"last_purchase_not_within_days": 180},
        lambda db: everyone(db) - bought_since(db, 180),
    ),
    "lapsed: not for 90 days, but within a year": (
        {"last_purchase_not_within_days": 90, "last_purchase_within_days": 365},
        lambda db: bought_since(db, 365) - bought_since(db, 90),
    ),
    "champions among christmas buyers": (
        {"occasion_buyers_days": 21, "segments": ["champions"]},
        lambda db: christmas_buyers(db) & in_segments(db, "champions"),
    ),
}


def audience_cases() -> list[Any]:
    """The AUDIENCES as test cases."""
    return [pytest.param(rules, expected, id=name) for name, (rules, expected) in AUDIENCES.items()]


# ---------------------------------------------------------------- the audience


def test_the_demo_history_has_the_customers_the_cases_rely_on(shop: Shop) -> None:
    assert len(everyone(shop.db)) == 262
    assert len(christmas_buyers(shop.db)) == 38
    assert len(christmas_buyers(shop.db, years=2)) == 7
    for _rules, expected in AUDIENCES.values():
        assert expected(shop.db), "each rule selects somebody"


@pytest.mark.parametrize(("rules", "expected"), audience_cases())
def test_audience_rules_select_the_customers_the_history_says(
    shop: Shop, rules: dict[str, Any], expected: Expected
) -> None:
    assert recipients(shop, christmas(**rules)) == expected(shop.db)


@pytest.mark.parametrize(("rules", "expected"), audience_cases())
def test_not_on_telegram_counts_only_customers_the_rules_select(
    demo_shop: Shop, rules: dict[str, Any], expected: Expected
) -> None:
    selected = expected(demo_shop.db)
    result = preview(demo_shop.db, demo_shop.config, christmas(**rules), 2011, NOW)
    assert result.eligible == len(selected & DEMO_ON_TELEGRAM)
    assert result.excluded.get("not_on_telegram", 0) == len(selected - DEMO_ON_TELEGRAM)


def test_binding_more_customers_moves_them_from_not_on_telegram_to_eligible(
    demo_shop: Shop,
) -> None:
    buyers = christmas_buyers(demo_shop.db)
    bound = set(sorted(buyers)[:10])
    bind_on_telegram(demo_shop.repos, bound)
    result = preview(demo_shop.db, demo_shop.config, christmas(occasion_buyers_days=21), 2011, NOW)
    on_telegram = bound | (buyers & DEMO_ON_TELEGRAM)
    assert result.eligible == len(on_telegram)
    assert result.excluded == {"not_on_telegram": len(buyers - on_telegram)}
    assert result.matched == len(buyers)


# ---------------------------------------------------------------- exclusions


def create(shop: Shop, spec: CampaignSpec, year: int = 2011) -> Campaign:
    return CampaignRepository(shop.db).create(spec, year, NOW - timedelta(days=30))


def reminder(customer_id: int, text: str | None = "Hi") -> PlannedReminder:
    return PlannedReminder(
        customer_id=customer_id,
        chat_id=USER_BASE + customer_id,
        language="en",
        occasion_date=date(2011, 12, 25),
        due_at=SEND_DAY,
        text=text,
        suggested=(),
        problem=None if text is not None else "the message is empty",
    )


def delivery_id(shop: Shop, campaign: Campaign, customer_id: int) -> int:
    row = shop.db.execute(
        "SELECT id FROM campaign_deliveries WHERE campaign_id = ? AND customer_id = ?",
        [campaign.id, customer_id],
    ).fetchone()
    return int(row[0])


def sent_reminder(shop: Shop, name: str, customer_id: int, sent_at: datetime) -> None:
    """A reminder of another campaign that reached the customer at ``sent_at``."""
    other = create(shop, christmas(name=name))
    ledger = DeliveryLedger(shop.db)
    ledger.plan(other.id, [reminder(customer_id)], sent_at)
    row = delivery_id(shop, other, customer_id)
    assert ledger.claim(row)
    ledger.sent(row, message_id=1, now=sent_at)


def said_not_this_year(shop: Shop, occasion: str, year: int, customer_id: int) -> None:
    """Pressed "Not this year" on an earlier reminder (planned, not counted as sent)."""
    spec = parse_campaign(
        {"name": f"{occasion}-{year}-earlier", "occasion": occasion, "template": {"en": "Hi"}},
        languages=LANGUAGES,
    )
    earlier = create(shop, spec, year)
    ledger = DeliveryLedger(shop.db)
    ledger.plan(earlier.id, [reminder(customer_id)], NOW)
    assert ledger.respond(delivery_id(shop, earlier, customer_id), "not_this_year", NOW)


def open_ticket(shop: Shop, customer_id: int, kind: TicketKind) -> None:
    ticket = NewTicket(customer_id, kind, "telegram", Priority.NORMAL, NOW, None, None)
    TicketRepository(shop.db).create(ticket, Actor.system())


def test_preview_counts_each_exclusion_by_its_reason(shop: Shop) -> None:
    buyers = sorted(christmas_buyers(shop.db))
    opted_out, blocked, banned, complained, capped, skipping, *fine = buyers
    customers = shop.repos.customers
    customers.update_settings(opted_out, NOW, reminders_opt_out=True)
    customers.update_settings(blocked, NOW, blocked=True)
    customers.update_settings(banned, NOW, banned=True)
    open_ticket(shop, complained, TicketKind.COMPLAINT)
    sent_reminder(shop, "valentines-reminder", capped, NOW - timedelta(days=10))
    said_not_this_year(shop, "christmas", 2011, skipping)
    # None of these stop a reminder: a question, an old reminder, "not this year" last year.
    open_ticket(shop, fine[0], TicketKind.INQUIRY)
    sent_reminder(shop, "autumn-reminder", fine[1], NOW - timedelta(days=40))
    said_not_this_year(shop, "christmas", 2010, fine[2])

    ledger_rows = shop.db.execute("SELECT COUNT(*) FROM campaign_deliveries").fetchone()
    result = preview(shop.db, shop.config, christmas(occasion_buyers_days=21), 2011, NOW)

    assert {reason: n for reason, n in result.excluded.items() if n} == {
        "opted_out": 1,
        "blocked": 1,
        "banned": 1,
        "open_complaint": 1,
        "frequency_cap": 1,
        "not_this_year": 1,
    }
    assert result.eligible == len(buyers) - 6
    assert result.matched == len(buyers)
    assert len(result.samples) == shop.config.campaigns.preview_samples
    assert {s.customer_id for s in result.samples} <= set(fine)
    assert result.first_due == result.last_due == SEND_DAY
    # a preview writes nothing
    assert shop.db.execute("SELECT COUNT(*) FROM campaign_deliveries").fetchone() == ledger_rows


def test_not_this_year_holds_for_the_same_occasion_and_year_only(shop: Shop) -> None:
    customer = min(christmas_buyers(shop.db))
    said_not_this_year(shop, "christmas", 2011, customer)
    assert customer not in recipients(shop, christmas())
    assert customer in recipients(shop, christmas(name="christmas-2012", year=2012), 2012)
    mothers_day = parse_campaign(
        {"name": "mothers-day-2012", "occasion": "mothers-day", "template": {"en": "Hi"}},
        languages=LANGUAGES,
    )
    assert customer in recipients(shop, mothers_day, 2012)


# ---------------------------------------------------------------- the delivery ledger


@pytest.fixture
def planned(shop: Shop) -> Campaign:
    """Christmas 2011 for the seven customers who bought before it in 2009 and 2010,
    planned into the ledger."""
    campaign = create(shop, christmas(occasion_buyers_days=21, occasion_min_years=2))
    count = write_plan(shop.db, shop.config, campaign, NOW)
    assert count.eligible == 7
    return campaign


def rows(shop: Shop, campaign: Campaign) -> list[dict[str, Any]]:
    return list(
        shop.db.query(
            "SELECT * FROM campaign_deliveries WHERE campaign_id = ? ORDER BY customer_id",
            [campaign.id],
        )
    )


def test_planning_writes_one_pending_row_per_recipient_with_its_text(
    shop: Shop, planned: Campaign
) -> None:
    written = rows(shop, planned)
    assert {r["customer_id"] for r in written} == christmas_buyers(shop.db, years=2)
    assert {r["status"] for r in written} == {"pending"}
    assert {r["text"] for r in written} == {"Hi"}
    assert {r["due_at"] for r in written} == {to_iso(SEND_DAY)}
    assert {r["occasion_date"] for r in written} == {"2011-12-25"}
    assert all(r["chat_id"] == USER_BASE + r["customer_id"] for r in written)


def test_planning_again_inserts_nothing_new(shop: Shop, planned: Campaign) -> None:
    before = rows(shop, planned)
    DeliveryLedger(shop.db).claim(before[0]["id"])
    write_plan(shop.db, shop.config, planned, NOW + timedelta(days=1))
    planning = planning_for(shop.db, shop.config, planned.spec, planned.year)
    for chunk in planning.planner.plan(planning.source, NOW):
        assert DeliveryLedger(shop.db).plan(planned.id, chunk, NOW) == 0
    after = rows(shop, planned)
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert after[0]["status"] == "sending"  # a re-run keeps what was there


def test_a_reminder_is_claimed_once_even_from_two_connections(
    shop: Shop, planned: Campaign
) -> None:
    row = rows(shop, planned)[0]["id"]
    other = open_database(shop.path, migrate=False)
    try:
        assert DeliveryLedger(shop.db).claim(row)
        assert not DeliveryLedger(other).claim(row)
    finally:
        other.close()
    assert rows(shop, planned)[0]["attempts"] == 1


def test_due_returns_pending_rows_whose_time_came(shop: Shop, planned: Campaign) -> None:
    ledger = DeliveryLedger(shop.db)
    assert ledger.due(planned.id, SEND_DAY - timedelta(seconds=1), 100) == []
    due = ledger.due(planned.id, SEND_DAY, 100)
    assert len(due) == 7
    assert {d.status for d in due} == {DeliveryStatus.PENDING}
    assert len(ledger.due(planned.id, SEND_DAY, 3)) == 3
    assert ledger.next_due(planned.id) == SEND_DAY


def test_settling_after_a_crash_makes_sending_rows_uncertain_never_resent(
    shop: Shop, planned: Campaign
) -> None:
    ledger = DeliveryLedger(shop.db)
    interrupted, delivered, *_ = [r["id"] for r in rows(shop, planned)]
    assert ledger.claim(interrupted)
    assert ledger.claim(delivered)
    ledger.sent(delivered, message_id=5, now=SEND_DAY)
    assert ledger.settle_interrupted(planned.id) == 1
    assert ledger.counts(planned.id) == {"uncertain": 1, "sent": 1, "pending": 5}
    row = next(r for r in rows(shop, planned) if r["id"] == interrupted)
    assert row["reason"] == "interrupted while sending (may have arrived)"
    assert interrupted not in {d.id for d in ledger.due(planned.id, SEND_DAY, 100)}
    assert not ledger.claim(interrupted)
    assert ledger.settle_interrupted(planned.id) == 0


def test_cancelling_skips_only_pending_rows(shop: Shop, planned: Campaign) -> None:
    ledger = DeliveryLedger(shop.db)
    delivered, in_flight, *_ = [r["id"] for r in rows(shop, planned)]
    ledger.claim(delivered)
    ledger.sent(delivered, message_id=5, now=SEND_DAY)
    ledger.claim(in_flight)
    assert ledger.cancel_pending(planned.id) == 5
    assert ledger.counts(planned.id) == {"sent": 1, "sending": 1, "skipped": 5}
    assert {r["reason"] for r in rows(shop, planned) if r["status"] == "skipped"} == {"cancelled"}
    assert ledger.open_count(planned.id) == 1
    assert ledger.due(planned.id, SEND_DAY, 100) == []


def test_a_released_reminder_waits_for_its_new_time(shop: Shop, planned: Campaign) -> None:
    ledger = DeliveryLedger(shop.db)
    first, untouched, *_ = [r["id"] for r in rows(shop, planned)]
    retry_at = SEND_DAY + timedelta(minutes=5)
    assert ledger.claim(first)
    ledger.release(first, retry_at, "429 flood control")
    ledger.release(untouched, retry_at, "not claimed: nothing to release")
    by_id = {d.id: d for d in ledger.due(planned.id, retry_at, 100)}
    assert by_id[first].status == DeliveryStatus.PENDING
    assert by_id[first].due_at == retry_at
    assert by_id[first].reason == "429 flood control"
    assert by_id[untouched].due_at == SEND_DAY
    assert by_id[untouched].reason is None
    assert first not in {d.id for d in ledger.due(planned.id, SEND_DAY, 100)}
    assert ledger.claim(first)
    assert rows(shop, planned)[0]["attempts"] == 2


def test_a_reminder_whose_template_failed_is_written_as_skipped(shop: Shop) -> None:
    campaign = create(shop, christmas())
    ledger = DeliveryLedger(shop.db)
    assert ledger.plan(campaign.id, [reminder(1), reminder(2, text=None)], NOW) == 2
    assert ledger.counts(campaign.id) == {"pending": 1, "skipped": 1}
    [skipped] = [r for r in rows(shop, campaign) if r["status"] == "skipped"]
    assert skipped["customer_id"] == 2
    assert skipped["reason"] == "template: the message is empty"


# ---------------------------------------------------------------- life cycle


def act(shop: Shop, campaign: Campaign, action: str, now: datetime = NOW) -> Campaign:
    return apply_action(shop.db, shop.config, campaign, action, now)


def stored(shop: Shop, campaign: Campaign) -> Campaign:
    found = CampaignRepository(shop.db).get(campaign.id)
    assert found is not None
    return found


def test_start_schedules_a_draft_for_when_its_send_window_opens(shop: Shop) -> None:
    started = act(shop, create(shop, christmas(occasion_buyers_days=21)), "start")
    assert started.status == CampaignStatus.SCHEDULED
    # 20 Dec 10:00 where the day comes first (UTC+14); the season runs to 7 Jan 2012.
    assert started.opens_at == datetime(2011, 12, 19, 20, 0, tzinfo=UTC)
    assert stored(shop, started) == started
    assert CampaignRepository(shop.db).live() == [started]


def test_pause_and_resume_before_and_after_the_ledger_is_planned(shop: Shop) -> None:
    repo = CampaignRepository(shop.db)
    scheduled = act(shop, create(shop, christmas()), "start")
    paused = act(shop, scheduled, "pause")
    assert paused.status == CampaignStatus.PAUSED
    assert repo.live() == []
    scheduled = act(shop, paused, "resume")
    assert scheduled.status == CampaignStatus.SCHEDULED
    # The send window opens: the bot plans the ledger and marks the campaign running.
    count = write_plan(shop.db, shop.config, scheduled, SEND_DAY - timedelta(hours=1))
    assert repo.move(
        scheduled.id,
        CampaignStatus.SCHEDULED,
        CampaignStatus.RUNNING,
        SEND_DAY,
        audience_size=count.eligible,
        excluded={"opted_out": 0},
    )
    running = stored(shop, scheduled)
    assert running.audience_size == 262
    assert running.excluded == {"opted_out": 0}
    paused = act(shop, running, "pause", SEND_DAY)
    assert paused.status == CampaignStatus.PAUSED
    assert act(shop, paused, "resume", SEND_DAY).status == CampaignStatus.RUNNING


def test_cancel_stops_every_pending_reminder(shop: Shop, planned: Campaign) -> None:
    ledger = DeliveryLedger(shop.db)
    delivered = rows(shop, planned)[0]["id"]
    ledger.claim(delivered)
    ledger.sent(delivered, message_id=9, now=SEND_DAY)
    cancelled = act(shop, planned, "cancel", SEND_DAY)
    assert cancelled.status == CampaignStatus.CANCELLED
    assert cancelled.finished_at == SEND_DAY
    assert ledger.counts(planned.id) == {"sent": 1, "skipped": 6}
    assert ledger.due(planned.id, SEND_DAY, 100) == []


def refusal(shop: Shop, campaign: Campaign, action: str, now: datetime = NOW) -> str:
    with pytest.raises(CampaignError) as caught:
        act(shop, campaign, action, now)
    assert stored(shop, campaign).status == campaign.status  # nothing changed
    return str(caught.value)


def test_actions_that_do_not_apply_are_refused(shop: Shop) -> None:
    draft = create(shop, christmas())
    assert refusal(shop, draft, "resume") == "campaign christmas-2011 is draft: cannot resume"
    assert refusal(shop, draft, "pause") == "campaign christmas-2011 is draft: cannot pause"
    scheduled = act(shop, draft, "start")
    assert "is scheduled: cannot start" in refusal(shop, scheduled, "start")
    cancelled = act(shop, scheduled, "cancel")
    assert "is cancelled: cannot resume" in refusal(shop, cancelled, "resume")


def test_an_outdated_view_of_the_campaign_is_refused(shop: Shop) -> None:
    draft = create(shop, christmas())
    act(shop, draft, "start")
    with pytest.raises(CampaignError, match="changed meanwhile; look again"):
        act(shop, draft, "start")  # ``draft`` still says it is a draft
    assert stored(shop, draft).status == CampaignStatus.SCHEDULED


def test_starting_a_campaign_for_an_occasion_already_over_is_refused(shop: Shop) -> None:
    past = create(shop, christmas(name="christmas-2010", year=2010), year=2010)
    message = refusal(shop, past, "start")
    # The 2010 season ended with Orthodox Christmas on 7 Jan 2011.
    assert message == ("christmas 2010 is over (it was on 2011-01-07); set `year` for the next one")


def test_a_template_that_fails_for_a_real_customer_is_refused_at_start(shop: Shop) -> None:
    # The loyal Christmas buyers have no first name in the shop's data: the message is empty
    # for them, although the made-up sample customer (Ann) renders fine.
    spec = christmas(
        template="{{ customer.first_name }}", occasion_buyers_days=21, occasion_min_years=2
    )
    message = refusal(shop, create(shop, spec), "start")
    assert message.startswith("the template does not render:")
    assert "the message is empty" in message
    # With nobody matching yet, only the made-up customer is tried.
    nobody = christmas(
        name="christmas-nobody", template="{{ customer.first_name }}", segments=["no-such"]
    )
    assert act(shop, create(shop, nobody), "start").status == CampaignStatus.SCHEDULED


# ---------------------------------------------------------------- campaigns and occasions


def test_campaign_names_are_unique_and_only_drafts_are_edited(shop: Shop) -> None:
    repo = CampaignRepository(shop.db)
    draft = create(shop, christmas())
    with pytest.raises(CampaignError, match="a campaign called christmas-2011 already exists"):
        create(shop, christmas())
    changed = christmas(template="Hello")
    assert repo.replace_spec(draft, changed, 2011, NOW)
    assert stored(shop, draft).spec == changed
    started = act(shop, stored(shop, draft), "start")
    assert not repo.replace_spec(started, christmas(template="Too late"), 2011, NOW)
    assert stored(shop, draft).spec == changed
    assert repo.by_name("christmas-2011") == stored(shop, draft)
    assert repo.by_name("easter-2011") is None


def test_custom_occasions_are_saved_replaced_and_removed(shop: Shop) -> None:
    repo = CustomOccasionRepository(shop.db)
    anniversary = parse_custom_occasion(
        "shop-anniversary", "06-15", label="Our birthday", by_country={"FR": "06-20"}
    )
    repo.save(anniversary, NOW)
    assert repo.all() == [anniversary]
    moved = parse_custom_occasion("shop-anniversary", "2nd sat of jun", label="Our birthday")
    repo.save(moved, NOW)
    assert repo.all() == [moved]
    spec = parse_campaign(
        {"name": "anniversary", "occasion": "shop-anniversary", "template": {"en": "Hi"}},
        languages=LANGUAGES,
    )
    planning = planning_for(shop.db, shop.config, spec, 2012)
    assert planning.planner.occasion_day("GB") == date(2012, 6, 9)
    assert repo.remove("shop-anniversary")
    assert not repo.remove("shop-anniversary")
    with pytest.raises(CampaignError, match="carebot occasions add"):
        planning_for(shop.db, shop.config, spec, 2012)


# ---------------------------------------------------------------- the report

REMINDED_AT = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)  # long after the imported history


def add_order(shop: Shop, customer_id: int, placed_at: datetime, total: float, kind: str) -> None:
    shop.db.execute(
        """INSERT INTO orders (external_id, customer_id, status, placed_at, total, currency,
               created_at, updated_at, kind)
           VALUES (?, ?, 'delivered', ?, ?, 'GBP', ?, ?, ?)""",
        [
            f"T-{customer_id}-{placed_at:%Y%m%d%H%M}-{kind}",
            customer_id,
            to_iso(placed_at),
            total,
            to_iso(placed_at),
            to_iso(placed_at),
            kind,
        ],
    )


def test_the_report_counts_responses_and_conversions_within_the_attribution_window(
    shop: Shop,
) -> None:
    campaign = create(shop, christmas(name="christmas-2026", year=2026), year=2026)
    ledger = DeliveryLedger(shop.db)
    ann, bob, cat, dan, eve, fay = 1, 2, 4, 5, 6, 7
    ledger.plan(campaign.id, [reminder(c) for c in (ann, bob, cat, dan, eve, fay)], REMINDED_AT)
    row = {c: delivery_id(shop, campaign, c) for c in (ann, bob, cat, dan, eve, fay)}
    for customer in (ann, bob, cat, eve):
        ledger.claim(row[customer])
    for customer in (ann, bob, cat):
        ledger.sent(row[customer], message_id=customer, now=REMINDED_AT)
    ledger.failed(row[eve], "Forbidden: bot was blocked by the user")
    ledger.skip(row[fay], "opted_out")
    ledger.click(row[ann], REMINDED_AT + timedelta(minutes=1))
    ledger.click(row[ann], REMINDED_AT + timedelta(minutes=2))
    ledger.click(row[bob], REMINDED_AT + timedelta(minutes=3))
    assert ledger.respond(row[bob], "not_this_year", REMINDED_AT)
    assert not ledger.respond(row[bob], "not_this_year", REMINDED_AT)  # counted once
    assert ledger.respond(row[cat], "stop", REMINDED_AT)

    hour, day = timedelta(hours=1), timedelta(days=1)
    add_order(shop, ann, REMINDED_AT - hour, 100.0, "order")  # before the reminder
    add_order(shop, ann, REMINDED_AT + 3 * day, 25.5, "order")  # attributed
    add_order(shop, ann, REMINDED_AT + 4 * day, -10.0, "return")  # a return is no conversion
    add_order(shop, ann, REMINDED_AT + 20 * day, 300.0, "order")  # too late for 14 days
    add_order(shop, bob, REMINDED_AT + 15 * day, 40.0, "order")  # too late for 14 days
    add_order(shop, cat, REMINDED_AT + 13 * day, 12.25, "order")  # attributed
    add_order(shop, dan, REMINDED_AT + 1 * day, 70.0, "order")  # never reminded: not counted

    report = campaign_report(shop.db, campaign.id, timedelta(days=14))
    assert report.statuses == {"sent": 3, "pending": 1, "failed": 1, "skipped": 1}
    assert report.failed == {"Forbidden: bot was blocked by the user": 1}
    assert report.skipped == {"opted_out": 1}
    assert (report.clicked, report.clicks) == (2, 3)
    assert (report.not_this_year, report.opted_out) == (1, 1)
    assert (report.converted, report.revenue) == (2, 37.75)

    longer = campaign_report(shop.db, campaign.id, timedelta(days=30))
    assert (longer.converted, longer.revenue) == (3, 377.75)


def test_an_empty_campaign_reports_zeros(shop: Shop) -> None:
    report = campaign_report(shop.db, create(shop, christmas()).id, timedelta(days=14))
    assert report.statuses == {}
    assert (report.clicked, report.clicks, report.not_this_year, report.opted_out) == (0, 0, 0, 0)
    assert (report.converted, report.revenue) == (0, 0)
