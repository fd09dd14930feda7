"""Customer stats and segments on a real SQLite file, and the two CLI commands over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.clock import FixedClock
from bot.models import OrderStatus
from bot.segments import Segment
from carebot.cli import main
from storage.database import open_database
from storage.repositories import NewOrderItem, Repositories
from storage.segments import SegmentRepository, compute_segments, recompute_segments

T0 = datetime(2011, 1, 10, 9, 30, tzinfo=UTC)


class Shop:
    """Customers and orders made through the real repositories."""

    def __init__(self, repos: Repositories, clock: FixedClock) -> None:
        self.repos = repos
        self.clock = clock
        self.ids: dict[str, int] = {}

    def customer(self, external_id: str, name: str, **fields: str) -> int:
        self.ids[external_id] = self.repos.customers.create_shop_customer(
            external_id, first_name=name, now=self.clock.now(), **fields
        )
        return self.ids[external_id]

    def order(self, external_id: str, customer: str, day: int, amount: float) -> None:
        self._save(external_id, customer, day, NewOrderItem("MUG", "Mug", 1, amount))

    def refund(self, external_id: str, customer: str, day: int, amount: float) -> None:
        """A return: negative quantity (so a negative total), and kind 'return'.

        save_order has no ``kind`` yet, so the kind is set here with SQL.
        """
        self._save(external_id, customer, day, NewOrderItem("MUG", "Mug", -1, amount))
        self.repos.db.execute(
            "UPDATE orders SET kind = 'return' WHERE external_id = ?", [external_id]
        )

    def _save(self, external_id: str, customer: str, day: int, item: NewOrderItem) -> None:
        self.repos.orders.save_order(
            external_id=external_id,
            customer_id=self.ids[customer],
            status=OrderStatus.DELIVERED,
            placed_at=T0 + timedelta(days=day),
            currency="GBP",
            items=[item],
            now=self.clock.now(),
        )


@pytest.fixture
def shop(tmp_path: Path, clock: FixedClock) -> Iterator[Shop]:
    repos = Repositories.over(open_database(tmp_path / "shop.db"))
    shop = Shop(repos, clock)
    shop.customer("A", "Ann", country="United Kingdom", language="en")
    shop.customer("B", "Bob")
    shop.customer("C", "Cai")
    shop.customer("D", "Dee")  # never bought anything
    shop.customer("E", "Eve")
    for n, day in enumerate((0, 30, 60, 90)):
        shop.order(f"A{n}", "A", day, 100.0)
    shop.refund("A-R", "A", 95, 40.0)  # after the last order: does not move last purchase
    shop.order("B0", "B", 85, 20.0)
    shop.refund("C-R", "C", 10, 15.0)  # bought before the data starts
    shop.order("E0", "E", 5, 30.0)
    shop.order("E1", "E", 40, 30.0)
    yield shop
    repos.db.close()


def test_recompute_stores_stats_scores_segments_and_key_customers(
    shop: Shop, clock: FixedClock
) -> None:
    summary = recompute_segments(shop.repos.db, clock.now())
    repo = SegmentRepository(shop.repos.db)

    assert summary.as_of == date(2011, 4, 11)  # the day after Ann's last order (day 90)
    assert summary.computed_at == clock.now()
    ann = repo.stats_for(shop.ids["A"])
    assert ann is not None
    assert ann.computed_at == clock.now()
    a = ann.stats
    assert (a.orders, a.returns, a.spend) == (4, 1, 360.0)
    assert a.first_purchase == T0
    assert a.last_purchase == T0 + timedelta(days=90)
    # three scored customers: Ann (90 days, 4 orders, 360), Bob (85, 1, 20), Eve (40, 2, 60)
    assert (a.recency, a.frequency, a.monetary) == (5, 5, 5)
    assert a.segment is Segment.CHAMPIONS
    assert a.key_customer  # 360 of 440 is 81.8%

    b = repo.stats_for(shop.ids["B"])
    e = repo.stats_for(shop.ids["E"])
    assert b is not None
    assert e is not None
    assert (b.stats.recency, b.stats.frequency, b.stats.monetary) == (3, 1, 1)
    assert b.stats.segment is Segment.POTENTIAL
    assert (e.stats.recency, e.stats.frequency, e.stats.monetary) == (1, 3, 3)
    assert e.stats.segment is Segment.AT_RISK
    assert not b.stats.key_customer
    assert not e.stats.key_customer

    c = repo.stats_for(shop.ids["C"])
    assert c is not None
    assert (c.stats.orders, c.stats.returns, c.stats.spend) == (0, 1, -15.0)
    assert c.stats.segment is Segment.RETURNS_ONLY
    assert c.stats.first_purchase is None
    assert repo.stats_for(shop.ids["D"]) is None  # no history, no row

    assert summary.customers == 3
    assert summary.returns_only == 1
    assert summary.revenue_cents == 44_000
    assert summary.key_customers == 1
    assert summary.top_fifth_customers == 1
    assert summary.top_fifth_revenue_share == pytest.approx(360 / 440)


def test_the_stored_summary_reads_back_the_same(shop: Shop, clock: FixedClock) -> None:
    repo = SegmentRepository(shop.repos.db)
    assert repo.summary() is None  # never computed
    computed = recompute_segments(shop.repos.db, clock.now())
    stored = repo.summary()
    assert stored == replace(computed, as_of=None)


def test_recompute_replaces_the_whole_table(shop: Shop, clock: FixedClock) -> None:
    recompute_segments(shop.repos.db, clock.now())
    # Eve's orders move to Bob (a merge in the shop): Eve must disappear from the stats.
    shop.order("E0", "B", 5, 30.0)
    shop.order("E1", "B", 40, 30.0)
    clock.advance(timedelta(hours=1))
    summary = recompute_segments(shop.repos.db, clock.now())
    repo = SegmentRepository(shop.repos.db)
    assert repo.stats_for(shop.ids["E"]) is None
    bob = repo.stats_for(shop.ids["B"])
    assert bob is not None
    assert (bob.stats.orders, bob.stats.spend, bob.computed_at) == (3, 80.0, clock.now())
    rows = shop.repos.db.execute("SELECT COUNT(*) FROM customer_stats").fetchone()[0]
    assert rows == summary.customers + summary.returns_only == 3


def test_as_of_cuts_the_history_at_that_day(shop: Shop, clock: FixedClock) -> None:
    result = compute_segments(shop.repos.db, as_of=date(2011, 2, 1))  # day 22
    by_id = {s.customer_id: s for s in result.customers}
    assert set(by_id) == {shop.ids["A"], shop.ids["C"], shop.ids["E"]}
    assert (by_id[shop.ids["A"]].orders, by_id[shop.ids["A"]].spend) == (1, 100.0)
    assert by_id[shop.ids["E"]].orders == 1
    assert result.summary.as_of == date(2011, 2, 1)
    assert SegmentRepository(shop.repos.db).summary() is None  # nothing stored


def test_nothing_to_segment(tmp_path: Path, clock: FixedClock) -> None:
    db = open_database(tmp_path / "empty.db")
    summary = recompute_segments(db, clock.now())
    assert summary.customers == 0
    assert summary.as_of is None
    assert SegmentRepository(db).summary() is None
    db.close()


def test_profile_and_recent_orders(shop: Shop) -> None:
    repo = SegmentRepository(shop.repos.db)
    assert repo.profile("nobody") is None
    ann = repo.profile("A")
    assert ann is not None
    assert (ann.name, ann.country, ann.language) == ("Ann", "United Kingdom", "en")
    assert ann.telegram_user_id is None
    assert not ann.surveys_opt_out
    recent = repo.recent_orders(shop.ids["A"], limit=3)
    assert [(o.external_id, o.kind, o.total) for o in recent] == [
        ("A-R", "return", -40.0),
        ("A3", "order", 100.0),
        ("A2", "order", 100.0),
    ]


# --- CLI -------------------------------------------------------------------------------


def cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(config), "customers", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config_file(tmp_path: Path, shop: Shop) -> Path:
    path = tmp_path / "carebot.toml"
    path.write_text(
        '[database]\npath = "shop.db"\n[shop]\nname = "Test Shop"\ntimezone = "Europe/London"\n',
        encoding="utf-8",
    )
    return path


def test_cli_segments(config_file: Path) -> None:
    code, out, err = cli(config_file, "segments")
    assert code == 0, err
    assert "customers segments --recompute" in out  # nothing computed yet

    code, out, err = cli(config_file, "segments", "--recompute")
    assert code == 0, err
    assert "as of 2011-04-11" in out
    assert "champions" in out
    assert "at risk" in out
    assert "1 customer with returns only" in out
    assert "Key customers: 1 (33.3% of customers) bring 81.8% of revenue." in out
    assert "Top 20% of customers (1) bring 81.8% of revenue." in out

    code, stored, _ = cli(config_file, "segments")
    assert code == 0
    assert "Key customers: 1 (33.3% of customers) bring 81.8% of revenue." in stored

    code, preview, err = cli(config_file, "segments", "--as-of", "2011-02-01")
    assert code == 0, err
    assert "as of 2011-02-01" in preview
    assert "not stored" in preview

    code, _, err = cli(config_file, "segments", "--as-of", "1 Feb")
    assert code == 2
    assert err == "carebot: error: --as-of must be a date like 2011-12-31, got '1 Feb'\n"


def test_cli_show(config_file: Path) -> None:
    code, _, err = cli(config_file, "show", "nobody")
    assert code == 2
    assert err == "carebot: error: no customer with external id 'nobody'\n"

    code, out, err = cli(config_file, "show", "A")
    assert code == 0, err
    assert "Ann (external id A)" in out
    assert "Telegram: not linked" in out
    assert "not computed yet" in out
    assert "orders 4, returns 1, net spend 360.00 GBP" in out

    cli(config_file, "segments", "--recompute")
    code, out, _ = cli(config_file, "show", "A")
    assert "R5 F5 M5, segment: champions, key customer: yes" in out
    assert out.count("\n  2011-") == 5  # last five orders and returns
    assert "A-R" in out

    code, out, _ = cli(config_file, "show", "D")
    assert code == 0
    assert "no orders or returns" in out


def test_a_cancelled_live_order_is_not_a_purchase(tmp_path: Path, clock: FixedClock) -> None:
    repos = Repositories.over(open_database(tmp_path / "c.db"))
    ann = repos.customers.create_shop_customer("A", first_name="Ann", now=clock.now())
    item = [NewOrderItem("21844", "RETRO SPOT MUG", 10, 3.0)]
    for number, status in (("1", OrderStatus.DELIVERED), ("2", OrderStatus.CANCELLED)):
        repos.orders.save_order(
            external_id=number,
            customer_id=ann,
            status=status,
            placed_at=clock.now(),
            currency="GBP",
            items=item,
            now=clock.now(),
        )
    recompute_segments(repos.db, clock.now())
    stats = repos.db.conn.execute("SELECT orders, spend FROM customer_stats").fetchone()
    assert stats == (1, 30.0)
    repos.db.close()
