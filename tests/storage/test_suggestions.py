"""Suggestion data from a real SQLite file filled by the importers, and the offline evaluation."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.config import Config
from bot.importing import RETAIL_PROFILE
from bot.models import OrderStatus
from bot.suggestions import CustomerHistory
from carebot.importer import run_order_import, run_product_import
from storage.database import open_database
from storage.repositories import NewOrderItem, Repositories
from storage.suggestions import (
    CHUNK,
    customer_histories,
    evaluate,
    load_model,
    purchase_lines,
    purchases_version,
)

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
# sku: (name, category, price); imported first, so their ids are 1, 2, 3... in this order
CATALOGUE = {
    "MUG": ("RETRO MUG", "kitchen", 3.0),
    "TEAPOT": ("RETRO TEAPOT", "kitchen", 9.0),
    "CARD": ("BIRTHDAY CARD", "cards", 1.0),
    "WRAP": ("GIFT WRAP", "cards", 0.8),
    "LANTERN": ("RED LANTERN", "home", 7.0),
    "CANDLE": ("ROSE CANDLE", "home", 4.0),
}
CUT_OFF = datetime(2010, 2, 1, tzinfo=UTC)


class Shop:
    """Products and orders loaded through the real importers (winter dates: London = UTC)."""

    def __init__(self, repos: Repositories, config: Config, clock: FixedClock, tmp: Path) -> None:
        self.repos, self.config, self.clock, self.tmp = repos, config, clock, tmp
        catalogue = tmp / "catalogue.csv"
        catalogue.write_text(
            "sku,name,category,price\n"
            + "".join(f"{sku},{n},{c},{p}\n" for sku, (n, c, p) in CATALOGUE.items())
        )
        run_product_import(repos, catalogue, clock)
        self.invoices = 0

    def product(self, sku: str) -> int:
        row = self.repos.db.execute("SELECT id FROM products WHERE sku = ?", [sku]).fetchone()
        return int(row[0])

    def customer(self, external_id: int) -> int:
        found = self.repos.customers.by_external_id(str(external_id))
        assert found is not None
        return found.id

    def buy(self, customer: int, day: str, *skus: str, invoice: str | None = None) -> None:
        """Buy one of each sku ("LANTERN*2": two) on that day at 10:00, as one invoice."""
        self.load([(customer, day, skus, invoice)])

    def web_teapot(
        self, external_id: str, customer: int, status: OrderStatus, on: datetime
    ) -> None:
        """One teapot ordered through the ingest API (saved or re-saved with this status)."""
        self.repos.orders.save_order(
            external_id=external_id,
            customer_id=self.customer(customer),
            status=status,
            placed_at=on,
            currency="GBP",
            items=[NewOrderItem("TEAPOT", "RETRO TEAPOT", 1, 9.0)],
            now=self.clock.now(),
        )

    def load(self, orders: list[tuple[int, str, tuple[str, ...], str | None]]) -> None:
        lines = []
        for customer, day, skus, invoice in orders:
            self.invoices += 1
            number = invoice or str(500_000 + self.invoices)
            for item in skus:
                sku, _, count = item.partition("*")
                name, _, price = CATALOGUE.get(sku, ("POSTAGE", None, 18.0))
                quantity = int(count or 1) * (-1 if number.startswith("C") else 1)
                lines.append(
                    f"{number},{sku},{name},{quantity},{day} 10:00:00,{price},{customer},France\n"
                )
        path = self.tmp / f"orders{self.invoices}.csv"
        path.write_text(HEADER + "".join(lines))
        run_order_import(
            self.repos,
            path,
            config=self.config,
            cols=RETAIL_PROFILE,
            profile="retail",
            clock=self.clock,
        )


@pytest.fixture
def shop(repos: Repositories, config: Config, clock: FixedClock, tmp_path: Path) -> Shop:
    return Shop(repos, config, clock, tmp_path)


@pytest.fixture
def history(shop: Shop) -> Shop:
    """Mug goes with teapot and card with wrap before the cut-off; card with lantern after."""
    shop.buy(1001, "2010-01-05", "MUG", "TEAPOT")
    shop.buy(1002, "2010-01-06", "MUG", "TEAPOT", "POST")
    shop.buy(1003, "2010-01-07", "CARD", "WRAP")
    shop.buy(1004, "2010-01-08", "CARD", "WRAP")
    shop.buy(1004, "2010-02-10", "LANTERN*2")
    shop.buy(1005, "2010-02-12", "CARD", "LANTERN")
    # a cancellation is not a purchase of the teapot
    shop.buy(1005, "2010-02-13", "TEAPOT", invoice="C600001")
    return shop


def test_the_model_sees_only_purchases_before_the_cut_off(history: Shop) -> None:
    mug, teapot, card, wrap, lantern = (
        history.product(s) for s in ("MUG", "TEAPOT", "CARD", "WRAP", "LANTERN")
    )
    before = load_model(history.repos.db, before=CUT_OFF)
    assert [p for p, _ in before.neighbours_of(mug)] == [teapot]
    assert [p for p, _ in before.neighbours_of(card)] == [wrap]
    assert before.buyers(lantern) == 0
    everything = load_model(history.repos.db)
    # equally close now (bought together twice, two buyers each): the lower id first
    assert [p for p, _ in everything.neighbours_of(card)] == [wrap, lantern]
    # the cancelled teapot: still two buyers
    assert everything.buyers(teapot) == 2
    assert [p.name for p in everything.popular(3)] == ["BIRTHDAY CARD", "RETRO MUG", "RETRO TEAPOT"]


def test_cancelled_live_orders_do_not_count(history: Shop) -> None:
    history.web_teapot("WEB-1", 1003, OrderStatus.CANCELLED, datetime(2010, 1, 20, tzinfo=UTC))
    assert load_model(history.repos.db).buyers(history.product("TEAPOT")) == 2


def test_the_purchases_version_moves_when_the_model_would_change(history: Shop) -> None:
    """The bot keeps one model and rebuilds it when this version changes."""
    db, teapot = history.repos.db, history.product("TEAPOT")
    versions = [purchases_version(db)]
    assert purchases_version(db) == versions[0]  # nothing changed: the model is kept
    history.buy(1006, "2010-03-01", "TEAPOT")  # an import
    versions.append(purchases_version(db))
    # the ingest API: an order, then its cancellation
    history.web_teapot("WEB-2", 1003, OrderStatus.DELIVERED, datetime(2010, 3, 2, tzinfo=UTC))
    versions.append(purchases_version(db))
    assert load_model(db).buyers(teapot) == 4
    history.web_teapot("WEB-2", 1003, OrderStatus.CANCELLED, datetime(2010, 3, 2, tzinfo=UTC))
    versions.append(purchases_version(db))
    assert load_model(db).buyers(teapot) == 3
    db.execute("UPDATE products SET active = 0 WHERE sku = 'MUG'")
    versions.append(purchases_version(db))
    assert len(set(versions)) == len(versions)


def test_inactive_products_are_not_suggested_but_still_count(history: Shop) -> None:
    db = history.repos.db
    mug, teapot = history.product("MUG"), history.product("TEAPOT")
    # no catalogue command deactivates a product yet
    db.execute("UPDATE products SET active = 0 WHERE sku = 'MUG'")
    model = load_model(db)
    assert "RETRO MUG" not in [p.name for p in model.popular(10)]
    assert model.neighbours_of(teapot) == []
    # whoever owns a mug is still offered the teapot
    assert model.neighbours_of(mug) == [(teapot, 1.0)]
    mug_owner = CustomerHistory(frozenset({mug}), (mug,))
    assert [p.name for p in model.suggest(mug_owner, 1)] == ["RETRO TEAPOT"]


def test_purchase_lines_are_per_customer_most_recent_first(history: Shop) -> None:
    db = history.repos.db
    c1004, c1005 = history.customer(1004), history.customer(1005)
    lines = purchase_lines(db, [c1004, c1005, 999_999])
    assert [(line.product_id, line.placed_at.date().isoformat()) for line in lines[c1004]] == [
        (history.product("LANTERN"), "2010-02-10"),
        (history.product("CARD"), "2010-01-08"),
        (history.product("WRAP"), "2010-01-08"),
    ]
    assert lines[c1004][0].category == "home"
    assert (lines[c1004][0].unit_price, lines[c1004][0].quantity) == (7.0, 2)
    assert lines[c1004][0].placed_at == datetime(2010, 2, 10, 10, 0, tzinfo=UTC)
    # only the cancellation and postage are left out
    assert [line.product_id for line in lines[c1005]] == [
        history.product("CARD"),
        history.product("LANTERN"),
    ]
    assert lines[999_999] == []
    before = purchase_lines(db, [c1004, c1005], before=CUT_OFF)
    assert len(before[c1004]) == 2
    assert before[c1005] == []


def test_histories_leave_out_customers_without_purchases(history: Shop) -> None:
    db = history.repos.db
    c1004, c1005 = history.customer(1004), history.customer(1005)
    found = customer_histories(db, [c1004, c1005], [], before=CUT_OFF)
    assert list(found) == [c1004]
    assert found[c1004].owned == {history.product("CARD"), history.product("WRAP")}


def test_purchase_lines_for_more_customers_than_sqlite_takes_at_once(shop: Shop) -> None:
    customers = range(20_000, 20_000 + CHUNK + 300)
    shop.load([(c, "2010-01-04", ("MUG",) if c % 2 else ("CARD",), None) for c in customers])
    ids = {shop.customer(c): c for c in customers}
    # as strict as the oldest SQLite still about (the bundled one takes 32,766)
    shop.repos.db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    lines = purchase_lines(shop.repos.db, list(ids))
    assert len(lines) == len(ids)
    mug, card = shop.product("MUG"), shop.product("CARD")
    for customer_id, external_id in ids.items():
        expected = mug if external_id % 2 else card
        assert [line.product_id for line in lines[customer_id]] == [expected]
    assert load_model(shop.repos.db).buyers(mug) == (CHUNK + 300) // 2


def test_evaluation_replays_a_window_with_known_hits(shop: Shop) -> None:
    # before the window: mug goes with teapot, card with wrap; the lantern is the most bought
    shop.buy(1, "2010-11-01", "MUG", "TEAPOT", "LANTERN")
    shop.buy(2, "2010-11-02", "MUG", "TEAPOT", "LANTERN")
    shop.buy(3, "2010-11-03", "CARD", "WRAP", "LANTERN")
    shop.buy(4, "2010-11-04", "CARD", "WRAP")
    shop.buy(5, "2010-11-05", "LANTERN")
    shop.buy(6, "2010-11-06", "LANTERN")
    shop.buy(12, "2010-11-07", "MUG")  # the mug is the most bought after the lantern
    # A owned the mug: suggested the teapot and buys it (popular: lantern, a miss)
    shop.buy(7, "2010-11-20", "MUG")
    shop.buy(7, "2010-12-05", "TEAPOT")
    shop.buy(7, "2010-12-30", "LANTERN")  # after the window: no hit for the popular lantern
    # B owned the wrap: suggested the card, buys it and a candle (popular lantern: same category)
    shop.buy(8, "2010-11-21", "WRAP")
    shop.buy(8, "2010-12-10", "CARD", "CANDLE")
    # C owned the lantern: suggested the teapot, popular the mug (not the lantern they own);
    # buys a mug: a hit for the popular one, and a category hit for the teapot (kitchen)
    shop.buy(5, "2010-12-11", "MUG")
    # D never bought before the window: skipped
    shop.buy(9, "2010-12-12", "MUG")
    # bought together only in the window: must not make the teapot a neighbour of the wrap
    shop.buy(10, "2010-12-13", "TEAPOT", "WRAP")
    shop.buy(11, "2010-12-14", "TEAPOT", "WRAP")

    result = evaluate(
        shop.repos.db,
        window_start=datetime(2010, 12, 1, tzinfo=UTC),
        window_end=datetime(2010, 12, 22, tzinfo=UTC),
        n=1,
        occasion_windows_before=[],
    )
    # customers 10 and 11 have no history either
    assert (result.evaluated, result.skipped_no_history, result.bought_new) == (3, 3, 3)
    assert (result.suggested.hits, result.suggested.category_hits) == (2, 3)
    assert (result.popular.hits, result.popular.category_hits) == (1, 2)
    assert result.suggested.hit_rate == pytest.approx(2 / 3)


def test_evaluation_on_the_demo_shop(demo_database: Path, tmp_path: Path) -> None:
    shutil.copyfile(demo_database, tmp_path / "demo.db")
    db = open_database(tmp_path / "demo.db")
    christmas, last_christmas = (datetime(year, 12, 25, tzinfo=UTC) for year in (2010, 2009))
    three_weeks = timedelta(days=21)
    result = evaluate(
        db,
        window_start=christmas - three_weeks,
        window_end=christmas,
        n=3,
        occasion_windows_before=[(last_christmas - three_weeks, last_christmas)],
    )
    db.close()
    # 28 customers bought in those three weeks; 4 of them for the first time
    assert (result.evaluated, result.skipped_no_history) == (24, 4)
    # every demo product has a category, so a product hit is a category hit too
    for hits in (result.suggested, result.popular):
        assert 0 <= hits.hits <= hits.category_hits <= result.evaluated
