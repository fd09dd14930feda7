"""Repositories over sqlite-utils: the only place that knows table and column names."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlite_utils import Database

from bot.catalog import is_fee_code
from bot.clock import from_iso, to_iso
from bot.models import (
    Customer,
    FaqEntry,
    Order,
    OrderItem,
    OrderStatus,
    TelegramIdentity,
)
from bot.search_terms import fts_query, index_text
from storage.database import write_transaction

_CUSTOMER_COLUMNS = (
    "id, first_name, last_name, language, timezone, external_id, telegram_user_id,"
    " reminders_opt_out, blocked, banned, country, order_updates_opt_out"
)


def _customer(row: dict[str, Any]) -> Customer:
    return Customer(
        id=row["id"],
        first_name=row["first_name"] or "",
        last_name=row["last_name"],
        language=row["language"],
        timezone=row["timezone"],
        external_id=row["external_id"],
        telegram_user_id=row["telegram_user_id"],
        reminders_opt_out=bool(row["reminders_opt_out"]),
        blocked=bool(row["blocked"]),
        banned=bool(row["banned"]),
        country=row["country"],
        order_updates_opt_out=bool(row["order_updates_opt_out"]),
    )


def like_escaped(text: str) -> str:
    """``text`` taken literally inside a LIKE pattern written with ``ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def one_row(
    db: Database, sql: str, params: Sequence[Any] | dict[str, Any]
) -> dict[str, Any] | None:
    """The first row of a read, as a dict (plain cursor: reads need no savepoint)."""
    cursor = db.conn.execute(sql, params)
    row = cursor.fetchone()
    return dict(zip([c[0] for c in cursor.description], row, strict=True)) if row else None


def all_rows(
    db: Database, sql: str, params: Sequence[Any] | dict[str, Any]
) -> list[dict[str, Any]]:
    """Every row of a read, as dicts; like ``one_row``, without ``Database.query``'s savepoint
    (two extra statements per call, on paths that run for every message)."""
    cursor = db.conn.execute(sql, params)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def _committed(db: Database) -> Iterator[None]:
    """Commit what the block wrote unless a transaction was already open (then it joins it);
    roll back an implicit transaction the block opened and failed in."""
    conn = db.conn
    outer_transaction = conn.in_transaction
    try:
        yield
    except Exception:
        if not outer_transaction and conn.in_transaction:
            conn.rollback()  # never leave an implicit transaction open to capture later writes
        raise
    if not outer_transaction and conn.in_transaction:
        conn.commit()


# ``write`` and ``write_returning`` do what ``Database.execute`` does for one write statement,
# without parsing the SQL's first keyword again at every call: the message log and the
# customer upsert run for every update.


def write(db: Database, sql: str, params: Sequence[Any] | dict[str, Any]) -> sqlite3.Cursor:
    """One write statement, committed at once unless a transaction is open."""
    with _committed(db):
        return db.conn.execute(sql, params)


def write_returning(
    db: Database, sql: str, params: Sequence[Any] | dict[str, Any]
) -> dict[str, Any]:
    """One ``INSERT/UPDATE ... RETURNING`` statement's row (read before the commit)."""
    with _committed(db):
        cursor = db.conn.execute(sql, params)
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row, strict=True))


class CustomerRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, customer_id: int) -> Customer | None:
        row = one_row(
            self.db, f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE id = ?", [customer_id]
        )
        return _customer(row) if row else None

    def by_telegram_user(self, user_id: int) -> Customer | None:
        row = one_row(
            self.db,
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE telegram_user_id = ?",
            [user_id],
        )
        return _customer(row) if row else None

    def by_external_id(self, external_id: str) -> Customer | None:
        row = one_row(
            self.db,
            f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE external_id = ?",
            [external_id],
        )
        return _customer(row) if row else None

    def touch_from_telegram(
        self, who: TelegramIdentity, chat_id: int, language: str, now: datetime
    ) -> Customer:
        """Create the customer on first contact, or refresh their Telegram name and last seen.

        ``language`` only applies to a new customer; a chosen language is never overwritten.
        """
        stamp = to_iso(now)
        # one statement instead of upsert-then-read: this runs for every incoming update
        row = write_returning(
            self.db,
            """
            INSERT INTO customers (telegram_user_id, telegram_chat_id, first_name, last_name,
                                   username, language, created_at, updated_at, last_seen_at)
            VALUES (:uid, :chat, :first, :last, :username, :language, :now, :now, :now)
            ON CONFLICT (telegram_user_id) DO UPDATE SET
                telegram_chat_id = excluded.telegram_chat_id,
                first_name = CASE WHEN customers.external_id IS NULL
                             THEN excluded.first_name ELSE customers.first_name END,
                last_name = CASE WHEN customers.external_id IS NULL
                            THEN excluded.last_name ELSE customers.last_name END,
                username = excluded.username,
                blocked = 0,
                last_seen_at = excluded.last_seen_at
            RETURNING """
            + _CUSTOMER_COLUMNS,
            {
                "uid": who.user_id,
                "chat": chat_id,
                "first": who.first_name,
                "last": who.last_name,
                "username": who.username,
                "language": language,
                "now": stamp,
            },
        )
        return _customer(row)

    def create_shop_customer(
        self,
        external_id: str,
        *,
        first_name: str,
        last_name: str | None = None,
        country: str | None = None,
        language: str | None = None,
        email: str | None = None,
        birthday: date | None = None,
        now: datetime,
    ) -> int:
        """Insert or update a customer known to the shop by its own id; returns our id."""
        stamp = to_iso(now)
        self.db.execute(
            """
            INSERT INTO customers (external_id, first_name, last_name, country, language, email,
                                   birthday, created_at, updated_at)
            VALUES (:ext, :first, :last, :country, :language, :email, :birthday, :now, :now)
            ON CONFLICT (external_id) DO UPDATE SET
                first_name = excluded.first_name, last_name = excluded.last_name,
                country = excluded.country, email = COALESCE(excluded.email, customers.email),
                birthday = COALESCE(excluded.birthday, customers.birthday),
                language = COALESCE(customers.language, excluded.language),
                updated_at = excluded.updated_at
            """,
            {
                "ext": external_id,
                "first": first_name,
                "last": last_name,
                "country": country,
                "language": language,
                "email": email,
                "birthday": birthday.isoformat() if birthday else None,
                "now": stamp,
            },
        )
        row = one_row(self.db, "SELECT id FROM customers WHERE external_id = ?", [external_id])
        assert row is not None
        return int(row["id"])

    def bind_telegram(
        self, customer_id: int, who: TelegramIdentity, chat_id: int, now: datetime
    ) -> None:
        """Attach a Telegram user to a shop customer, folding in the row made on first contact.

        The conversation so far moves with them, so nothing the customer wrote is lost.
        """
        with write_transaction(self.db):
            stub = one_row(
                self.db,
                """SELECT id FROM customers
                   WHERE telegram_user_id = ? AND id != ? AND external_id IS NULL""",
                [who.user_id, customer_id],
            )
            if (
                stub is None
                and self.db.execute(
                    "SELECT 1 FROM customers WHERE telegram_user_id = ? AND id != ?",
                    [who.user_id, customer_id],
                ).fetchone()
            ):
                raise ValueError("that Telegram user is bound to another shop customer")
            if stub:
                stub_row = one_row(
                    self.db,
                    "SELECT language, timezone, reminders_opt_out FROM customers WHERE id = ?",
                    [stub["id"]],
                )
                assert stub_row is not None
                for table in ("messages", "faq_feedback", "tickets", "ticket_drafts"):
                    self.db.execute(
                        f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?",
                        [customer_id, stub["id"]],
                    )
                self.db.execute(
                    """UPDATE ticket_messages SET author_id = ?
                       WHERE author_id = ? AND direction = 'from_customer'""",
                    [customer_id, stub["id"]],
                )
                self.db.execute("DELETE FROM customers WHERE id = ?", [stub["id"]])
                self.db.execute(
                    """UPDATE customers SET language = COALESCE(?, language),
                       timezone = COALESCE(?, timezone),
                       reminders_opt_out = MAX(reminders_opt_out, ?) WHERE id = ?""",
                    [
                        stub_row["language"],
                        stub_row["timezone"],
                        stub_row["reminders_opt_out"],
                        customer_id,
                    ],
                )
            self.db.execute(
                """UPDATE customers SET telegram_user_id = ?, telegram_chat_id = ?, username = ?,
                   blocked = 0, updated_at = ?, last_seen_at = ? WHERE id = ?""",
                [who.user_id, chat_id, who.username, to_iso(now), to_iso(now), customer_id],
            )

    def update_settings(self, customer_id: int, now: datetime, **settings: Any) -> None:
        allowed = {
            "language",
            "timezone",
            "reminders_opt_out",
            "surveys_opt_out",
            "order_updates_opt_out",
            "blocked",
            "banned",
        }
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"not customer settings: {', '.join(sorted(unknown))}")
        assignments = ", ".join(f"{key} = :{key}" for key in settings)
        self.db.execute(
            f"UPDATE customers SET {assignments}, updated_at = :now WHERE id = :id",
            {**settings, "now": to_iso(now), "id": customer_id},
        )

    def count(self) -> int:
        return self.db.table("customers").count


