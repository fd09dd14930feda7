"""The signed ingest API's core: request signatures, payload validation, notification rules.

Pure Python (no aiohttp, SQLite or Telegram), so every rule here is tested without I/O.
``carebot/api.py`` is the HTTP adapter around it and ``storage/ingest.py`` its storage.

Signing: ``X-Carebot-Timestamp: <Unix seconds>`` and
``X-Carebot-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from bot.config import SUPPORTED_LANGUAGES
from bot.models import OrderStatus
from bot.services import canonical_timezone
from bot.texts import T

TIMESTAMP_HEADER = "X-Carebot-Timestamp"
SIGNATURE_HEADER = "X-Carebot-Signature"
SIGNATURE_PREFIX = "sha256="

MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254
MAX_COUNTRY_LENGTH = 64
MAX_SKU_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 500
MAX_ITEMS = 500
MAX_QUANTITY = 1_000_000
MAX_UNIT_PRICE = 1_000_000_000
# Times outside these years are refused (they cannot be stored or compared sensibly).
FIRST_YEAR, LAST_YEAR = 1970, 2100

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_PRICE_TEXT = re.compile(r"[0-9]{1,10}(\.[0-9]{1,6})?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


# ---------------------------------------------------------------- signatures


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Carebot-Signature`` value for a body sent at ``timestamp`` (Unix seconds)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class AuthFailure(StrEnum):
    """Why a request was refused with 401; the value is what the caller is told."""

    MISSING = f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    MALFORMED = (
        f"malformed {TIMESTAMP_HEADER} (Unix seconds) or {SIGNATURE_HEADER} (sha256=<64 hex>)"
    )
    BAD_SIGNATURE = "signature does not match"
    STALE = "timestamp outside the allowed clock skew"
    REPLAYED = "request already received: sign every attempt with a fresh timestamp"


class Unauthorized(Exception):
    def __init__(self, failure: AuthFailure) -> None:
        super().__init__(failure.value)
        self.failure = failure


@dataclass(frozen=True)
class SignedRequest:
    timestamp: int
    signature: str  # lowercase hex digest: the replay-guard key


def verify_signature(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    max_skew_seconds: int,
) -> SignedRequest:
    """Check the signature first, then the time; raises :class:`Unauthorized`.

    The signature is checked before the timestamp so that only a holder of the secret
    learns anything about the clock window.
    """
    if not timestamp or not signature:
        raise Unauthorized(AuthFailure.MISSING)
    timestamp, signature = timestamp.strip(), signature.strip()
    match = _SIGNATURE.fullmatch(signature)
    if not _TIMESTAMP.fullmatch(timestamp) or match is None:
        raise Unauthorized(AuthFailure.MALFORMED)
    given = match.group(1).lower()
    expected = sign(secret, timestamp, body).removeprefix(SIGNATURE_PREFIX)
    if not hmac.compare_digest(expected, given):
        raise Unauthorized(AuthFailure.BAD_SIGNATURE)
    sent_at = int(timestamp)
    if abs(now.timestamp() - sent_at) > max_skew_seconds:
        raise Unauthorized(AuthFailure.STALE)
    return SignedRequest(sent_at, given)


def replay_window(max_skew_seconds: int) -> timedelta:
    """How long a seen signature must be remembered.

    A request signed at T is accepted while now is within T ± skew, and T may be up to
    ``skew`` ahead of the moment it first arrived: so twice the skew after arrival.
    """
    return timedelta(seconds=2 * max_skew_seconds)


# ---------------------------------------------------------------- payloads


class InvalidRequest(Exception):
    """A body that is JSON but not what the endpoint takes; one message per bad field."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = dict(fields)


@dataclass(frozen=True)
class CustomerIn:
    external_id: str
    first_name: str
    last_name: str | None = None
    email: str | None = None
    country: str | None = None
    language: str | None = None
    timezone: str | None = None
    birthday: date | None = None


@dataclass(frozen=True)
class ItemIn:
    sku: str
    description: str
    quantity: int
    unit_price: float


@dataclass(frozen=True)
class OrderIn:
    external_id: str
    customer_external_id: str
    placed_at: datetime
    items: tuple[ItemIn, ...]
    currency: str
    status: OrderStatus | None = None  # None: "placed" for a new order, else kept as it is
    notify: bool = True


@dataclass(frozen=True)
class StatusIn:
    status: OrderStatus
    at: datetime | None = None  # None: now
    notify: bool = True


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")
_STATUSES = ", ".join(s.value for s in OrderStatus)


#: The fields a customer and an order body may carry (anything else is refused).
CUSTOMER_FIELDS: Final = (
    "external_id",
    "first_name",
    "last_name",
    "email",
    "country",
    "language",
    "timezone",
    "birthday",
)
ORDER_FIELDS: Final = (
    "external_id",
    "customer_external_id",
    "placed_at",
    "status",
    "currency",
    "items",
    "notify",
)


