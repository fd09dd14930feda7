"""The ingest API and the order importer fed hostile input.

* API: any body (random bytes, invalid UTF-8, deep nesting, NaN, SQL fragments, huge numbers,
  wrong types, enormous strings), correctly signed so it gets past the signature check: the
  answer is never a 5xx; a refusal is a 4xx with a JSON ``error`` text and leaves every table
  the API writes exactly as it was; an acceptance stores the values as they were sent.
* Importer: a CSV or JSON Lines file mixing good lines and broken ones: every broken line is
  reported with its line number, every good line is imported, and nothing of a broken line
  is stored.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot import ingest
from bot.clock import FixedClock
from bot.importing import RETAIL_HEADER as HEADER
from bot.importing import RETAIL_PROFILE
from bot.ingest import CUSTOMER_FIELDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from carebot.api import API_PREFIX
from carebot.importer import run_order_import
from carebot.runtime import CareBot, build_application
from carebot.web import build_web_app
from storage.database import open_database
from storage.repositories import Repositories
from tests.conftest import START, make_config
from tests.e2e.test_api import SECRET, api_config
from tests.property.strategies import FRAGMENTS, any_text, stretched

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Every table the API or the importer writes (api_signatures aside: the replay ledger
# records every correctly signed request, refused or not).
WRITTEN_TABLES = ("customers", "orders", "order_items", "order_events", "products", "link_tokens")


def snapshot(db: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        for table in WRITTEN_TABLES
    }


# ---------------------------------------------------------------- hostile values

huge_numbers = st.sampled_from(
    [10**20, -(10**20), 2**63, -(2**63) - 1, 10**400, 1e308, -0.0, 1e-320]
)
hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_numbers,
    st.floats(),  # NaN and infinities included: json.dumps writes them as bare NaN/Infinity
    any_text(max_size=60),
    st.sampled_from(FRAGMENTS),
    st.builds(stretched, any_text(min_size=1, max_size=8), st.integers(1000, 5000)),
)
hostile_json = st.recursive(
    hostile_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(any_text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
ITEM_FIELDS = ("sku", "description", "quantity", "unit_price")
ORDER_FIELDS = tuple(name for name in ingest.ORDER_FIELDS if name != "items")  # items: below
PLAUSIBLE = {
    "external_id": st.sampled_from(["A-1", "A-2", "12361", 12361]),
    "customer_external_id": st.sampled_from(["A-1", "12361", "nobody"]),
    "placed_at": st.sampled_from(["2026-11-20T10:00:00+00:00", "2026-11-20", "yesterday"]),
    "status": st.sampled_from(["placed", "shipped", "delivered", "cancelled", "lost"]),
    "first_name": st.just("Nina"),
    "quantity": st.integers(-3, 3),
    "unit_price": st.sampled_from(["3.75", 3.75, "-1", "0"]),
    "sku": st.sampled_from(["22728", "POST"]),
}


def record_of(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with the real field names, each plausible, hostile or missing, plus junk keys."""
    pairs = [st.tuples(st.just(n), PLAUSIBLE.get(n, hostile_scalars) | hostile_json) for n in names]
    return st.builds(
        lambda chosen, extra: {**dict(chosen), **extra},
        st.lists(st.one_of(*pairs), max_size=len(names) + 2),
        st.dictionaries(any_text(max_size=10), hostile_json, max_size=2),
    )


orders = st.builds(
    lambda order, items: {**order, "items": items},
    record_of(ORDER_FIELDS),
    st.lists(record_of(ITEM_FIELDS), max_size=4) | hostile_json,
)
VALID_ITEM = {"sku": "22728", "description": "MUG", "quantity": 2, "unit_price": "3.75"}
VALID: dict[str, dict[str, Any]] = {
    "/customers": {"external_id": "C-1", "first_name": "Nina", "language": "en"},
    "/orders": {
        "external_id": "O-1",
        "customer_external_id": "A-1",
        "placed_at": "2026-11-20T10:00:00+00:00",
        "items": [VALID_ITEM, VALID_ITEM | {"sku": "POST"}, VALID_ITEM | {"sku": "22729"}],
    },
    "/orders/O-1/status": {"status": "shipped"},
}
# Whole-number ids, a price as a decimal string with spaces, a description to trim.
NUMBERED_ORDER: dict[str, Any] = {
    **VALID["/orders"],
    "external_id": 536012,
    "items": [{**VALID_ITEM, "unit_price": " 2.55 ", "description": " MUG ", "quantity": 3.0}],
}


def one_field_spoiled(path: str, value: Any, where: int) -> Request:
    """A valid request with one field (of the body or of one item) given a hostile value."""
    body = json.loads(json.dumps(VALID[path]))
    target = body["items"][where % 3] if path == "/orders" and where >= 3 else body
    field = sorted(target)[where % len(target)]
    target[field] = value
    return Request(path, as_json(body))