def _order(row: dict[str, Any], items: tuple[OrderItem, ...] = ()) -> Order:
    return Order(
        id=row["id"],
        external_id=row["external_id"],
        customer_id=row["customer_id"],
        status=OrderStatus(row["status"]),
        placed_at=from_iso(row["placed_at"]),
        total=row["total"],
        currency=row["currency"],
        item_count=row["item_count"],
        items=items,
    )


@dataclass(frozen=True)
class NewOrderItem:
    sku: str
    description: str
    quantity: int
    unit_price: float


_ORDER_SELECT = """
    SELECT o.id, o.external_id, o.customer_id, o.status, o.placed_at, o.total, o.currency,
           (SELECT COUNT(*) FROM order_items i WHERE i.order_id = o.id) AS item_count
    FROM orders o
"""


class OrderRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def recent_for_customer(self, customer_id: int, limit: int) -> list[Order]:
        rows = self.db.query(
            _ORDER_SELECT + " WHERE o.customer_id = ? ORDER BY o.placed_at DESC, o.id DESC LIMIT ?",
            [customer_id, limit],
        )
        return [_order(r) for r in rows]

    def customer_of(self, order_id: int) -> int | None:
        row = one_row(self.db, "SELECT customer_id FROM orders WHERE id = ?", [order_id])
        return int(row["customer_id"]) if row else None

    def get_for_customer(self, order_id: int, customer_id: int) -> Order | None:
        """The order with its items, only if it belongs to that customer."""
        row = one_row(
            self.db,
            _ORDER_SELECT + " WHERE o.id = ? AND o.customer_id = ?",
            [order_id, customer_id],
        )
        if row is None:
            return None
        items = tuple(
            OrderItem(r["sku"], r["description"], r["quantity"], r["unit_price"])
            for r in self.db.query(
                "SELECT sku, description, quantity, unit_price FROM order_items"
                " WHERE order_id = ? ORDER BY line_no",
                [order_id],
            )
        )
        return _order(row, items)

    def save_order(
        self,
        *,
        external_id: str,
        customer_id: int,
        status: OrderStatus,
        placed_at: datetime,
        currency: str,
        items: Iterable[NewOrderItem],
        now: datetime,
    ) -> int:
        """Create or replace an order and its lines in one transaction; returns our id."""
        items = list(items)
        # Decimal, half-up: the same cents as the importer's SQLite ROUND for any input
        exact = sum(Decimal(str(i.quantity)) * Decimal(str(i.unit_price)) for i in items)
        total = float(Decimal(exact).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        with write_transaction(self.db):
            self.db.execute(
                """
                INSERT INTO orders (external_id, customer_id, status, placed_at, total, currency,
                                    created_at, updated_at)
                VALUES (:ext, :customer, :status, :placed, :total, :currency, :now, :now)
                ON CONFLICT (external_id) DO UPDATE SET
                    customer_id = excluded.customer_id, status = excluded.status,
                    placed_at = excluded.placed_at, total = excluded.total,
                    currency = excluded.currency, updated_at = excluded.updated_at
                """,
                {
                    "ext": external_id,
                    "customer": customer_id,
                    "status": status.value,
                    "placed": to_iso(placed_at),
                    "total": total,
                    "currency": currency,
                    "now": to_iso(now),
                },
            )
            row = one_row(self.db, "SELECT id FROM orders WHERE external_id = ?", [external_id])
            assert row is not None
            order_id = int(row["id"])
            self.db.execute("DELETE FROM order_items WHERE order_id = ?", [order_id])
            self.db.table("order_items").insert_all(
                {
                    "order_id": order_id,
                    "line_no": n,
                    "product_id": None
                    if is_fee_code(item.sku)
                    else self._product_id(item.sku, item.description, item.unit_price, now),
                    "sku": item.sku,
                    "description": item.description,
                    "quantity": item.quantity,
                    "unit_price": item.unit_price,
                    "is_product": 0 if is_fee_code(item.sku) else 1,
                }
                for n, item in enumerate(items, start=1)
            )
            last = one_row(
                self.db,
                "SELECT status FROM order_events WHERE order_id = ? ORDER BY id DESC LIMIT 1",
                [order_id],
            )
            if last is None or last["status"] != status.value:
                self.db.execute(
                    "INSERT INTO order_events (order_id, status, at) VALUES (?, ?, ?)",
                    [order_id, status.value, to_iso(now)],
                )
        return order_id

    def _product_id(self, sku: str, name: str, price: float, now: datetime) -> int:
        self.db.execute(
            """INSERT INTO products (sku, name, price, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (sku) DO NOTHING""",
            [sku, name, price, to_iso(now), to_iso(now)],
        )
        row = one_row(self.db, "SELECT id FROM products WHERE sku = ?", [sku])
        assert row is not None
        return int(row["id"])

    def count(self) -> int:
        return self.db.table("orders").count


def _faq(row: dict[str, Any]) -> FaqEntry:
    return FaqEntry(
        id=row["id"],
        slug=row["slug"],
        lang=row["lang"],
        question=row["question"],
        answer=row["answer"],
        keywords=row["keywords"],
    )


def _faq_values(e: FaqEntry, now: datetime) -> dict[str, Any]:
    return {
        "slug": e.slug,
        "lang": e.lang,
        "q": e.question,
        "kw": e.keywords,
        "a": e.answer,
        "qt": index_text(e.question),
        "kt": index_text(e.keywords),
        "at": index_text(e.answer),
        "now": to_iso(now),
    }


class FaqSlugTaken(ValueError):
    """Another FAQ entry already has this slug and language."""

    def __init__(self, entry: FaqEntry) -> None:
        super().__init__(f"there is already an entry {entry.slug} in {entry.lang}")
        self.entry = entry


@dataclass(frozen=True)
class FaqCandidate:
    entry: FaqEntry
    terms: frozenset[str]


class FaqSearchCache:
    """FAQ search results kept while the FAQ is unchanged: the same questions come again and
    again, and the full-text search is most of the SQL work of answering one.

    Emptied when this connection writes ``faq_entries`` (a temporary trigger calls
    ``forget``: the dashboard's edits, any code path) and when ``PRAGMA data_version`` says
    another connection committed (``carebot faq import`` from the command line). Results
    read inside a transaction are not kept: a rollback could take them back.
    """

    MAX_ENTRIES = 1024

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.results: dict[tuple[tuple[str, ...], int], list[FaqCandidate]] = {}
        self.data_version: int | None = None
        # A name per cache: another repository on this connection keeps its own trigger.
        function = f"carebot_faq_changed_{id(self)}"
        conn.create_function(function, 0, self.forget)
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS {function}_{event.lower()} "
                f"AFTER {event} ON main.faq_entries BEGIN SELECT {function}(); END"
            )

    def forget(self) -> None:
        self.results.clear()

    def usable(self, conn: sqlite3.Connection) -> bool:
        """Whether results may be read from and kept in the cache now."""
        if conn.in_transaction:
            return False
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self.data_version:
            self.forget()
            self.data_version = version
        return True

    def keep(self, key: tuple[tuple[str, ...], int], found: list[FaqCandidate]) -> None:
        if len(self.results) >= self.MAX_ENTRIES:
            del self.results[next(iter(self.results))]  # the oldest question
        self.results[key] = found


class FaqRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: FaqSearchCache | None = None  # made at the first search

    def upsert(self, entries: Iterable[FaqEntry], now: datetime) -> int:
        """Insert or update entries by (slug, lang); the FTS index follows through triggers."""
        count = 0
        with write_transaction(self.db):
            for e in entries:
                self.db.execute(
                    """
                    INSERT INTO faq_entries (slug, lang, question, keywords, answer,
                        question_terms, keyword_terms, answer_terms, updated_at)
                    VALUES (:slug, :lang, :q, :kw, :a, :qt, :kt, :at, :now)
                    ON CONFLICT (slug, lang) DO UPDATE SET
                        question = excluded.question, keywords = excluded.keywords,
                        answer = excluded.answer, question_terms = excluded.question_terms,
                        keyword_terms = excluded.keyword_terms,
                        answer_terms = excluded.answer_terms, updated_at = excluded.updated_at
                    """,
                    _faq_values(e, now),
                )
                count += 1
        return count

    def add(self, entry: FaqEntry, now: datetime) -> int:
        """A new entry's id. Raises ``FaqSlugTaken`` when (slug, lang) already has one."""
        with write_transaction(self.db):
            self._refuse_taken(entry, entry_id=None)
            cursor = self.db.execute(
                """
                INSERT INTO faq_entries (slug, lang, question, keywords, answer,
                    question_terms, keyword_terms, answer_terms, updated_at)
                VALUES (:slug, :lang, :q, :kw, :a, :qt, :kt, :at, :now)
                """,
                _faq_values(entry, now),
            )
        return cursor.lastrowid or 0

    def replace(self, entry_id: int, entry: FaqEntry, now: datetime) -> bool:
        """Overwrite one entry by id (slug and language may change); False if it is gone.

        Raises ``FaqSlugTaken`` when another entry already has that slug and language.
        """
        with write_transaction(self.db):
            self._refuse_taken(entry, entry_id)
            cursor = self.db.execute(
                """
                UPDATE faq_entries SET slug = :slug, lang = :lang, question = :q,
                    keywords = :kw, answer = :a, question_terms = :qt, keyword_terms = :kt,
                    answer_terms = :at, updated_at = :now
                WHERE id = :id
                """,
                {**_faq_values(entry, now), "id": entry_id},
            )
        return cursor.rowcount == 1

    def _refuse_taken(self, entry: FaqEntry, entry_id: int | None) -> None:
        other = self.get(entry.slug, entry.lang)
        if other is not None and other.id != entry_id:
            raise FaqSlugTaken(other)

    def delete(self, entry_id: int) -> bool:
        return self.db.execute("DELETE FROM faq_entries WHERE id = ?", [entry_id]).rowcount == 1

    def all(self) -> list[FaqEntry]:
        rows = self.db.query("SELECT * FROM faq_entries ORDER BY slug, lang")
        return [_faq(r) for r in rows]

    def feedback_counts(self) -> dict[str, tuple[int, int]]:
        """Per slug: how many answers were rated helpful, and how many not."""
        rows = self.db.query(
            """SELECT faq_slug, TOTAL(helpful = 1) AS yes, TOTAL(helpful = 0) AS no
               FROM faq_feedback GROUP BY faq_slug"""
        )
        return {r["faq_slug"]: (int(r["yes"]), int(r["no"])) for r in rows}

    def search(self, terms: list[str], limit: int = 5) -> list[FaqCandidate]:
        """Best-ranked entries for any of the terms; keywords weigh most, then the question."""
        if not terms:
            return []
        if self._cache is None:
            self._cache = FaqSearchCache(self.db.conn)
        key = (tuple(terms), limit)
        cache = self._cache if self._cache.usable(self.db.conn) else None
        if cache is not None and key in cache.results:
            return list(cache.results[key])
        rows = all_rows(
            self.db,
            """
            SELECT e.id, e.slug, e.lang, e.question, e.answer, e.keywords,
                   e.question_terms || ' ' || e.keyword_terms AS terms
            FROM faq_entries_fts f JOIN faq_entries e ON e.rowid = f.rowid
            WHERE faq_entries_fts MATCH :query
            ORDER BY bm25(faq_entries_fts, 5.0, 8.0, 1.0)
            LIMIT :limit
            """,
            {"query": fts_query(terms), "limit": limit},
        )
        found = [FaqCandidate(_faq(r), frozenset(r["terms"].split())) for r in rows]
        if cache is not None:
            cache.keep(key, found)
        return list(found)

    def get(self, slug: str, lang: str) -> FaqEntry | None:
        row = one_row(
            self.db, "SELECT * FROM faq_entries WHERE slug = ? AND lang = ?", [slug, lang]
        )
        return _faq(row) if row else None

    def get_by_id(self, entry_id: int) -> FaqEntry | None:
        row = one_row(self.db, "SELECT * FROM faq_entries WHERE id = ?", [entry_id])
        return _faq(row) if row else None

    def record_feedback(
        self, customer_id: int, slug: str, helpful: bool, message_id: int | None, now: datetime
    ) -> bool:
        """One vote per answer message; False when this answer was already rated."""
        cursor = self.db.execute(
            """INSERT INTO faq_feedback (customer_id, faq_slug, helpful, telegram_message_id,
                                         created_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            [customer_id, slug, int(helpful), message_id, to_iso(now)],
        )
        return cursor.rowcount == 1

    def count(self) -> int:
        return self.db.table("faq_entries").count


@dataclass(frozen=True)
class LoggedMessage:
    direction: str
    kind: str
    text: str | None
    telegram_message_id: int | None
    customer_id: int | None


class MessageLog:
    """Every message in and out, with Telegram ids, written before a reply is sent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def highest_telegram_id(self) -> int:
        """The largest update, message or forum topic id stored (0 for none)."""
        row = self.db.execute(
            """
            SELECT MAX(COALESCE((SELECT MAX(update_id) FROM messages), 0),
                       COALESCE((SELECT MAX(telegram_message_id) FROM messages), 0),
                       COALESCE((SELECT MAX(staff_thread_id) FROM tickets), 0))
            """
        ).fetchone()
        return int(row[0])

    def transaction(self) -> AbstractContextManager[None]:
        """Writes in the block (to any repository on this database) are committed together:
        an incoming update's customer and message take one commit, not one each."""
        return write_transaction(self.db)

    def record_incoming(
        self,
        *,
        update_id: int,
        chat_id: int,
        customer_id: int | None,
        kind: str,
        telegram_message_id: int | None,
        text: str | None,
        payload: dict[str, Any] | None,
        now: datetime,
    ) -> bool:
        """Store an incoming update once; False when Telegram re-delivered one already stored."""
        cursor = write(
            self.db,
            """
            INSERT INTO messages (customer_id, chat_id, direction, kind, update_id,
                                  telegram_message_id, text, payload, created_at)
            VALUES (?, ?, 'in', ?, ?, ?, ?, ?, ?)
            ON CONFLICT (update_id) WHERE direction = 'in' DO NOTHING
            """,
            [
                customer_id,
                chat_id,
                kind,
                update_id,
                telegram_message_id,
                text,
                json.dumps(payload, ensure_ascii=False) if payload else None,
                to_iso(now),
            ],
        )
        return cursor.rowcount == 1

    def record_outgoing(
        self,
        *,
        chat_id: int,
        customer_id: int | None,
        kind: str,
        telegram_message_id: int | None,
        text: str | None,
        now: datetime,
    ) -> None:
        write(
            self.db,
            """INSERT INTO messages (customer_id, chat_id, direction, kind,
                                     telegram_message_id, text, created_at)
               VALUES (?, ?, 'out', ?, ?, ?, ?)""",
            [customer_id, chat_id, kind, telegram_message_id, text, to_iso(now)],
        )

    def for_customer(self, customer_id: int, limit: int = 100) -> list[LoggedMessage]:
        rows = self.db.query(
            """SELECT direction, kind, text, telegram_message_id, customer_id FROM messages
               WHERE customer_id = ? ORDER BY id DESC LIMIT ?""",
            [customer_id, limit],
        )
        return list(reversed([LoggedMessage(**r) for r in rows]))

    def incoming_text(self, chat_id: int, telegram_message_id: int) -> str | None:
        """What the customer wrote in a message of this chat (None if unknown)."""
        row = one_row(
            self.db,
            """SELECT text FROM messages WHERE chat_id = ? AND telegram_message_id = ?
               AND direction = 'in' ORDER BY id LIMIT 1""",
            [chat_id, telegram_message_id],
        )
        return row["text"] if row else None

    def for_chat(self, chat_id: int) -> Iterator[LoggedMessage]:
        for r in self.db.query(
            """SELECT direction, kind, text, telegram_message_id, customer_id FROM messages
               WHERE chat_id = ? ORDER BY id""",
            [chat_id],
        ):
            yield LoggedMessage(**r)


@dataclass(frozen=True)
class LinkToken:
    customer_id: int
    expires_at: datetime
    used_at: datetime | None
    used_by_telegram_user_id: int | None


class LinkTokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, token_hash: str, customer_id: int, now: datetime, expires: datetime) -> None:
        self.db.table("link_tokens").insert(
            {
                "token_hash": token_hash,
                "customer_id": customer_id,
                "created_at": to_iso(now),
                "expires_at": to_iso(expires),
            }
        )

    def get(self, token_hash: str) -> LinkToken | None:
        row = one_row(self.db, "SELECT * FROM link_tokens WHERE token_hash = ?", [token_hash])
        if row is None:
            return None
        return LinkToken(
            customer_id=row["customer_id"],
            expires_at=from_iso(row["expires_at"]),
            used_at=from_iso(row["used_at"]) if row["used_at"] else None,
            used_by_telegram_user_id=row["used_by_telegram_user_id"],
        )

    def claim_and_bind(
        self, token_hash: str, customer_id: int, who: TelegramIdentity, chat_id: int, now: datetime
    ) -> bool:
        """Use the token and bind the customer in one transaction; False if it was used first.

        Single use and race-free: a failed bind leaves the token unused.
        """
        with write_transaction(self.db):
            cursor = self.db.execute(
                """UPDATE link_tokens SET used_at = ?, used_by_telegram_user_id = ?
                   WHERE token_hash = ? AND used_at IS NULL""",
                [to_iso(now), who.user_id, token_hash],
            )
            if cursor.rowcount != 1:
                return False
            CustomerRepository(self.db).bind_telegram(customer_id, who, chat_id, now)
        return True

    def purge_expired(self, now: datetime) -> int:
        cursor = self.db.execute(
            "DELETE FROM link_tokens WHERE expires_at < ? AND used_at IS NULL", [to_iso(now)]
        )
        return cursor.rowcount


@dataclass(frozen=True)
class Repositories:
    """Everything the services need, over one connection."""

    db: Database
    customers: CustomerRepository
    orders: OrderRepository
    faq: FaqRepository
    messages: MessageLog
    link_tokens: LinkTokenRepository

    @classmethod
    def over(cls, db: Database) -> Repositories:
        return cls(
            db=db,
            customers=CustomerRepository(db),
            orders=OrderRepository(db),
            faq=FaqRepository(db),
            messages=MessageLog(db),
            link_tokens=LinkTokenRepository(db),
        )
