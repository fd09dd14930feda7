"""Purchase history for gift suggestions: baskets, per-customer lines, offline evaluation.

What counts as a purchase: a product line (``is_product = 1`` with a known product) of an
order of kind 'order' that was not cancelled or refunded. Returns, fees and postage, and
lines whose product is unknown are left out everywhere here. Only active products are ever
suggested; inactive ones still count as evidence of what goes with what.

``before`` cut-offs compare ``placed_at`` (UTC ISO-8601 text, as stored) with the moment
in the same format, so "placed before" is exact to the second.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from bot.suggestion_eval import EvalResult, WindowPurchases, evaluate_suggestions
from bot.suggestions import (
    DEFAULT_MIN_CO_COUNT,
    DEFAULT_NEIGHBOURS,
    CustomerHistory,
    ProductInfo,
    PurchaseLine,
    SuggestionModel,
    history_from_lines,
)

# Well under SQLite's smallest default limit on bound variables (999 before 3.32).
CHUNK = 900

_LINES = " FROM orders o JOIN order_items i ON i.order_id = o.id"
_LINES_WITH_CATEGORY = _LINES + " LEFT JOIN products p ON p.id = i.product_id"
_PURCHASES = """
    WHERE o.kind = 'order' AND o.status NOT IN ('cancelled', 'refunded')
      AND i.is_product = 1 AND i.product_id IS NOT NULL
"""


def _cut_off(before: datetime | None) -> tuple[str, list[Any]]:
    if before is None:
        return "", []
    return " AND o.placed_at < ?", [to_iso(before)]


def catalogue(db: Database) -> dict[int, ProductInfo]:
    """The active products: the only ones that may be suggested."""
    rows = db.execute("SELECT id, sku, name, category, price FROM products WHERE active = 1")
    return {row[0]: ProductInfo(*row) for row in rows}


def baskets(db: Database, *, before: datetime | None = None) -> Iterator[tuple[int, list[int]]]:
    """(customer id, the distinct products they bought), one customer at a time.

    One query, ordered by customer, read as it streams.
    """
    where, params = _cut_off(before)
    rows = db.execute(
        "SELECT DISTINCT o.customer_id, i.product_id"
        + _LINES
        + _PURCHASES
        + where
        + " ORDER BY o.customer_id",
        params,
    )
    for customer_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        yield customer_id, [product_id for _, product_id in group]


# What the model is built from, in a few cheap reads: the newest order, order line and order
# event (the ingest API and the importer write a line or an event for every new order, new
# lines and status change) and the catalogue's size, active products and last change. Index
# lookups and a scan of the products table only, so it can be asked on the event loop.
_PURCHASES_VERSION = """
    SELECT (SELECT MAX(id) FROM orders), (SELECT MAX(id) FROM order_items),
           (SELECT MAX(id) FROM order_events), COUNT(*), SUM(active), MAX(updated_at)
    FROM products
"""


def purchases_version(db: Database) -> tuple[Any, ...]:
    """Changes whenever purchases or the catalogue change in a way the model can see
    (an import that only rewrites an order's header in place is the exception: the
    model's holder also rebuilds it at least hourly)."""
    return tuple(db.execute(_PURCHASES_VERSION).fetchone())


@dataclass(frozen=True)
class CachedModel:
    """A model with when it was built and the ``purchases_version`` it was built on."""

    built_at: datetime
    version: tuple[Any, ...]
    model: SuggestionModel


def load_model(
    db: Database,
    *,
    before: datetime | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    min_co_count: int = DEFAULT_MIN_CO_COUNT,
) -> SuggestionModel:
    """The suggestion model over purchases placed before ``before`` (all if None)."""
    return SuggestionModel.build_grouped(
        baskets(db, before=before),
        catalogue(db),
        neighbours=neighbours,
        min_co_count=min_co_count,
    )


def purchase_lines(
    db: Database, customer_ids: Sequence[int], *, before: datetime | None = None
) -> dict[int, list[PurchaseLine]]:
    """Each customer's purchase lines, most recent first; every asked-for id is a key."""
    where, cut_off = _cut_off(before)
    lines: dict[int, list[PurchaseLine]] = {customer_id: [] for customer_id in customer_ids}
    unique = list(lines)
    moments: dict[str, datetime] = {}
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        rows = db.execute(
            "SELECT o.customer_id, i.product_id, o.placed_at, p.category, i.unit_price,"
            " i.quantity"
            + _LINES_WITH_CATEGORY
            + _PURCHASES
            + f" AND o.customer_id IN ({', '.join('?' * len(chunk))})"
            + where
            + " ORDER BY o.customer_id, o.placed_at DESC, o.id DESC, i.line_no",
            [*chunk, *cut_off],
        )
        for customer_id, product_id, placed_at, category, unit_price, quantity in rows:
            moment = moments.get(placed_at)
            if moment is None:  # every line of an order has its moment: parse it once
                moment = moments[placed_at] = from_iso(placed_at)
            lines[customer_id].append(
                PurchaseLine(customer_id, product_id, moment, category, unit_price, quantity)
            )
    return lines


def customer_histories(
    db: Database,
    customer_ids: Sequence[int],
    occasion_windows: Sequence[tuple[datetime, datetime]],
    *,
    before: datetime | None = None,
) -> dict[int, CustomerHistory]:
    """Histories of the customers who bought anything before ``before``; others are absent."""
    return {
        customer_id: history_from_lines(lines, occasion_windows)
        for customer_id, lines in purchase_lines(db, customer_ids, before=before).items()
        if lines
    }


def window_purchases(db: Database, start: datetime, end: datetime) -> dict[int, WindowPurchases]:
    """What each customer bought in ``[start, end)``: products and their categories."""
    products: defaultdict[int, set[int]] = defaultdict(set)
    categories: defaultdict[int, set[str]] = defaultdict(set)
    rows = db.execute(
        "SELECT o.customer_id, i.product_id, p.category"
        + _LINES_WITH_CATEGORY
        + _PURCHASES
        + " AND o.placed_at >= ? AND o.placed_at < ?",
        [to_iso(start), to_iso(end)],
    )
    for customer_id, product_id, category in rows:
        products[customer_id].add(product_id)
        if category is not None:
            categories[customer_id].add(category)
    return {
        customer_id: WindowPurchases(frozenset(bought), frozenset(categories[customer_id]))
        for customer_id, bought in products.items()
    }


def evaluate(
    db: Database,
    *,
    window_start: datetime,
    window_end: datetime,
    n: int,
    occasion_windows_before: Sequence[tuple[datetime, datetime]],
) -> EvalResult:
    """Replay one occasion window (see :mod:`bot.suggestion_eval` for the figures).

    Model, histories and popularity use only what was placed before ``window_start``;
    ``occasion_windows_before`` are the same occasion's windows in earlier years.
    """
    purchases = window_purchases(db, window_start, window_end)
    histories = customer_histories(
        db, sorted(purchases), occasion_windows_before, before=window_start
    )
    return evaluate_suggestions(
        load_model(db, before=window_start),
        histories,
        purchases,
        n=n,
        window_start=window_start,
        window_end=window_end,
    )