# Bodies as bytes: JSON of hostile values, or not JSON / not UTF-8 at all.
raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=60).map(lambda raw: b'{"first_name": "' + raw + b'"}'),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.sampled_from([b"NaN", b'{"quantity": Infinity}', b"\xff\xfe{}", b'{"a": 1', b""]),
)


@dataclasses.dataclass(frozen=True)
class Request:
    path: str
    body: bytes

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(
            f"Request({self.path!r}, {self.body[:200]!r}{'...' if len(self.body) > 200 else ''})"
        )


def as_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


requests = st.one_of(
    st.builds(Request, st.just("/customers"), record_of(CUSTOMER_FIELDS).map(as_json)),
    st.builds(Request, st.just("/orders"), orders.map(as_json)),
    st.builds(
        Request,
        st.builds(
            lambda order: f"/orders/{quote(order, safe='')}/status",
            st.sampled_from(["A-1", "12361", "536012"]) | any_text(min_size=1, max_size=30),
        ),
        record_of(("status", "at", "notify")).map(as_json),
    ),
    st.builds(
        Request, st.sampled_from(["/customers", "/orders", "/orders/A-1/status"]), raw_bodies
    ),
    st.builds(Request, st.just("/orders"), hostile_json.map(as_json)),
    st.sampled_from(sorted(VALID.items())).map(lambda valid: Request(valid[0], as_json(valid[1]))),
    st.builds(one_field_spoiled, st.sampled_from(sorted(VALID)), hostile_json, st.integers(0, 8)),
)


@dataclasses.dataclass(repr=False)
class SignedClient:
    client: TestClient[web.Request, web.Application]
    care: CareBot
    timestamps: Iterator[int]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<ingest API client>")

    async def post(self, request: Request) -> tuple[int, Any]:
        at = next(self.timestamps)
        headers = {
            TIMESTAMP_HEADER: str(at),
            SIGNATURE_HEADER: sign(SECRET, at, request.body),
            "Content-Type": "application/json",
        }
        async with self.client.post(
            API_PREFIX + request.path, data=request.body, headers=headers
        ) as response:
            assert response.content_type == "application/json", response
            return response.status, await response.json()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SignedClient]:
    """The ingest API over HTTP on a database of its own (not polling: nothing to announce)."""
    config = api_config(tmp_path_factory.mktemp("property-api"))
    care = build_application(config, clock=FixedClock(START), token="123456:PROPERTY")
    care.repos.customers.create_shop_customer("A-1", first_name="Ann", now=START)
    web_app = build_web_app(config, care.application, care.repos)
    # Distinct timestamps within the allowed skew, so a repeated body is not a replay.
    skew = config.api.max_clock_skew_seconds
    timestamps = (int(START.timestamp()) - n % skew for n in itertools.count())
    async with TestClient(TestServer(web_app)) as client:
        yield SignedClient(client, care, timestamps)
    care.db.close()


@pytest.mark.asyncio(loop_scope="module")
@PROPERTY_SETTINGS
@given(request=requests)
# Few generated bodies are accepted: these are, so what an acceptance stores is checked too.
@example(request=Request("/customers", as_json(VALID["/customers"])))
@example(request=Request("/orders", as_json(VALID["/orders"])))
@example(request=Request("/orders/O-1/status", as_json(VALID["/orders/O-1/status"])))
@example(request=Request("/orders", as_json(NUMBERED_ORDER)))
async def test_the_api_refuses_hostile_input_with_a_4xx_and_stores_nothing(
    api: SignedClient, request: Request
) -> None:
    before = snapshot(api.care.db)
    status, answer = await api.post(request)
    event(f"{request.path.split('/')[1]}: {status}")  # --hypothesis-show-statistics
    assert status < 500, f"{status} {answer}"
    if status >= 400:
        assert isinstance(answer.get("error"), str)
        assert answer["error"]
        assert snapshot(api.care.db) == before, f"refused with {status} but stored something"
    else:
        check_stored_as_sent(api.care.db, request, answer)


def check_stored_as_sent(db: Any, request: Request, answer: dict[str, Any]) -> None:
    """An accepted body is stored as it was sent, under the record the answer names."""
    body = json.loads(request.body)
    if request.path == "/customers":
        customer = db.execute(
            "SELECT external_id, first_name FROM customers WHERE id = ?", [answer["customer_id"]]
        ).fetchone()
        assert customer == (str(body["external_id"]), body["first_name"].strip()), answer
    elif request.path == "/orders":
        order = db.execute(
            "SELECT o.external_id, c.external_id FROM orders o "
            "JOIN customers c ON c.id = o.customer_id WHERE o.id = ?",
            [answer["order_id"]],
        ).fetchone()
        assert order == (str(body["external_id"]), str(body["customer_external_id"])), answer
        items = db.execute(
            "SELECT sku, description, quantity, unit_price FROM order_items "
            "WHERE order_id = ? ORDER BY line_no",
            [answer["order_id"]],
        ).fetchall()
        assert items == [sent_item(item) for item in body["items"]], answer
    elif answer["result"] == "changed":  # a status: its event, at the time the answer gives
        events = db.execute(
            "SELECT at FROM order_events WHERE order_id = ? AND status = ?",
            [answer["order_id"], body["status"]],
        ).fetchall()
        assert (answer["at"],) in events, (answer, events)


