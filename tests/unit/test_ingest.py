"""The ingest API's pure core: signatures, payload validation, who is told what."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.ingest import (
    AuthFailure,
    InvalidRequest,
    Notification,
    OrderIn,
    Recipient,
    Unauthorized,
    notification_barrier,
    parse_customer,
    parse_order,
    parse_status,
    replay_window,
    sign,
    verify_signature,
)
from bot.models import OrderStatus

SECRET = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
BODY = b'{"external_id": "1", "first_name": "Ann"}'
SKEW = timedelta(seconds=300)


def verify(
    timestamp: str | None = TS,
    signature: str | None = None,
    body: bytes = BODY,
    now: datetime = NOW,
) -> Any:
    if signature is None:
        signature = sign(SECRET, timestamp or TS, BODY)
    return verify_signature(
        secret=SECRET,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=now,
        max_skew_seconds=300,
    )


def failure(**kwargs: Any) -> AuthFailure:
    with pytest.raises(Unauthorized) as caught:
        verify(**kwargs)
    return caught.value.failure


# ---------------------------------------------------------------- signatures


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), TS.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, TS, BODY) == f"sha256={expected}"
    assert sign(SECRET, int(TS), BODY) == sign(SECRET, TS, BODY)
    signed = verify()
    assert (signed.timestamp, signed.signature) == (int(TS), expected)


def test_upper_case_hex_and_surrounding_spaces_are_accepted() -> None:
    good = sign(SECRET, TS, BODY)
    upper = "sha256=" + good.removeprefix("sha256=").upper()
    assert verify(signature=f" {upper} ").signature == good.removeprefix("sha256=")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"timestamp": None}, AuthFailure.MISSING),
        ({"timestamp": ""}, AuthFailure.MISSING),
        ({"signature": ""}, AuthFailure.MISSING),
        ({"timestamp": "1.5e9"}, AuthFailure.MALFORMED),
        ({"timestamp": "-1"}, AuthFailure.MALFORMED),
        ({"timestamp": "1" * 13}, AuthFailure.MALFORMED),
        ({"signature": "sha1=" + "0" * 64}, AuthFailure.MALFORMED),
        ({"signature": "sha256=" + "0" * 63}, AuthFailure.MALFORMED),
        ({"signature": "sha256=" + "g" * 64}, AuthFailure.MALFORMED),
        ({"signature": "sha256=" + "0" * 64}, AuthFailure.BAD_SIGNATURE),
        ({"body": BODY + b"\n"}, AuthFailure.BAD_SIGNATURE),
        (
            {"signature": sign("another secret of enough length!", TS, BODY)},
            AuthFailure.BAD_SIGNATURE,
        ),
        # signed for another moment than the header says
        ({"signature": sign(SECRET, int(TS) - 1, BODY)}, AuthFailure.BAD_SIGNATURE),
        ({"now": NOW + timedelta(seconds=301)}, AuthFailure.STALE),
        ({"now": NOW - timedelta(seconds=301)}, AuthFailure.STALE),
    ],
)
def test_bad_signatures_and_times_are_refused(
    kwargs: dict[str, Any], expected: AuthFailure
) -> None:
    assert failure(**kwargs) == expected


def test_the_clock_window_is_inclusive_and_checked_after_the_signature() -> None:
    verify(now=NOW + timedelta(seconds=300))
    verify(now=NOW - timedelta(seconds=300))
    old = str(int(TS) - 10_000)
    # a stranger with an old timestamp learns "bad signature", not "too old"
    assert failure(timestamp=old, signature="sha256=" + "0" * 64) == AuthFailure.BAD_SIGNATURE
    assert failure(timestamp=old, signature=sign(SECRET, old, BODY)) == AuthFailure.STALE


def test_signatures_are_remembered_for_twice_the_skew() -> None:
    assert replay_window(300) == timedelta(minutes=10)


# ---------------------------------------------------------------- customers


def test_a_customer_needs_only_an_id_and_a_first_name() -> None:
    customer = parse_customer({"external_id": 42, "first_name": "  Ann ", "last_name": None})
    assert (customer.external_id, customer.first_name, customer.last_name) == ("42", "Ann", None)


def test_customer_fields_are_normalised() -> None:
    customer = parse_customer(
        {
            "external_id": "c-1",
            "first_name": "王",
            "email": "wei@example.cn",
            "language": "zh",
            "timezone": "asia/shanghai",
            "country": " China ",
            "birthday": "1985-05-17",
        }
    )
    assert (customer.timezone, customer.country, customer.language) == (
        "Asia/Shanghai",
        "China",
        "zh",
    )
    assert customer.birthday == date(1985, 5, 17)


def test_every_bad_customer_field_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_customer(
            {
                "external_id": True,
                "first_name": "   ",
                "last_name": 7,
                "email": "not-an-email",
                "language": "fr",
                "timezone": "Mars/Olympus",
                "birthday": "17/05/1985",
                "phone": "+44",
            }
        )
    assert caught.value.fields == {
        "external_id": "must be a string of 1-128 printable characters without spaces at "
        "either end",
        "first_name": "must not be empty",
        "last_name": "must be a string",
        "email": "must be an email address",
        "language": "must be one of en, zh",
        "timezone": 'must be an IANA time zone like "Europe/London"',
        "birthday": 'must be a date like "1985-05-17"',
        "phone": "unknown field",
    }


@pytest.mark.parametrize(
    "external_id", ["", " 1", "1 ", "a\tb", "x" * 129, 1.5, [], {"id": 1}, "line\nbreak"]
)
def test_bad_external_ids(external_id: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_customer({"external_id": external_id, "first_name": "Ann"})
    assert set(caught.value.fields) == {"external_id"}


def test_missing_fields_and_non_objects() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_customer({})
    assert caught.value.fields == {"external_id": "required", "first_name": "required"}
    for body in ([], "text", 3, None):
        with pytest.raises(InvalidRequest) as caught:
            parse_customer(body)
        assert caught.value.fields == {"(body)": "must be a JSON object"}


# ---------------------------------------------------------------- orders


def order(**fields: Any) -> OrderIn:
    base: dict[str, Any] = {
        "external_id": "581587",
        "customer_external_id": "12361",
        "placed_at": "2026-11-23T09:15:00Z",
        "items": [{"sku": "22728", "description": "CLOCK", "quantity": 4, "unit_price": 3.75}],
    }
    return parse_order({**base, **fields}, now=NOW, tolerance=SKEW, default_currency="GBP")


def order_errors(**fields: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        order(**fields)
    return caught.value.fields


def test_an_order_with_defaults() -> None:
    parsed = order()
    assert parsed.placed_at == datetime(2026, 11, 23, 9, 15, tzinfo=UTC)
    assert (parsed.status, parsed.currency, parsed.notify) == (None, "GBP", True)
    [item] = parsed.items
    assert (item.sku, item.description, item.quantity, item.unit_price) == (
        "22728",
        "CLOCK",
        4,
        3.75,
    )


def test_lenient_where_shops_differ() -> None:
    parsed = order(
        currency="eur",
        status="shipped",
        notify=False,
        items=[
            {"sku": 85123, "quantity": -2.0, "unit_price": "2.55"},
            {"sku": "POST", "description": "  POSTAGE  ", "quantity": 1, "unit_price": 0},
        ],
    )
    assert (parsed.currency, parsed.status, parsed.notify) == ("EUR", OrderStatus.SHIPPED, False)
    assert [(i.sku, i.description, i.quantity, i.unit_price) for i in parsed.items] == [
        ("85123", "", -2, 2.55),
        ("POST", "POSTAGE", 1, 0.0),
    ]


@pytest.mark.parametrize("quantity", [0, 1.5, True, "2", None, 10_000_001, -0.0])
def test_quantities_must_be_non_zero_whole_numbers(quantity: Any) -> None:
    errors = order_errors(items=[{"sku": "1", "quantity": quantity, "unit_price": 1}])
    expected = "required" if quantity is None else "must be a non-zero whole number"
    assert errors["items[0].quantity"].startswith(expected)


@pytest.mark.parametrize(
    "price", [-0.01, "-1", "1e3", "NaN", "", "2,55", False, 1e10, float("inf"), [1]]
)
def test_prices_must_be_numbers_from_zero(price: Any) -> None:
    errors = order_errors(items=[{"sku": "1", "quantity": 1, "unit_price": price}])
    assert set(errors) == {"items[0].unit_price"}


@pytest.mark.parametrize(
    ("placed_at", "message"),
    [
        ("2026-11-23T09:15:00", "must be an ISO-8601 time with a UTC offset"),
        ("2026-11-23", "must be an ISO-8601 time with a UTC offset"),
        ("23/11/2026 09:15", "must be an ISO-8601 time with a UTC offset"),
        (1764000000, "must be an ISO-8601 time with a UTC offset"),
        ("0001-01-01T00:00:00+01:00", "must be between the years 1970 and 2100"),
        ("2026-11-23T10:05:01+00:00", "must not be in the future"),
    ],
)
def test_placed_at_needs_an_offset_and_a_sane_time(placed_at: Any, message: str) -> None:
    assert order_errors(placed_at=placed_at)["placed_at"].startswith(message)


def test_a_time_within_the_skew_ahead_is_accepted() -> None:
    assert order(placed_at="2026-11-23T11:05:00+01:00").placed_at == NOW + timedelta(minutes=5)


def test_item_lists_are_bounded_and_every_item_is_checked() -> None:
    assert order_errors(items=[]) == {"items": "must be a list of 1-500 items"}
    assert order_errors(items={"sku": "1"}) == {"items": "must be a list of 1-500 items"}
    many = [{"sku": str(n), "quantity": 1, "unit_price": 1} for n in range(501)]
    assert order_errors(items=many) == {"items": "must be a list of 1-500 items"}
    assert len(order(items=many[:500]).items) == 500
    errors = order_errors(
        items=[
            {"sku": "ok", "quantity": 1, "unit_price": 1},
            {"sku": "x" * 65, "quantity": 1, "unit_price": 1},
            {"quantity": 1, "unit_price": 1, "description": "d" * 501},
            None,
        ]
    )
    assert set(errors) == {"items[1].sku", "items[2].sku", "items[2].description", "items[3]"}


def test_order_statuses_and_currencies() -> None:
    assert order_errors(status="lost")["status"].startswith("must be one of placed, paid")
    assert set(order_errors(currency="GB")) == {"currency"}
    assert set(order_errors(currency=826)) == {"currency"}
    assert set(order_errors(notify="yes")) == {"notify"}


# ---------------------------------------------------------------- status changes


def test_status_changes() -> None:
    parsed = parse_status({"status": "delivered"}, now=NOW, tolerance=SKEW)
    assert (parsed.status, parsed.at, parsed.notify) == (OrderStatus.DELIVERED, None, True)
    parsed = parse_status(
        {"status": "shipped", "at": "2026-11-23T04:00:00-05:00"}, now=NOW, tolerance=SKEW
    )
    assert parsed.at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    with pytest.raises(InvalidRequest) as caught:
        parse_status({"at": "yesterday", "by": "courier"}, now=NOW, tolerance=SKEW)
    assert set(caught.value.fields) == {"status", "at", "by"}


# ---------------------------------------------------------------- who is told


def recipient(**changes: Any) -> Recipient:
    base: dict[str, Any] = {
        "customer_id": 1,
        "first_name": "Ann",
        "language": "en",
        "chat_id": 1001,
        "blocked": False,
        "banned": False,
        "order_updates_opt_out": False,
    }
    return Recipient(**{**base, **changes})


@pytest.mark.parametrize(
    ("status", "who", "requested", "expected"),
    [
        (OrderStatus.SHIPPED, recipient(), True, None),
        (OrderStatus.DELIVERED, recipient(), True, None),
        (OrderStatus.PAID, recipient(), True, Notification.NONE),
        (OrderStatus.REFUNDED, recipient(), True, Notification.NONE),
        (OrderStatus.SHIPPED, recipient(), False, Notification.DISABLED),
        (OrderStatus.SHIPPED, None, True, Notification.NOT_ON_TELEGRAM),
        (OrderStatus.SHIPPED, recipient(chat_id=None), True, Notification.NOT_ON_TELEGRAM),
        (OrderStatus.SHIPPED, recipient(blocked=True), True, Notification.BLOCKED),
        (OrderStatus.DELIVERED, recipient(banned=True), True, Notification.BLOCKED),
        (
            OrderStatus.DELIVERED,
            recipient(order_updates_opt_out=True),
            True,
            Notification.OPTED_OUT,
        ),
    ],
)
def test_who_is_told_about_which_status(
    status: OrderStatus, who: Recipient | None, requested: bool, expected: Notification | None
) -> None:
    assert notification_barrier(status, who, requested=requested) == expected
