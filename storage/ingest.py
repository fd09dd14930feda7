"""Storage for the ingest API: replay guard, API orders and status events, notify-once ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from bot.ingest import Recipient
from bot.models import Order, OrderStatus
from storage.database import write_transaction
from storage.repositories import NewOrderItem, OrderRepository, one_row

API_SOURCE = "api"


class SignatureLedger:
    """Signatures of accepted API requests, kept while a replay of them could still pass."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def first_use(self, signature: str, now: datetime, keep: timedelta) -> bool:
        """Remember the signature; False if it was seen before (a replay).

        Rows older than ``keep`` are purged on the way: their timestamps are outside the
        accepted window, so those requests fail the clock check anyway.
        """
        with write_transaction(self.db):
            self.db.execute(
                "DELETE FROM api_signatures WHERE received_at < ?", [to_iso(now - keep)]
            )
            cursor = self.db.execute(
                """INSERT INTO api_signatures (signature, received_at) VALUES (?, ?)
                   ON CONFLICT (signature) DO NOTHING""",
                [signature, to_iso(now)],
            )
        return cursor.rowcount == 1

    def count(self) -> int:
        return self.db.table("api_signatures").count


@dataclass(frozen=True)
class OrderEvent:
    id: int
    order_id: int
    status: OrderStatus
    at: datetime
    source: str
    notified_at: datetime | None


_EVENT_COLUMNS = "id, order_id, status, at, source, notified_at"


def _event(row: dict[str, Any]) -> OrderEvent:
    return OrderEvent(
        id=row["id"],
        order_id=row["order_id"],
        status=OrderStatus(row["status"]),
        at=from_iso(row["at"]),
        source=row["source"],
        notified_at=from_iso(row["notified_at"]) if row["notified_at"] else None,
    )


@dataclass(frozen=True)
class SavedOrder:
    order_id: int
    created: bool
    event: OrderEvent | None  # the status event this save recorded, if the status changed


class IngestRepository:
    """Orders as the shop's system reports them, and who was told about which status."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.orders = OrderRepository(db)

    def order(self, external_id: str) -> Order | None:
        """The order with its items, by the shop's id."""
        row = one_row(
            self.db, "SELECT id, customer_id FROM orders WHERE external_id = ?", [external_id]
        )
        if row is None:
            return None
        return self.orders.get_for_customer(row["id"], row["customer_id"])

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
    ) -> SavedOrder:
        """Create or replace an order (one transaction); what it records is marked "api"."""
        with write_transaction(self.db):
            existing = one_row(
                self.db, "SELECT id FROM orders WHERE external_id = ?", [external_id]
            )
            last = one_row(self.db, "SELECT COALESCE(MAX(id), 0) AS id FROM order_events", [])
            before = int(last["id"]) if last else 0
            order_id = self.orders.save_order(
                external_id=external_id,
                customer_id=customer_id,
                status=status,
                placed_at=placed_at,
                currency=currency,
                items=items,
                now=now,
            )
            if existing is None:  # the source says where an order came from, not who last wrote
                self.db.execute("UPDATE orders SET source = ? WHERE id = ?", [API_SOURCE, order_id])
            self.db.execute(
                "UPDATE order_events SET source = ? WHERE order_id = ? AND id > ?",
                [API_SOURCE, order_id, before],
            )
            row = one_row(
                self.db,
                f"""SELECT {_EVENT_COLUMNS} FROM order_events
                    WHERE order_id = ? AND id > ? ORDER BY id DESC LIMIT 1""",
                [order_id, before],
            )
        return SavedOrder(order_id, existing is None, _event(row) if row else None)

    def change_status(
        self, order_id: int, status: OrderStatus, at: datetime, now: datetime
    ) -> OrderEvent | None:
        """Set the order's status and record the event; None if it already had that status."""
        with write_transaction(self.db):
            row = one_row(self.db, "SELECT status FROM orders WHERE id = ?", [order_id])
            if row is None:
                raise LookupError(f"no order {order_id}")
            if row["status"] == status.value:
                return None
            cursor = self.db.execute(
                "INSERT INTO order_events (order_id, status, at, source) VALUES (?, ?, ?, ?)",
                [order_id, status.value, to_iso(at), API_SOURCE],
            )
            self.db.execute(
                "UPDATE orders SET status = ?, updated_at = ? WHERE id = ?",
                [status.value, to_iso(now), order_id],
            )
            event = one_row(
                self.db,
                f"SELECT {_EVENT_COLUMNS} FROM order_events WHERE id = ?",
                [cursor.lastrowid],
            )
        assert event is not None
        return _event(event)

    def latest_event(self, order_id: int, status: OrderStatus) -> OrderEvent | None:
        row = one_row(
            self.db,
            f"""SELECT {_EVENT_COLUMNS} FROM order_events WHERE order_id = ? AND status = ?
                ORDER BY id DESC LIMIT 1""",
            [order_id, status.value],
        )
        return _event(row) if row else None

    def announced(self, order_id: int, status: OrderStatus) -> bool:
        """Whether the customer was already told that this order reached this status."""
        row = one_row(
            self.db,
            """SELECT 1 AS yes FROM order_events
               WHERE order_id = ? AND status = ? AND notified_at IS NOT NULL LIMIT 1""",
            [order_id, status.value],
        )
        return row is not None

    def claim_notification(self, event_id: int, now: datetime) -> bool:
        """Record the intent to tell the customer about this event, once per (order, status).

        One statement, so two requests racing for the same (order, status) cannot both win;
        the winner sends, everyone else does not.
        """
        cursor = self.db.execute(
            """UPDATE order_events SET notified_at = ?
               WHERE id = ? AND notified_at IS NULL AND NOT EXISTS (
                   SELECT 1 FROM order_events AS e
                   WHERE e.order_id = order_events.order_id AND e.status = order_events.status
                     AND e.notified_at IS NOT NULL)""",
            [to_iso(now), event_id],
        )
        return cursor.rowcount == 1

    def release_notification(self, event_id: int) -> None:
        """Telegram certainly did not deliver it: the ledger must not claim otherwise."""
        self.db.execute("UPDATE order_events SET notified_at = NULL WHERE id = ?", [event_id])

    def recipient(self, customer_id: int) -> Recipient | None:
        row = one_row(
            self.db,
            """SELECT id, first_name, language, telegram_chat_id, blocked, banned,
                      order_updates_opt_out
               FROM customers WHERE id = ?""",
            [customer_id],
        )
        if row is None:
            return None
        return Recipient(
            customer_id=row["id"],
            first_name=row["first_name"] or "",
            language=row["language"],
            chat_id=row["telegram_chat_id"],
            blocked=bool(row["blocked"]),
            banned=bool(row["banned"]),
            order_updates_opt_out=bool(row["order_updates_opt_out"]),
        )