def sent_item(item: dict[str, Any]) -> tuple[str, str, int, float]:
    """An accepted item as the API stores it (a price may come as a decimal string)."""
    price = item["unit_price"]
    return (
        str(item["sku"]),
        (item.get("description") or "").strip(),
        int(item["quantity"]),
        float(Decimal(price.strip())) if isinstance(price, str) else float(price),
    )


# ---------------------------------------------------------------- the importer

_invoice_numbers = itertools.count(1)
# How the importer (a text stream opened with newline="") splits lines.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of an import file; ``broken`` names the field made invalid (None: good)."""

    values: tuple[Any, ...]
    broken: str | None


# Values that can never be valid in the field, each a different way of being wrong.
BROKEN = {
    "Invoice": st.sampled_from(["", "   "]),
    "StockCode": st.sampled_from(["", "  "]),
    "Quantity": st.sampled_from(
        [
            "",
            "abc",
            "NaN",
            "inf",
            "-inf",
            "1e999",
            "0",
            "1.5",
            "10000001",
            "'; DROP TABLE orders; --",
            "-3",
        ]
    ),
    "Price": st.sampled_from(["", "x", "NaN", "Infinity", "-1", "1e400", "99999999", "1,2,3"]),
    "InvoiceDate": st.sampled_from(
        ["", "yesterday", "2010-13-45 25:61:00", "0000-00-00", "9" * 40]
    ),
}
good_rows = st.builds(
    lambda sku, description, quantity, price, customer, country: Row(
        ("", sku, description, quantity, "2010-12-01 08:26:00", price, customer, country), None
    ),
    st.from_regex(r"[A-Z0-9]{3,8}", fullmatch=True),
    any_text(max_size=80),
    st.integers(1, 1000).map(str),
    st.decimals(0, 10000, places=2).map(str),
    st.sampled_from(["12361", "12789", "99001", "99002.0"]),
    any_text(max_size=20),
)


def broken_row(good: Row, field: str, value: str) -> Row:
    values = tuple(
        value if name == field else v for name, v in zip(HEADER, good.values, strict=True)
    )
    return Row(values, field)


rows = st.one_of(
    good_rows,
    st.sampled_from(list(BROKEN)).flatmap(
        lambda field: st.builds(broken_row, good_rows, st.just(field), BROKEN[field])
    ),
)


def write_file(path: Path, lines: list[Row], fmt: str) -> list[tuple[int, Row]]:
    """Write the lines, each its own invoice; returns (line number where it starts, row).

    A CSV field may hold line breaks (quoted): the rows after it start further down.
    """
    written: list[tuple[int, Row]] = []
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    if fmt == "csv":
        writer.writerow(HEADER)
    for row in lines:
        invoice = row.values[0] if row.broken == "Invoice" else f"P{next(_invoice_numbers)}"
        values = (invoice, *row.values[1:])
        start = len(LINE_BREAK.findall(text.getvalue())) + 1
        written.append((start, Row(values, row.broken)))
        if fmt == "csv":
            writer.writerow(values)
        else:
            text.write(json.dumps(dict(zip(HEADER, values, strict=True))) + "\n")
    path.write_text(text.getvalue(), encoding="utf-8", newline="")
    return written


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repositories, Path]]:
    directory = tmp_path_factory.mktemp("property-import")
    repos = Repositories.over(open_database(directory / "carebot.db"))
    yield repos, directory
    repos.db.close()


@PROPERTY_SETTINGS
@given(lines=st.lists(rows, min_size=1, max_size=30), fmt=st.sampled_from(["csv", "jsonl"]))
def test_import_reports_each_bad_line_and_keeps_every_good_one(
    shop: tuple[Repositories, Path], lines: list[Row], fmt: str
) -> None:
    repos, directory = shop
    path = directory / f"orders.{fmt}"
    written = write_file(path, lines, fmt)
    items_before = repos.db.execute("SELECT count(*) FROM order_items").fetchone()[0]
    summary, _ = run_order_import(
        repos,
        path,
        config=make_config(directory),
        cols=RETAIL_PROFILE,
        profile="retail",
        clock=FixedClock(START),
    )
    reported = {problem.line for problem in summary.problems}
    assert reported == {line for line, row in written if row.broken}, summary.problems
    good = [row for _, row in written if not row.broken]
    for row in good:
        stored = repos.db.execute(
            "SELECT i.sku, i.quantity FROM order_items i JOIN orders o ON o.id = i.order_id "
            "WHERE o.external_id = ?",
            [row.values[0]],
        ).fetchall()
        assert stored == [(row.values[1], int(row.values[3]))], row
    items_after = repos.db.execute("SELECT count(*) FROM order_items").fetchone()[0]
    assert items_after - items_before == len(good)