class _Object:
    """One JSON object being read: every bad field is recorded, reading goes on.

    Getters of required values return a placeholder after recording an error; the caller
    raises :class:`InvalidRequest` before any placeholder can be used.
    """

    def __init__(
        self, data: Mapping[str, Any], known: Iterable[str], errors: dict[str, str], prefix: str
    ) -> None:
        self.data = data
        self.errors = errors
        self.prefix = prefix
        known = set(known)
        for key in data:
            if key not in known:
                self.fail(key, "unknown field")

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, message: str) -> None:
        self.errors.setdefault(self.path(key), message)

    def value(self, key: str, *, required: bool) -> Any:
        """The value, or None when absent or null (an error if it was required)."""
        value = self.data.get(key)
        if value is None and required:
            self.fail(key, "required")
        return value

    def identifier(self, key: str) -> str:
        """A shop's id: text (or a whole number), 1-128 characters, no edge spaces."""
        value = self.value(key, required=True)
        if value is None:
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if (
            not isinstance(value, str)
            or not 1 <= len(value) <= MAX_ID_LENGTH
            or value != value.strip()
            or not value.isprintable()
        ):
            self.fail(
                key,
                f"must be a string of 1-{MAX_ID_LENGTH} printable characters "
                "without spaces at either end",
            )
            return ""
        return value

    def text(self, key: str, max_length: int, *, required: bool = False) -> str | None:
        """Trimmed text; empty counts as absent (an error if required)."""
        value = self.value(key, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return None
        value = value.strip()
        if not value:
            if required:
                self.fail(key, "must not be empty")
            return None
        if len(value) > max_length or not value.isprintable():
            self.fail(key, f"must be at most {max_length} printable characters")
            return None
        return value

    def status(self, key: str, *, required: bool) -> OrderStatus | None:
        value = self.value(key, required=required)
        if value is None:
            return None
        try:
            return OrderStatus(value)
        except ValueError:
            self.fail(key, f"must be one of {_STATUSES}")
            return None

    def moment(self, key: str, *, required: bool, latest: datetime) -> datetime | None:
        """An ISO-8601 time with a UTC offset, not after ``latest``."""
        value = self.value(key, required=required)
        if value is None:
            return None
        moment = None
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                moment = None
        if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
            self.fail(
                key, 'must be an ISO-8601 time with a UTC offset, like "2026-11-23T10:00:00+00:00"'
            )
            return None
        if not FIRST_YEAR <= moment.year <= LAST_YEAR:
            self.fail(key, f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
            return None
        if moment > latest:
            self.fail(key, "must not be in the future")
            return None
        return moment

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
            return default
        return value

    def quantity(self, key: str) -> int:
        value = self.value(key, required=True)
        if value is None:
            return 0
        whole = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
        if not whole or value == 0 or abs(value) > MAX_QUANTITY:
            self.fail(key, f"must be a non-zero whole number (at most {MAX_QUANTITY:,} either way)")
            return 0
        return int(value)

    def price(self, key: str) -> float:
        """A number >= 0; a decimal string like "2.55" is taken too (many shops send those)."""
        value = self.value(key, required=True)
        if value is None:
            return 0.0
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _PRICE_TEXT.fullmatch(value.strip()):
            try:
                number = float(Decimal(value.strip()))
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                number = None
        if number is None or not math.isfinite(number) or not 0 <= number <= MAX_UNIT_PRICE:
            self.fail(key, f"must be a number from 0 to {MAX_UNIT_PRICE:,}")
            return 0.0
        return number


def _object(data: Any, errors: dict[str, str], path: str) -> Mapping[str, Any] | None:
    if isinstance(data, Mapping):
        return data
    errors[path or "(body)"] = "must be a JSON object"
    return None


def _request_body(data: Any, errors: dict[str, str]) -> Mapping[str, Any]:
    """The top-level JSON object of a request (anything else is a 400 at once)."""
    body = _object(data, errors, "")
    if body is None:
        raise InvalidRequest(errors)
    return body


def parse_customer(data: Any) -> CustomerIn:
    """``POST /api/v1/customers``; raises :class:`InvalidRequest` naming every bad field."""
    errors: dict[str, str] = {}
    body = _request_body(data, errors)
    fields = _Object(body, CUSTOMER_FIELDS, errors, "")
    external_id = fields.identifier("external_id")
    first_name = fields.text("first_name", MAX_NAME_LENGTH, required=True) or ""
    last_name = fields.text("last_name", MAX_NAME_LENGTH)
    email = fields.text("email", MAX_EMAIL_LENGTH)
    if email is not None and not _EMAIL.fullmatch(email):
        fields.fail("email", "must be an email address")
    country = fields.text("country", MAX_COUNTRY_LENGTH)
    language = fields.text("language", 64)
    if language is not None and language not in SUPPORTED_LANGUAGES:
        fields.fail("language", "must be one of " + ", ".join(SUPPORTED_LANGUAGES))
    timezone = None
    zone_name = fields.text("timezone", 64)
    if zone_name is not None:
        timezone = canonical_timezone(zone_name)
        if timezone is None:
            fields.fail("timezone", 'must be an IANA time zone like "Europe/London"')
    birthday = None
    birthday_text = fields.text("birthday", 10)
    if birthday_text is not None:
        try:
            birthday = date.fromisoformat(birthday_text)
        except ValueError:
            fields.fail("birthday", 'must be a date like "1985-05-17"')
        if birthday is not None and birthday.year < 1900:
            fields.fail("birthday", "must be a real birth date")
    if errors:
        raise InvalidRequest(errors)
    return CustomerIn(
        external_id=external_id,
        first_name=first_name,
        last_name=last_name,
        email=email,
        country=country,
        language=language,
        timezone=timezone,
        birthday=birthday,
    )


def parse_order(
    data: Any, *, now: datetime, tolerance: timedelta, default_currency: str
) -> OrderIn:
    """``POST /api/v1/orders``; raises :class:`InvalidRequest` naming every bad field."""
    errors: dict[str, str] = {}
    body = _request_body(data, errors)
    fields = _Object(body, ORDER_FIELDS, errors, "")
    external_id = fields.identifier("external_id")
    customer = fields.identifier("customer_external_id")
    placed_at = fields.moment("placed_at", required=True, latest=now + tolerance) or _EPOCH
    status = fields.status("status", required=False)
    currency = default_currency
    given_currency = fields.value("currency", required=False)
    if given_currency is not None:
        if isinstance(given_currency, str) and _CURRENCY.fullmatch(given_currency):
            currency = given_currency.upper()
        else:
            fields.fail("currency", 'must be a three-letter currency code like "GBP"')
    notify = fields.boolean("notify", True)
    items: list[ItemIn] = []
    raw_items = fields.value("items", required=True)
    if raw_items is not None:
        if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= MAX_ITEMS:
            fields.fail("items", f"must be a list of 1-{MAX_ITEMS} items")
        else:
            items = [_item(raw, errors, f"items[{n}]") for n, raw in enumerate(raw_items)]
    if errors:
        raise InvalidRequest(errors)
    return OrderIn(
        external_id=external_id,
        customer_external_id=customer,
        placed_at=placed_at,
        items=tuple(items),
        currency=currency,
        status=status,
        notify=notify,
    )


def _item(data: Any, errors: dict[str, str], path: str) -> ItemIn:
    body = _object(data, errors, path)
    if body is None:
        return ItemIn("", "", 0, 0.0)
    fields = _Object(body, ("sku", "description", "quantity", "unit_price"), errors, path)
    sku = fields.identifier("sku")
    if len(sku) > MAX_SKU_LENGTH:
        fields.fail("sku", f"must be at most {MAX_SKU_LENGTH} characters")
    description = fields.text("description", MAX_DESCRIPTION_LENGTH) or ""
    return ItemIn(sku, description, fields.quantity("quantity"), fields.price("unit_price"))


def parse_status(data: Any, *, now: datetime, tolerance: timedelta) -> StatusIn:
    """``POST /api/v1/orders/{external_id}/status``; raises :class:`InvalidRequest`."""
    errors: dict[str, str] = {}
    body = _request_body(data, errors)
    fields = _Object(body, ("status", "at", "notify"), errors, "")
    status = fields.status("status", required=True)
    at = fields.moment("at", required=False, latest=now + tolerance)
    notify = fields.boolean("notify", True)
    if errors or status is None:
        raise InvalidRequest(errors)
    return StatusIn(status=status, at=at, notify=notify)


# ---------------------------------------------------------------- notifications

# Status changes the customer is told about in Telegram, and the message for each (its
# lower-case name is also the message kind in the conversation log).
ANNOUNCED: Mapping[OrderStatus, T] = {
    OrderStatus.SHIPPED: T.ORDER_SHIPPED,
    OrderStatus.DELIVERED: T.ORDER_DELIVERED,
}
# Items listed in a notification; the rest are summarised as "and N more".
ITEMS_SHOWN = 10


class Notification(StrEnum):
    """What happened about telling the customer, as reported to the API caller."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"  # this order's status was announced before
    NONE = "none"  # nothing to announce (status not announced, or nothing changed)
    DISABLED = "disabled"  # the caller sent "notify": false
    NOT_ON_TELEGRAM = "not_on_telegram"  # the customer has no chat with the bot
    OPTED_OUT = "opted_out"
    BLOCKED = "blocked"  # blocked the bot (now or before), or banned by the shop
    FAILED = "failed"  # Telegram did not take it; the API call still succeeded


@dataclass(frozen=True)
class Recipient:
    """What deciding on and writing an order notification needs to know of a customer."""

    customer_id: int
    first_name: str
    language: str | None
    chat_id: int | None
    blocked: bool
    banned: bool
    order_updates_opt_out: bool


def notification_barrier(
    status: OrderStatus, recipient: Recipient | None, *, requested: bool
) -> Notification | None:
    """Why the customer must not be told of this status change, or None to go ahead."""
    if status not in ANNOUNCED:
        return Notification.NONE
    if not requested:
        return Notification.DISABLED
    if recipient is None or recipient.chat_id is None:
        return Notification.NOT_ON_TELEGRAM
    if recipient.blocked or recipient.banned:
        return Notification.BLOCKED
    if recipient.order_updates_opt_out:
        return Notification.OPTED_OUT
    return None
