"""Reads for ticket reports and the ticket commands: tickets of a period, customer labels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from bot.reports import TicketRecord
from storage.repositories import one_row

_REPORT_COLUMNS = """created_at, first_response_at, resolved_at, status, kind, category, priority,
    first_responder_name, resolved_by_name, first_response_breached_at, resolution_breached_at"""


def _time(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def _record(row: dict[str, Any]) -> TicketRecord:
    return TicketRecord(
        created_at=from_iso(row["created_at"]),
        status=row["status"],
        kind=row["kind"],
        priority=row["priority"],
        category=row["category"],
        first_response_at=_time(row["first_response_at"]),
        resolved_at=_time(row["resolved_at"]),
        first_responder_name=row["first_responder_name"],
        resolved_by_name=row["resolved_by_name"],
        first_response_breached_at=_time(row["first_response_breached_at"]),
        resolution_breached_at=_time(row["resolution_breached_at"]),
    )


def tickets_created(db: Database, since: datetime, until: datetime | None) -> list[TicketRecord]:
    """Tickets created in [since, until) (no upper bound if ``until`` is None), oldest first."""
    where, params = "created_at >= ?", [to_iso(since)]
    if until is not None:
        where += " AND created_at < ?"
        params.append(to_iso(until))
    rows = db.query(
        f"SELECT {_REPORT_COLUMNS} FROM tickets WHERE {where} ORDER BY created_at, id", params
    )
    return [_record(r) for r in rows]


@dataclass(frozen=True)
class CustomerLabel:
    """How a ticket's customer is shown: name and the shop's id (or the Telegram one)."""

    name: str
    external_id: str | None
    telegram_user_id: int | None

    def __str__(self) -> str:
        name = self.name or "(no name)"
        if self.external_id:
            return f"{name} ({self.external_id})"
        if self.telegram_user_id:
            return f"{name} (Telegram {self.telegram_user_id})"
        return name


def customer_labels(db: Database, customer_ids: Iterable[int]) -> dict[int, CustomerLabel]:
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    rows = db.query(
        f"""SELECT id, first_name, last_name, external_id, telegram_user_id FROM customers
            WHERE id IN ({", ".join("?" for _ in ids)})""",
        ids,
    )
    return {
        r["id"]: CustomerLabel(
            name=" ".join(p for p in (r["first_name"], r["last_name"]) if p),
            external_id=r["external_id"],
            telegram_user_id=r["telegram_user_id"],
        )
        for r in rows
    }


def order_external_id(db: Database, order_id: int) -> str | None:
    row = one_row(db, "SELECT external_id FROM orders WHERE id = ?", [order_id])
    return row["external_id"] if row else None
