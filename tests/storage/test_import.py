"""Importing purchase history into a real SQLite file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bot.clock import FixedClock
from bot.config import Config
from bot.importing import RETAIL_PROFILE, ImportSummary, parse_column_map
from carebot.importer import ImportFileError, run_order_import, run_product_import
from storage.repositories import Repositories

SAMPLE = Path(__file__).resolve().parents[2] / "carebot" / "demo" / "online_retail_ii_sample.csv.gz"
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def run(
    repos: Repositories, path: Path, config: Config, clock: FixedClock, **kw: object
) -> ImportSummary:
    summary, _ = run_order_import(
        repos,
        path,
        config=config,
        cols=kw.pop("cols", RETAIL_PROFILE),  # type: ignore[arg-type]
        profile="retail",
        clock=clock,
    )
    return summary


def snapshot(repos: Repositories) -> tuple[object, ...]:
    q = repos.db.conn.execute
    return (
        q("SELECT * FROM orders ORDER BY id").fetchall(),
        q("SELECT * FROM order_items ORDER BY id").fetchall(),
        q("SELECT * FROM customers ORDER BY id").fetchall(),
        q("SELECT * FROM products ORDER BY id").fetchall(),
        q("SELECT * FROM order_events ORDER BY id").fetchall(),
    )


def test_the_real_excerpt_imports_with_exact_counts(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    s = run(repos, SAMPLE, config, clock)
    assert s.lines == 34_766
    assert (s.orders_created, s.returns, s.customers_created) == (1_720, 302, 262)
    assert (s.skipped_no_customer, s.duplicates, s.bad) == (601, 504, 0)
    assert s.parts_merged == 23
    assert s.fee_lines == 1_064
    q = repos.db.conn.execute
    assert q("SELECT COUNT(*), SUM(kind = 'return') FROM orders").fetchone() == (1_720, 302)
    assert q("SELECT COUNT(*) FROM order_items").fetchone() == (34_766 - 601 - 504,)
    assert q("SELECT COUNT(*) FROM products").fetchone() == (s.products_created,)
    # cancellations are negative, linked to their customer, and not products' prices
    total, customer = q(
        "SELECT total, customer_id FROM orders WHERE kind = 'return' ORDER BY id LIMIT 1"
    ).fetchone()
    assert total < 0
    assert customer is not None
    # postage is on the order but is not a product
    assert q("SELECT COUNT(*) FROM products WHERE sku IN ('POST', 'M', 'D')").fetchone() == (0,)
    assert q("SELECT COUNT(*) FROM order_items WHERE sku = 'POST' AND is_product = 0").fetchone()[0]
    # descriptions are trimmed; categories come from the rules
    assert q("SELECT COUNT(*) FROM products WHERE name != TRIM(name)").fetchone() == (0,)
    assert q("SELECT category FROM products WHERE sku = '21844'").fetchone() == ("kitchen",)


def test_a_second_import_changes_nothing(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    run(repos, SAMPLE, config, clock)
    before = snapshot(repos)
    again = run(repos, SAMPLE, config, clock)
    assert (again.orders_created, again.orders_changed, again.orders_unchanged) == (0, 0, 1_720)
    assert (again.customers_created, again.products_created) == (0, 0)
    assert snapshot(repos) == before


def test_broken_lines_are_reported_by_number_and_the_good_ones_kept(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(
        HEADER
        + "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER  ,6,2010-12-01 08:26:00,2.55,17850,UK\n"
        + "536365,71053,WHITE METAL LANTERN,six,2010-12-01 08:26:00,3.39,17850,UK\n"
        + "536365,84406B,CREAM CUPID HEARTS COAT HANGER,8,yesterday,2.75,17850,UK\n"
        + "536365,84029G,KNITTED UNION FLAG HOT WATER BOTTLE,6,2010-12-01 08:26:00,-3,17850,UK\n"
        + '536365,22752,"SET 7 BABUSHKA NESTING BOXES",2,2010-12-01 08:26:00,7.65,17850,UK\n'
        + "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,UK\n"
        + "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,-32,2010-12-01 08:34:00,1.69,13047,UK\n"
        + "536368,22960,JAM MAKING SET WITH JARS,6,2010-12-01 08:34:00,4.25,13047,UK\n"
        + "536368,22960,JAM MAKING SET WITH JARS,6,2010-12-01 08:34:00,4.25,13047,UK\n"
        + "536368,22913,RED COAT RACK PARIS FASHION,3,2010-12-01 08:34:00,4.95,99999,UK\n",
        encoding="utf-8",
    )
    s = run(repos, path, config, clock)
    assert [str(p) for p in s.problems] == [
        "line 3: quantity 'six' is not a number",
        "line 4: date 'yesterday' is not a date (expected 2010-12-01 08:26:00)",
        "line 5: negative price -3",
        "line 8: negative quantity -32 on a sale (invoice 536367)",
        "line 11: customer 99999 differs from 13047 earlier in invoice 536368",
        "line 10: duplicate of an earlier line of invoice 536368",
    ]
    assert (s.bad, s.duplicates, s.skipped_no_customer, s.orders_created) == (5, 1, 1, 2)
    items = repos.db.conn.execute(
        "SELECT o.external_id, i.description FROM order_items i JOIN orders o ON o.id = i.order_id"
        " ORDER BY i.id"
    ).fetchall()
    assert items == [
        ("536365", "WHITE HANGING HEART T-LIGHT HOLDER"),
        ("536365", "SET 7 BABUSHKA NESTING BOXES"),
        ("536368", "JAM MAKING SET WITH JARS"),
    ]


def test_json_lines_gzip_and_a_generic_mapping(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    path = tmp_path / "orders.jsonl.gz"
    rows = [
        {
            "order": "A-1",
            "sku": "MUG-1",
            "title": "Spotty mug",
            "qty": 2,
            "when": "2024-05-01T10:00:00+02:00",
            "unit": 4.5,
            "email": "ann@example.com",
        },
        {
            "order": "A-1",
            "sku": "POST",
            "title": "Postage",
            "qty": 1,
            "when": "2024-05-01T10:00:00+02:00",
            "unit": 3,
            "email": "ann@example.com",
        },
    ]
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
        out.write("{not json\n")
    cols = parse_column_map(
        "invoice=order,sku=sku,description=title,quantity=qty,date=when,price=unit,customer=email"
    )
    s = run(repos, path, config, clock, cols=cols)
    assert (s.orders_created, s.customers_created, s.bad) == (1, 1, 1)
    assert str(s.problems[0]).startswith("line 3: not valid JSON")
    order = repos.db.conn.execute(
        "SELECT total, placed_at FROM orders WHERE external_id = 'A-1'"
    ).fetchone()
    assert order == (12.0, "2024-05-01T08:00:00+00:00")


def test_missing_columns_stop_the_import_with_their_names(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("Invoice,StockCode\n1,2\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing column\\(s\\) Description, Quantity"):
        run(repos, path, config, clock)
    with pytest.raises(ValueError, match="bad column mapping 'colour=Red'"):
        parse_column_map("colour=Red")


def test_a_catalog_sets_real_categories(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    run(repos, SAMPLE, config, clock)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "sku,name,category,price\n21844,RETRO SPOT MUG,drinkware,2.95\n"
        ",NO SKU,x,1\nNEW1,New thing,,\n",
        encoding="utf-8",
    )
    result = run_product_import(repos, catalog, clock)
    assert (result.created, result.updated) == (1, 1)
    assert result.problems == ["line 3: sku is empty"]
    assert repos.db.conn.execute(
        "SELECT category FROM products WHERE sku = '21844'"
    ).fetchone() == ("drinkware",)
