"""Importing purchase history into a real SQLite file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bot.clock import FixedClock, to_iso
from bot.config import Config
from bot.importing import RETAIL_PROFILE, ImportSummary, parse_column_map
from carebot.importer import ImportFileError, run_order_import, run_product_import
from storage.imports import ImportRunLog
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


def test_an_import_that_never_finished_is_reported_until_one_of_its_file_does(
    repos: Repositories, config: Config, clock: FixedClock, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "536365,85123A,MUG,6,2010-12-01 08:26:00,2.55,17850,UK\n")
    runs = ImportRunLog(repos.db)
    runs.start(str(path), "retail", clock.now())  # killed before it finished
    runs.start(str(tmp_path / "other.csv"), "retail", clock.now())
    assert runs.unfinished(str(path)) == [to_iso(clock.now())]
    run(repos, path, config, clock)
    assert runs.unfinished(str(path)) == []
    assert runs.unfinished(str(tmp_path / "other.csv")) == [to_iso(clock.now())]


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


def write_csv(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def line(
    invoice: str,
    sku: str,
    qty: object,
    customer: str,
    price: object = "2.00",
    when: str = "2010-12-01 08:26:00",
) -> str:
    return f"{invoice},{sku},ITEM {sku},{qty},{when},{price},{customer},UK\n"


def test_a_split_invoice_naming_another_customer_is_refused(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    path = write_csv(
        tmp_path,
        "split.csv",
        line("1001", "A", 1, "111") + line("1002", "B", 1, "222") + line("1001", "CUP", 1, "333"),
    )
    s = run(repos, path, config, clock)
    assert [str(p) for p in s.problems] == [
        "line 4: invoice 1001 belongs to another customer earlier in the file; these lines "
        "name a different one"
    ]
    rows = repos.db.conn.execute(
        "SELECT o.external_id, c.external_id, COUNT(i.id) FROM orders o "
        "JOIN customers c ON c.id = o.customer_id JOIN order_items i ON i.order_id = o.id "
        "GROUP BY o.id ORDER BY o.external_id"
    ).fetchall()
    assert rows == [("1001", "111", 1), ("1002", "222", 1)]


def test_a_corrected_file_moves_shrinks_and_redates_an_invoice(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    first = write_csv(tmp_path, "v1.csv", line("5001", "A", 1, "111") + line("5001", "B", 2, "111"))
    run(repos, first, config, clock)
    fixed = write_csv(tmp_path, "v2.csv", line("5001", "A", 1, "777", when="2011-01-05 09:00:00"))
    s = run(repos, fixed, config, clock)
    assert (s.orders_changed, s.orders_unchanged) == (1, 0)
    order = repos.db.conn.execute(
        "SELECT c.external_id, o.placed_at, o.total FROM orders o "
        "JOIN customers c ON c.id = o.customer_id WHERE o.external_id = '5001'"
    ).fetchone()
    assert order == ("777", "2011-01-05T09:00:00+00:00", 2.0)
    assert repos.db.conn.execute("SELECT COUNT(*) FROM order_items").fetchone() == (1,)


def test_reimporting_split_invoices_reports_the_same_duplicates(
    repos: Repositories, config: Config, clock: FixedClock
) -> None:
    first = run(repos, SAMPLE, config, clock)
    again = run(repos, SAMPLE, config, clock)
    assert again.duplicates == first.duplicates == 504
    assert again.bad == 0


@pytest.mark.parametrize(
    ("quantity", "price", "reason"),
    [
        ("Infinity", "1", "quantity 'Infinity' is not a number between"),
        ("sNaN", "1", "quantity 'sNaN' is not a number"),
        ("1e30", "1", "quantity '1e30' is not a number between"),
        ("1e99999999", "1", "quantity '1e99999999' is not a number"),
        ("2", "1e400", "price '1e400' is not a number between"),
    ],
)
def test_absurd_numbers_are_bad_lines_not_crashes(
    tmp_path: Path,
    repos: Repositories,
    config: Config,
    clock: FixedClock,
    quantity: str,
    price: str,
    reason: str,
) -> None:
    path = write_csv(
        tmp_path,
        "absurd.csv",
        line("7001", "A", quantity, "111", price) + line("7002", "B", 1, "111"),
    )
    s = run(repos, path, config, clock)
    assert s.orders_created == 1
    assert str(s.problems[0]).startswith(f"line 2: {reason}")


def test_line_numbers_survive_blank_lines_and_multiline_fields(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(
        (
            HEADER
            + "\r\n\r\n"
            + '8001,A,"TWO\r\nLINES",1,2010-12-01 08:26:00,1,111,UK\r\n'
            + line("8001", "B", 1, "111", price="-1").replace("\n", "\r\n")
        ).encode()
    )
    s = run(repos, path, config, clock)
    assert [str(p) for p in s.problems] == ["line 6: negative price -1"]


def test_json_lines_edge_cases(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    good = {
        "Invoice": "9001",
        "StockCode": "A",
        "Description": "X",
        "Quantity": 1,
        "InvoiceDate": "2010-12-01 08:26:00",
        "Price": 1,
        "Customer ID": "111",
    }
    path = tmp_path / "edge.jsonl"
    path.write_text(
        json.dumps(good)
        + "\n"
        + '{"Invoice": "9002", "Quantity": '
        + "9" * 5000
        + "}\n"
        + '{"Invoice": "9003", "Price": NaN}\n'
        + "[" * 100_000
        + "]" * 100_000
        + "\n",
        encoding="utf-8",
    )
    s = run(repos, path, config, clock)
    assert s.orders_created == 1
    assert [p.line for p in s.problems] == [2, 3, 4]
    assert all("not valid JSON" in p.reason or "JSON object" in p.reason for p in s.problems)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(
        json.dumps({**good, "customer_id": "1"} | {"Customer ID": None}).replace(
            '"Customer ID": null', '"cust": 1'
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportFileError, match="missing field\\(s\\) Customer ID"):
        run(repos, wrong, config, clock)


def test_generic_profile_has_no_c_prefix_rule_and_takes_a_date_format(
    tmp_path: Path, repos: Repositories, config: Config, clock: FixedClock
) -> None:
    from bot.importing import with_date_format

    path = write_csv(
        tmp_path,
        "generic.csv",
        line("CA-1001", "A", 2, "111", when="13/12/2010 09:00")
        + line("CA-1002", "A", -1, "111", when="14/12/2010 09:00"),
    )
    cols = with_date_format(parse_column_map("country=Country"), "%d/%m/%Y %H:%M")
    s = run(repos, path, config, clock, cols=cols)
    assert (s.orders_created, s.returns, s.bad) == (2, 1, 0)
    kinds = repos.db.conn.execute(
        "SELECT external_id, kind, substr(placed_at, 1, 10) FROM orders ORDER BY external_id"
    ).fetchall()
    assert kinds == [("CA-1001", "order", "2010-12-13"), ("CA-1002", "return", "2010-12-14")]
