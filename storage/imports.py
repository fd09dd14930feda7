"""Writing imported invoices: one invoice is one savepoint, batches commit together.

Hot path for million-line imports, so it talks to sqlite3 directly (plain statements,
executemany) and caches customer and product ids.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from bot.catalog import CategoryRules
from bot.clock import to_iso
from bot.importing import ImportSummary, Invoice, InvoiceOutcome, Line, ProductRow
from bot.models import OrderStatus
from storage.database import write_transaction

# Invoices per commit: large enough to amortise the commit, small enough to lose little on a
# crash (a half-written batch rolls back whole; a half-written invoice never exists).
BATCH_INVOICES = 500
LineKey = tuple[str, str, int, Decimal]


@dataclass(slots=True)
class _Progress:
    """An invoice met in this run: its order, stored line count, and lines accounted for."""

    order_id: int
    customer_id: int
    stored: int
    cursor: int
    reported_changed: bool


class OrderImportWriter:
    """An ``InvoiceSink`` over a SQLite database; use as a context manager.

    Each invoice part is compared with its own region of the stored lines (a part further
    down the file continues where the previous part ended), so re-importing a file changes
    nothing, and stored lines no part accounts for are dropped at the end (``finish``).
    """

    def __init__(
        self, db: Database, *, rules: CategoryRules, currency: str, source: str, now: datetime
    ) -> None:
        self.conn: sqlite3.Connection = db.conn
        self.rules = rules
        self.currency = currency
        self.source = source
        self.stamp = to_iso(now)
        self.customers: dict[str, int] = {}
        self.products: dict[str, int] = {}
        self.progress: dict[str, _Progress] = {}
        self.pending = 0

    def __enter__(self) -> OrderImportWriter:
        # IMMEDIATE: take the write lock up front, so a concurrent writer (the running bot)
        # makes us wait (busy timeout) instead of failing a read-then-write transaction.
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def write_invoice(self, invoice: Invoice, *, seen_before: bool) -> InvoiceOutcome:
        self.conn.execute("SAVEPOINT invoice")
        try:
            if seen_before:
                outcome = self._write_part(invoice, self.progress[invoice.number])
            else:
                outcome = self._write_first(invoice)
        except BaseException:
            # A full disk (or I/O error) makes SQLite roll back the whole transaction itself,
            # savepoint included: then there is nothing left to undo, and the error is news.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO invoice")
                self.conn.execute("RELEASE invoice")
            raise
        self.conn.execute("RELEASE invoice")
        self._maybe_commit()
        return outcome

    def finish(self) -> int:
        """Trim stored lines that no part of this run accounted for; see ``InvoiceSink``."""
        newly_changed = 0
        for state in self.progress.values():
            if state.stored > state.cursor:
                self.conn.execute(
                    "DELETE FROM order_items WHERE order_id = ? AND line_no > ?",
                    [state.order_id, state.cursor],
                )
                self._update_total(state.order_id)
                newly_changed += not state.reported_changed
        return newly_changed

    def _maybe_commit(self) -> None:
        self.pending += 1
        if self.pending >= BATCH_INVOICES:
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN IMMEDIATE")
            self.pending = 0

    def _write_first(self, invoice: Invoice) -> InvoiceOutcome:
        customer_id, new_customer = self._customer(invoice)
        lines, duplicates = _without_duplicates(invoice.lines, set())
        keys = [_key(line) for line in lines]
        row = self.conn.execute(
            "SELECT id, customer_id, placed_at, country, kind FROM orders WHERE external_id = ?",
            [invoice.number],
        ).fetchone()
        if row is None:
            order_id = self._insert_order(invoice, customer_id)
            new_products = self._insert_lines(order_id, lines, first_line_no=1)
            self._update_total(order_id)
            self.progress[invoice.number] = _Progress(
                order_id, customer_id, len(lines), len(lines), True
            )
            return InvoiceOutcome(True, False, new_customer, new_products, duplicates)
        order_id = int(row[0])
        header = (customer_id, to_iso(invoice.placed_at), invoice.country, _kind(invoice))
        changed = tuple(row[1:]) != header
        if changed:
            self.conn.execute(
                """UPDATE orders SET customer_id = ?, placed_at = ?, country = ?, kind = ?,
                   updated_at = ? WHERE id = ?""",
                [*header, self.stamp, order_id],
            )
        stored = self._stored_keys(order_id)
        new_products = 0
        if stored[: len(keys)] != keys:
            self.conn.execute("DELETE FROM order_items WHERE order_id = ?", [order_id])
            new_products = self._insert_lines(order_id, lines, first_line_no=1)
            stored, changed = keys, True
        if changed:
            self._update_total(order_id)
        self.progress[invoice.number] = _Progress(
            order_id, customer_id, len(stored), len(keys), changed
        )
        return InvoiceOutcome(False, changed, new_customer, new_products, duplicates)

    def _write_part(self, invoice: Invoice, state: _Progress) -> InvoiceOutcome:
        """More lines of an invoice met earlier in this file: they continue its order."""
        customer_id, new_customer = self._customer(invoice)
        if customer_id != state.customer_id:
            return InvoiceOutcome(
                False,
                False,
                new_customer,
                0,
                rejected=f"invoice {invoice.number} belongs to another customer earlier in the "
                "file; these lines name a different one",
            )
        stored = self._stored_keys(state.order_id)
        earlier = set(stored[: state.cursor])
        lines, duplicates = _without_duplicates(invoice.lines, earlier)
        keys = [_key(line) for line in lines]
        end = state.cursor + len(keys)
        new_products = 0
        if stored[state.cursor : end] != keys:
            self.conn.execute(
                "DELETE FROM order_items WHERE order_id = ? AND line_no > ?",
                [state.order_id, state.cursor],
            )
            new_products = self._insert_lines(state.order_id, lines, state.cursor + 1)
            self._update_total(state.order_id)
            state.stored, state.reported_changed = end, True
        state.cursor = end
        return InvoiceOutcome(False, False, new_customer, new_products, duplicates)

    def _insert_lines(self, order_id: int, lines: list[Line], first_line_no: int) -> int:
        """Insert the lines from ``first_line_no`` on; returns how many products were new."""
        new_products = 0
        items = []
        for n, line in enumerate(lines, start=first_line_no):
            product_id = None
            if not line.is_fee:
                product_id, created = self._product(line)
                new_products += created
            items.append(
                (
                    order_id,
                    n,
                    product_id,
                    line.sku,
                    line.description,
                    line.quantity,
                    float(line.unit_price),
                    0 if line.is_fee else 1,
                )
            )
        self.conn.executemany(
            """INSERT INTO order_items (order_id, line_no, product_id, sku, description,
                                        quantity, unit_price, is_product)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            items,
        )
        return new_products

    def _update_total(self, order_id: int) -> None:
        self.conn.execute(
            """UPDATE orders SET
                 total = (SELECT ROUND(COALESCE(SUM(quantity * unit_price), 0), 2)
                          FROM order_items WHERE order_id = :id),
                 updated_at = :now
               WHERE id = :id""",
            {"id": order_id, "now": self.stamp},
        )

    def _stored_keys(self, order_id: int) -> list[LineKey]:
        rows = self.conn.execute(
            """SELECT sku, description, quantity, unit_price FROM order_items
               WHERE order_id = ? ORDER BY line_no""",
            [order_id],
        )
        return [(r[0], r[1], r[2], _money(r[3])) for r in rows]

    def _customer(self, invoice: Invoice) -> tuple[int, bool]:
        cached = self.customers.get(invoice.customer)
        if cached is not None:
            return cached, False
        row = self.conn.execute(
            "SELECT id FROM customers WHERE external_id = ?", [invoice.customer]
        ).fetchone()
        created = row is None
        if created:
            cursor = self.conn.execute(
                """INSERT INTO customers (external_id, first_name, country, created_at, updated_at)
                   VALUES (?, '', ?, ?, ?)""",
                [invoice.customer, invoice.country, self.stamp, self.stamp],
            )
            customer_id = int(cursor.lastrowid or 0)
        else:
            customer_id = int(row[0])
        self.customers[invoice.customer] = customer_id
        return customer_id, created

    def _insert_order(self, invoice: Invoice, customer_id: int) -> int:
        status = OrderStatus.CANCELLED if invoice.is_return else OrderStatus.DELIVERED
        placed = to_iso(invoice.placed_at)
        cursor = self.conn.execute(
            """INSERT INTO orders (external_id, customer_id, status, placed_at, currency, country,
                                   kind, source, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                invoice.number,
                customer_id,
                status.value,
                placed,
                self.currency,
                invoice.country,
                _kind(invoice),
                self.source,
                self.stamp,
                self.stamp,
            ],
        )
        order_id = int(cursor.lastrowid or 0)
        self.conn.execute(
            "INSERT INTO order_events (order_id, status, at, source) VALUES (?, ?, ?, ?)",
            [order_id, status.value, placed, self.source],
        )
        return order_id

    def _product(self, line: Line) -> tuple[int, bool]:
        cached = self.products.get(line.sku)
        if cached is not None:
            return cached, False
        row = self.conn.execute("SELECT id FROM products WHERE sku = ?", [line.sku]).fetchone()
        if row is not None:
            self.products[line.sku] = int(row[0])
            return int(row[0]), False
        cursor = self.conn.execute(
            """INSERT INTO products (sku, name, category, price, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            [
                line.sku,
                line.description,
                self.rules.categorise(line.description),
                float(line.unit_price),
                self.stamp,
                self.stamp,
            ],
        )
        product_id = int(cursor.lastrowid or 0)
        self.products[line.sku] = product_id
        return product_id, True


def _kind(invoice: Invoice) -> str:
    return "return" if invoice.is_return else "order"


def _money(value: float) -> Decimal:
    return Decimal(str(value)).normalize()


def _key(line: Line) -> LineKey:
    sku, description, quantity, price = line.key()
    return (sku, description, quantity, price.normalize())


def _without_duplicates(
    lines: Iterable[Line], earlier: set[LineKey]
) -> tuple[list[Line], tuple[int, ...]]:
    """Drop lines that repeat an earlier line of the same invoice (in this file or stored)."""
    seen = set(earlier)
    kept, duplicates = [], []
    for line in lines:
        key = _key(line)
        if key in seen:
            duplicates.append(line.number)
        else:
            seen.add(key)
            kept.append(line)
    return kept, tuple(duplicates)


class ImportRunLog:
    """A row per import: what file, when, and its summary (the audit trail of imports)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, path: str, profile: str, now: datetime) -> int:
        cursor = self.db.execute(
            "INSERT INTO import_runs (path, profile, started_at) VALUES (?, ?, ?)",
            [path, profile, to_iso(now)],
        )
        return int(cursor.lastrowid or 0)

    def unfinished(self, path: str) -> list[str]:
        """When the imports of ``path`` since its last finished one started: runs that were
        killed or stopped by an error (their committed batches are kept)."""
        rows = self.db.execute(
            "SELECT started_at FROM import_runs WHERE path = ? AND finished_at IS NULL "
            "AND id > (SELECT coalesce(max(id), 0) FROM import_runs "
            "WHERE path = ? AND finished_at IS NOT NULL) ORDER BY id",
            [path, path],
        ).fetchall()
        return [started_at for (started_at,) in rows]

    def finish(self, run_id: int, summary: ImportSummary, now: datetime) -> None:
        data: dict[str, Any] = asdict(summary)
        data.pop("on_problem", None)
        data["problems"] = [str(p) for p in summary.problems[:100]]
        self.db.execute(
            "UPDATE import_runs SET finished_at = ?, summary = ? WHERE id = ?",
            [to_iso(now), json.dumps(data), run_id],
        )


class ProductCatalogWriter:
    """Upserts catalog rows: the catalog's name, category and price win over imported guesses."""

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.stamp = to_iso(now)

    def upsert(self, rows: Iterable[ProductRow]) -> tuple[int, int]:
        """(created, updated)."""
        created = updated = 0
        # reads before it writes: the lock up front, or a bot write in between fails it
        with write_transaction(self.db):
            for row in rows:
                exists = self.db.conn.execute(
                    "SELECT 1 FROM products WHERE sku = ?", [row.sku]
                ).fetchone()
                self.db.conn.execute(
                    """INSERT INTO products (sku, name, category, price, created_at, updated_at)
                       VALUES (:sku, :name, :category, :price, :now, :now)
                       ON CONFLICT (sku) DO UPDATE SET name = excluded.name,
                         category = COALESCE(excluded.category, products.category),
                         price = COALESCE(excluded.price, products.price),
                         updated_at = excluded.updated_at""",
                    {
                        "sku": row.sku,
                        "name": row.name,
                        "category": row.category,
                        "price": float(row.price) if row.price is not None else None,
                        "now": self.stamp,
                    },
                )
                if exists:
                    updated += 1
                else:
                    created += 1
        return created, updated
