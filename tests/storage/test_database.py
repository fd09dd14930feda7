"""The schema on real SQLite files: migrations, WAL, and what the repositories promise."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.models import FaqEntry, OrderStatus, TelegramIdentity
from storage.database import StorageError, applied_migrations, open_database, pending_migrations
from storage.migrations import MIGRATIONS
from storage.repositories import NewOrderItem, Repositories

ANN = TelegramIdentity(1001, "Ann", "Peeters", "ann", "en")


def test_migrations_from_zero_and_again_are_a_no_op(tmp_path: Path) -> None:
    db = open_database(tmp_path / "a.db", migrate=False)
    assert pending_migrations(db) == [m.name for m in MIGRATIONS.pending(db)]
    MIGRATIONS.apply(db)
    schema = db.schema
    MIGRATIONS.apply(db)
    db.close()
    again = open_database(tmp_path / "a.db")
    assert again.schema == schema
    assert applied_migrations(again) == [
        "m001_core",
        "m002_purchase_history",
        "m003_tickets",
        "m004_surveys",
        "m005_campaigns",
        "m006_dashboard",
    ]
    assert again.journal_mode == "wal"
    assert {"customers", "orders", "order_items", "messages", "faq_entries_fts"} <= set(
        again.table_names()
    )


def test_unusable_database_gives_a_clear_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot open database"):
        open_database(not_a_db)


def test_first_contact_creates_a_customer_once(repos: Repositories, clock: FixedClock) -> None:
    first = repos.customers.touch_from_telegram(ANN, 1001, "en", clock.now())
    repos.customers.update_settings(first.id, clock.now(), language="zh")
    again = repos.customers.touch_from_telegram(ANN, 1001, "en", clock.now())
    assert again.id == first.id
    assert again.language == "zh"  # a chosen language is never overwritten
    assert repos.customers.count() == 1


def test_binding_folds_the_first_contact_row_into_the_shop_customer(
    repos: Repositories, clock: FixedClock
) -> None:
    stub = repos.customers.touch_from_telegram(ANN, 1001, "en", clock.now())
    repos.messages.record_incoming(
        update_id=1,
        chat_id=1001,
        customer_id=stub.id,
        kind="text",
        telegram_message_id=1,
        text="hi",
        payload=None,
        now=clock.now(),
    )
    shop_id = repos.customers.create_shop_customer("12361", first_name="Ann", now=clock.now())
    repos.customers.bind_telegram(shop_id, ANN, 1001, clock.now())
    bound = repos.customers.by_telegram_user(1001)
    assert bound is not None
    assert bound.id == shop_id
    assert bound.external_id == "12361"
    assert repos.customers.get(stub.id) is None
    assert [m.text for m in repos.messages.for_customer(shop_id)] == ["hi"]


def test_orders_are_only_visible_to_their_customer(repos: Repositories, clock: FixedClock) -> None:
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    bob = repos.customers.create_shop_customer("2", first_name="Bob", now=clock.now())
    items = [
        NewOrderItem("21844", "RETRO SPOT MUG", 6, 2.95),
        NewOrderItem("POST", "POSTAGE", 1, 15),
    ]
    order_id = repos.orders.save_order(
        external_id="536012",
        customer_id=ann,
        status=OrderStatus.SHIPPED,
        placed_at=clock.now(),
        currency="GBP",
        items=items,
        now=clock.now(),
    )
    mine = repos.orders.get_for_customer(order_id, ann)
    assert mine is not None
    assert mine.total == 32.7
    assert [i.sku for i in mine.items] == ["21844", "POST"]
    assert repos.orders.get_for_customer(order_id, bob) is None
    # saving again replaces lines instead of duplicating them
    repos.orders.save_order(
        external_id="536012",
        customer_id=ann,
        status=OrderStatus.DELIVERED,
        placed_at=clock.now(),
        currency="GBP",
        items=items[:1],
        now=clock.now(),
    )
    recent = repos.orders.recent_for_customer(ann, 5)
    assert [(o.external_id, o.status, o.item_count) for o in recent] == [
        ("536012", OrderStatus.DELIVERED, 1)
    ]


def test_incoming_messages_are_stored_once_per_update(
    repos: Repositories, clock: FixedClock
) -> None:
    kwargs = dict(chat_id=5, customer_id=None, kind="text", telegram_message_id=9, payload=None)
    assert repos.messages.record_incoming(update_id=77, text="a", now=clock.now(), **kwargs)
    assert not repos.messages.record_incoming(update_id=77, text="a", now=clock.now(), **kwargs)
    assert [m.text for m in repos.messages.for_chat(5)] == ["a"]


def test_faq_search_uses_the_index_and_updates_by_slug(
    repos: Repositories, clock: FixedClock
) -> None:
    entry = FaqEntry(0, "returns", "en", "How do I return an item?", "Within 30 days.", "refund")
    repos.faq.upsert([entry], clock.now())
    repos.faq.upsert([entry], clock.now())
    assert repos.faq.count() == 1
    [hit] = repos.faq.search(["return"])
    assert hit.entry.slug == "returns"
    assert repos.faq.search(["nothing"]) == []


def test_faq_search_follows_every_change_to_the_faq(
    repos: Repositories, clock: FixedClock, tmp_path: Path
) -> None:
    """Searches are cached; an edit here (dashboard), a raw write on this connection, or a
    write from another connection (CLI import) shows in the very next search."""

    def answers(word: str) -> list[str]:
        return [hit.entry.answer for hit in repos.faq.search([word])]

    entry = FaqEntry(0, "returns", "en", "How do I return an item?", "Within 30 days.", "refund")
    entry_id = repos.faq.add(entry, clock.now())
    assert answers("return") == answers("return") == ["Within 30 days."]
    repos.faq.replace(entry_id, replace(entry, answer="Within 60 days."), clock.now())
    assert answers("return") == ["Within 60 days."]
    repos.db.execute("UPDATE faq_entries SET answer = 'Never.'")
    assert answers("return") == ["Never."]

    def edit_read_and_roll_back() -> None:  # what is read inside it must not be kept
        with repos.db.atomic():
            repos.db.execute("UPDATE faq_entries SET answer = 'Not kept.'")
            assert answers("return") == ["Not kept."]
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        edit_read_and_roll_back()
    assert answers("return") == ["Never."]
    other = Repositories.over(open_database(tmp_path / "carebot.db"))
    try:
        other.faq.upsert([replace(entry, answer="From the CLI.")], clock.now())
        assert answers("return") == ["From the CLI."]
        other.faq.delete(entry_id)
        assert answers("return") == []
    finally:
        other.db.close()


def test_link_tokens_are_single_use(repos: Repositories, clock: FixedClock) -> None:
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    repos.link_tokens.create("h", ann, clock.now(), clock.now() + timedelta(hours=1))
    assert repos.link_tokens.claim_and_bind("h", ann, ANN, 1001, clock.now())
    bob = TelegramIdentity(1002, "Bob")
    assert not repos.link_tokens.claim_and_bind("h", ann, bob, 1002, clock.now())
    repos.link_tokens.create("old", ann, clock.now(), clock.now() - timedelta(hours=1))
    assert repos.link_tokens.purge_expired(clock.now()) == 1


def test_a_locked_database_waits_instead_of_failing(tmp_path: Path) -> None:
    """Another writer holding the lock briefly (an import, the CLI) delays us, never fails us."""
    path = tmp_path / "locked.db"
    first = open_database(path)
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO products (sku, name, created_at, updated_at) VALUES ('x','x','t','t')"
    )
    release = threading.Timer(0.3, other.commit)
    release.start()
    first.execute(
        "INSERT INTO products (sku, name, created_at, updated_at) VALUES ('y','y','t','t')"
    )
    release.join()
    other.close()
    assert first.table("products").count == 2


def test_api_order_totals_round_half_up_and_fees_are_not_products(
    repos: Repositories, clock: FixedClock
) -> None:
    ann = repos.customers.create_shop_customer("1", first_name="Ann", now=clock.now())
    order_id = repos.orders.save_order(
        external_id="R1",
        customer_id=ann,
        status=OrderStatus.PAID,
        placed_at=clock.now(),
        currency="GBP",
        items=[NewOrderItem("X", "HALF CENT", 1, 0.125), NewOrderItem("POST", "POSTAGE", 1, 2)],
        now=clock.now(),
    )
    order = repos.orders.get_for_customer(order_id, ann)
    assert order is not None
    assert order.total == 2.13  # 0.125 rounds up, as the importer's SQLite ROUND does
    products = repos.db.conn.execute("SELECT sku FROM products ORDER BY sku").fetchall()
    assert products == [("X",)]
    flags = repos.db.conn.execute("SELECT sku, is_product FROM order_items ORDER BY sku").fetchall()
    assert flags == [("POST", 0), ("X", 1)]
