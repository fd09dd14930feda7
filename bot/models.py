"""Plain domain records shared by services, storage and handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class TelegramIdentity:
    """Who wrote to us, as Telegram says (never trusted for anything but identity)."""

    user_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


def full_name(first_name: str | None, last_name: str | None) -> str:
    """A person's name as written, without a stray space when a part is missing."""
    return " ".join(part for part in (first_name, last_name) if part)


@dataclass(frozen=True)
class Customer:
    id: int
    first_name: str
    last_name: str | None
    language: str | None
    timezone: str | None
    external_id: str | None
    telegram_user_id: int | None
    reminders_opt_out: bool
    blocked: bool
    banned: bool
    country: str | None = None
    order_updates_opt_out: bool = False

    @property
    def is_linked(self) -> bool:
        """Bound to a shop account, so orders can be shown."""
        return self.external_id is not None


@dataclass(frozen=True)
class OrderItem:
    sku: str
    description: str
    quantity: int
    unit_price: float

    @property
    def line_total(self) -> float:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Order:
    id: int
    external_id: str
    customer_id: int
    status: OrderStatus
    placed_at: datetime
    total: float
    currency: str
    item_count: int
    items: tuple[OrderItem, ...] = ()


@dataclass(frozen=True)
class FaqEntry:
    id: int
    slug: str
    lang: str
    question: str
    answer: str
    keywords: str = ""


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    coverage: float  # share of the question's meaningful terms found in the entry
