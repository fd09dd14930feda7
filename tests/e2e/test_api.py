"""The signed ingest API over HTTP, with the real bot telling customers in the sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import FixedClock, to_iso
from bot.config import ApiConfig, Config
from bot.ingest import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bot.models import OrderStatus
from carebot.api import API_PREFIX, openapi_document
from carebot.web import build_web_app
from storage.ingest import IngestRepository
from tests.conftest import make_config
from tests.e2e.conftest import ANN, NEWCOMER, WEI, Chat, start_chat
from tests.e2e.test_webhook import free_port

SECRET = "ingest-secret-0123456789abcdef-0123456789"
MAX_BODY = 4096
SKEW = 300
ANN_ID, WEI_ID, CLAIRE_ID = "12361", "12789", "12651"  # demo shop customers (shop.toml)

# Every status code each route answers with in these tests; the OpenAPI document must list
# exactly these (and ``Api.call`` fails on any status the document does not list).
EXERCISED: dict[tuple[str, str], set[int]] = {
    ("post", "/customers"): {200, 201, 400, 401, 413},
    ("post", "/orders"): {200, 201, 400, 401, 413, 422},
    ("post", "/orders/{external_id}/status"): {200, 400, 401, 404, 413},
    ("get", "/openapi.json"): {200},
}


def route_of(path: str) -> str | None:
    """The OpenAPI path template a request path falls under (None: no such route)."""
    rest = path.removeprefix(API_PREFIX)
    if rest in {"/customers", "/orders", "/openapi.json"}:
        return rest
    if re.fullmatch(r"/orders/[^/]+/status", rest):
        return "/orders/{external_id}/status"
    return None


@dataclasses.dataclass
class Api:
    """A signing client for the ingest API of a running bot, and the bot's chats."""

    client: TestClient[web.Request, web.Application]
    chat: Chat
    clock: FixedClock
    config: Config
    changes: list[str]
    spec: dict[str, Any]
    _n: int = 0

    def headers(
        self, body: bytes, *, at: int | None = None, secret: str = SECRET
    ) -> dict[str, str]:
        if at is None:
            # a distinct timestamp per call, so a deliberate retry is not taken for a replay
            self._n = (self._n + 1) % 200
            at = int(self.clock.now().timestamp()) - self._n
        return {
            TIMESTAMP_HEADER: str(at),
            SIGNATURE_HEADER: sign(secret, at, body),
            "Content-Type": "application/json",
        }

    async def call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        body = raw if raw is not None else json.dumps(payload).encode()
        if headers is None:
            headers = self.headers(body)
        async with self.client.request(method, path, data=body, headers=headers) as response:
            assert response.content_type == "application/json"
            answer = await response.json()
        route = route_of(path)
        if route is not None and response.status != 405:
            documented = self.spec["paths"][route][method.lower()]["responses"]
            assert str(response.status) in documented, f"{response.status} undocumented"
        return response.status, answer

    async def post(self, path: str, payload: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", API_PREFIX + path, payload, **kwargs)

    async def order(
        self, external_id: str, customer: str = ANN_ID, **fields: Any
    ) -> tuple[int, Any]:
        payload = {
            "external_id": external_id,
            "customer_external_id": customer,
            "placed_at": "2026-11-22T18:30:00+01:00",
            "items": [
                {
                    "sku": "22728",
                    "description": "MUG <SPECIAL> & CO",
                    "quantity": 2,
                    "unit_price": 3.75,
                },
                {"sku": "POST", "description": "POSTAGE", "quantity": 1, "unit_price": "15.00"},
            ],
            **fields,
        }
        return await self.post("/orders", payload)

    async def status(self, external_id: str, status: str, **fields: Any) -> tuple[int, Any]:
        return await self.post(f"/orders/{external_id}/status", {"status": status, **fields})

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(self.chat.care.db.execute(sql, params).fetchall())

    async def sent_to(self, user_id: int) -> list[dict[str, Any]]:
        await self.chat.sandbox.wait_idle(quiet=0.1, timeout=10)
        return [m for m in self.chat.sandbox.sent(user_id) if "plain_text" in m]


def api_config(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    return dataclasses.replace(
        config,
        api=ApiConfig(
            enabled=True, secret=SECRET, max_body_bytes=MAX_BODY, max_clock_skew_seconds=SKEW
        ),
        web=dataclasses.replace(config.web, port=free_port()),
    )


@pytest.fixture
async def api(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Api]:
    config = api_config(tmp_path)
    changes: list[str] = []

    def orders_changed(event: object) -> None:
        changes.append("changed")

    async for chat in start_chat(demo_database, config, clock):
        web_app = build_web_app(
            config, chat.care.application, chat.care.repos, on_orders_changed=orders_changed
        )
        async with TestClient(TestServer(web_app)) as client:
            yield Api(client, chat, clock, config, changes, openapi_document(config))


async def started(api: Api, *users: Any) -> None:
    """The users write to the bot first (a bot can only message people who started it)."""
    for user in users:
        await api.chat.say(user, "/start")


# ---------------------------------------------------------------- the description


async def test_openapi_is_public_and_matches_the_routes_and_the_tests(api: Api) -> None:
    async with api.client.get(f"{API_PREFIX}/openapi.json") as response:
        assert response.status == 200
        spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    sub_apps = [
        r.get_info()["app"] for r in api.client.app.router.resources() if "app" in r.get_info()
    ]
    [sub] = sub_apps
    routes = {
        (route.method.lower(), route.resource.canonical.removeprefix(API_PREFIX))
        for route in sub.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    described = {(m, path) for path, item in spec["paths"].items() for m in item}
    assert routes == described == set(EXERCISED)
    for (method, path), codes in EXERCISED.items():
        assert {int(c) for c in spec["paths"][path][method]["responses"]} == codes, path
    schemes = spec["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {SIGNATURE_HEADER, TIMESTAMP_HEADER}
    assert spec["paths"]["/openapi.json"]["get"]["security"] == []


async def test_the_running_bot_serves_the_api_on_its_web_port(api: Api) -> None:
    url = f"http://127.0.0.1:{api.config.web.port}{API_PREFIX}/openapi.json"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert "/orders/{external_id}/status" in (await response.json())["paths"]


# ---------------------------------------------------------------- customers


async def test_customer_is_created_then_updated_with_a_working_deep_link(api: Api) -> None:
    customer = {
        "external_id": "C-900",
        "first_name": "Nina",
        "last_name": "Berg",
        "email": "nina@example.com",
        "country": "Sweden",
        "language": "en",
        "timezone": "europe/stockholm",
    }
    status, created = await api.post("/customers", customer)
    assert status == 201
    assert created["created"] is True
    assert created["telegram_linked"] is False
    assert created["link"].startswith("https://t.me/carebot_sandbox_bot?start=")
    assert created["link_expires_at"] == to_iso(api.clock.now() + timedelta(hours=72))

    status, updated = await api.post(
        "/customers", {"external_id": "C-900", "first_name": "Nina", "language": "zh"}
    )
    assert status == 200
    assert updated["created"] is False
    assert updated["customer_id"] == created["customer_id"]
    assert updated["link"] != created["link"]  # a fresh single-use token every time
    # omitted fields keep what is stored; a language already set is kept
    assert api.rows(
        "SELECT last_name, email, country, language, timezone FROM customers"
        " WHERE external_id = 'C-900'"
    ) == [("Berg", "nina@example.com", "Sweden", "en", "Europe/Stockholm")]

    token = updated["link"].rsplit("=", 1)[1]
    [reply, *_] = await api.chat.say(NEWCOMER, f"/start {token}")
    assert "connected" in reply["plain_text"]
    status, linked = await api.post("/customers", {"external_id": "C-900", "first_name": "Nina"})
    assert (status, linked["telegram_linked"]) == (200, True)


async def test_numeric_external_ids_are_taken_as_text(api: Api) -> None:
    status, answer = await api.post("/customers", {"external_id": 12361, "first_name": "Ann"})
    assert (status, answer["external_id"], answer["telegram_linked"]) == (200, ANN_ID, True)


# ---------------------------------------------------------------- signatures


async def test_missing_or_wrong_signatures_are_refused(api: Api) -> None:
    body = json.dumps({"external_id": "C-1", "first_name": "Eve"}).encode()
    now = int(api.clock.now().timestamp())
    good = api.headers(body, at=now)
    cases = {
        "no headers": {},
        "no timestamp": {SIGNATURE_HEADER: good[SIGNATURE_HEADER]},
        "no signature": {TIMESTAMP_HEADER: good[TIMESTAMP_HEADER]},
        "wrong secret": api.headers(body, at=now, secret="x" * 40),
        "other timestamp": {**good, TIMESTAMP_HEADER: str(now - 1)},
        "no scheme": {**good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].removeprefix("sha256=")},
        "not a number": {**good, TIMESTAMP_HEADER: "yesterday"},
    }
    for name, headers in cases.items():
        status, answer = await api.call(
            "POST", f"{API_PREFIX}/customers", raw=body, headers=headers
        )
        assert status == 401, name
        assert "error" in answer
    status, _ = await api.call(
        "POST", f"{API_PREFIX}/customers", raw=body + b" ", headers=good
    )  # body changed after signing
    assert status == 401
    assert api.rows("SELECT id FROM customers WHERE external_id = 'C-1'") == []


@pytest.mark.parametrize(
    ("offset", "expected"), [(-SKEW - 1, 401), (SKEW + 1, 401), (-SKEW, 201), (SKEW, 201)]
)
async def test_timestamps_outside_the_clock_skew_are_refused(
    api: Api, offset: int, expected: int
) -> None:
    body = json.dumps({"external_id": "C-2", "first_name": "Tim"}).encode()
    headers = api.headers(body, at=int(api.clock.now().timestamp()) + offset)
    status, answer = await api.call("POST", f"{API_PREFIX}/customers", raw=body, headers=headers)
    assert status == expected
    if expected == 401:
        assert answer == {"error": "timestamp outside the allowed clock skew"}


async def test_a_replayed_request_is_refused_and_old_signatures_are_forgotten(api: Api) -> None:
    body = json.dumps({"external_id": "C-3", "first_name": "Rita"}).encode()
    headers = api.headers(body)
    assert (await api.call("POST", f"{API_PREFIX}/customers", raw=body, headers=headers))[0] == 201
    status, answer = await api.call("POST", f"{API_PREFIX}/customers", raw=body, headers=headers)
    assert status == 401
    assert "already received" in answer["error"]
    assert api.rows("SELECT COUNT(*) FROM api_signatures") == [(1,)]
    api.clock.advance(timedelta(seconds=2 * SKEW + 1))
    assert (await api.post("/customers", {"external_id": "C-3", "first_name": "Rita"}))[0] == 200
    assert api.rows("SELECT COUNT(*) FROM api_signatures") == [(1,)]  # the old one purged
    # a replay after the window fails on the clock, so forgetting it was safe
    status, _ = await api.call("POST", f"{API_PREFIX}/customers", raw=body, headers=headers)
    assert status == 401


# ---------------------------------------------------------------- malformed requests


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"a": NaN}', b"\xff\xfe", b"[" * 3000])
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    status, answer = await api.call("POST", f"{API_PREFIX}/customers", raw=raw)
    assert status == 400
    assert answer == {"error": "body is not valid JSON (UTF-8)"}


async def test_schema_errors_name_every_bad_field(api: Api) -> None:
    status, answer = await api.post(
        "/orders",
        {
            "external_id": " A-1",
            "customer_external_id": ANN_ID,
            "placed_at": "2026-11-22 18:30",
            "status": "lost",
            "currency": "pounds",
            "items": [
                {"sku": "22728", "description": "MUG", "quantity": 0, "unit_price": 3.75},
                {"sku": "", "quantity": 1.5, "unit_price": -1, "colour": "red"},
                "POSTAGE",
            ],
            "coupon": "XMAS",
        },
    )
    assert status == 400
    assert answer["error"] == "invalid request"
    assert set(answer["fields"]) == {
        "external_id",
        "placed_at",
        "status",
        "currency",
        "items[0].quantity",
        "items[1].sku",
        "items[1].quantity",
        "items[1].unit_price",
        "items[1].colour",
        "items[2]",
        "coupon",
    }
    assert answer["fields"]["items[0].quantity"].startswith("must be a non-zero whole number")
    assert answer["fields"]["coupon"] == "unknown field"
    assert api.rows("SELECT id FROM orders WHERE external_id LIKE '%A-1'") == []

    status, answer = await api.post("/customers", ["not", "an", "object"])
    assert (status, answer["fields"]) == (400, {"(body)": "must be a JSON object"})
    status, answer = await api.status("495719", "teleported", at="tomorrow")
    assert status == 400
    assert set(answer["fields"]) == {"status", "at"}


async def test_bodies_over_the_limit_are_413(api: Api) -> None:
    big = json.dumps({"external_id": "C-4", "first_name": "x" * MAX_BODY}).encode()
    status, answer = await api.call("POST", f"{API_PREFIX}/customers", raw=big)
    assert status == 413
    assert answer == {"error": f"body larger than {MAX_BODY} bytes"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(8):
            yield b" " * 1024

    headers = api.headers(b"unused")
    async with api.client.post(f"{API_PREFIX}/orders", data=chunks(), headers=headers) as r:
        assert r.status == 413
        assert (await r.json())["error"].startswith("body larger than")


async def test_unknown_routes_and_wrong_methods_answer_in_json(api: Api) -> None:
    status, answer = await api.call("POST", f"{API_PREFIX}/refunds", {})
    assert (status, answer) == (404, {"error": "not found"})
    async with api.client.get(f"{API_PREFIX}/orders") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert await response.json() == {"error": "method not allowed"}
    status, answer = await api.status("no-such-order", "shipped")
    assert (status, answer) == (404, {"error": "no order with this external_id"})


async def test_an_order_for_an_unknown_customer_is_422(api: Api) -> None:
    status, answer = await api.order("A-2", customer="nobody")
    assert status == 422
    assert set(answer["fields"]) == {"customer_external_id"}
    assert api.changes == []


# ---------------------------------------------------------------- orders


async def test_the_same_order_twice_is_one_order(api: Api) -> None:
    status, first = await api.order("A-10", status="paid")
    assert status == 201
    assert (first["result"], first["status"], first["total"]) == ("created", "paid", 22.5)
    assert first["placed_at"] == "2026-11-22T17:30:00+00:00"
    assert first["currency"] == "GBP"
    lines = (
        "SELECT sku, description, quantity, unit_price FROM order_items i"
        " JOIN orders o ON o.id = i.order_id WHERE o.external_id = 'A-10' ORDER BY line_no"
    )
    before = api.rows(lines)
    events = (
        "SELECT e.status, e.source FROM order_events e JOIN orders o ON o.id = e.order_id"
        " WHERE o.external_id = 'A-10' ORDER BY e.id"
    )

    status, again = await api.order("A-10", status="paid")
    assert (status, again["result"], again["order_id"]) == (200, "unchanged", first["order_id"])
    assert api.rows("SELECT COUNT(*), source FROM orders WHERE external_id = 'A-10'") == [
        (1, "api")
    ]
    assert (
        api.rows(lines)
        == before
        == [
            ("22728", "MUG <SPECIAL> & CO", 2, 3.75),
            ("POST", "POSTAGE", 1, 15.0),
        ]
    )
    assert api.rows(events) == [("paid", "api")]
    assert api.changes == ["changed"]

    # without a status an update keeps the current one; new items replace the old ones
    status, updated = await api.order(
        "A-10", items=[{"sku": "22728", "quantity": 3, "unit_price": 3.75}], currency="eur"
    )
    assert (status, updated["result"], updated["status"]) == (200, "updated", "paid")
    assert (updated["item_count"], updated["total"], updated["currency"]) == (1, 11.25, "EUR")
    assert api.rows(events) == [("paid", "api")]
    assert api.changes == ["changed", "changed"]


# ---------------------------------------------------------------- status and notifications


async def test_shipped_reaches_ann_in_english_once_and_is_logged(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-20", status="paid")
    status, answer = await api.status("A-20", "shipped", at="2026-11-23T09:45:00+00:00")
    assert status == 200
    assert (answer["result"], answer["notification"]) == ("changed", "sent")
    assert answer["at"] == "2026-11-23T09:45:00+00:00"
    [message] = [m for m in await api.sent_to(ANN.id) if "#A-20" in m["plain_text"]]
    text = message["plain_text"]
    assert text.startswith("📦 Good news, Ann! Your Demo Gifts order #A-20 is on its way.")
    assert "2 × MUG <SPECIAL> & CO" in text  # escaped in the HTML, shown as written
    assert "Total: £22.50" in text
    assert api.rows(
        "SELECT e.status, e.at, e.source, e.notified_at IS NOT NULL FROM order_events e"
        " JOIN orders o ON o.id = e.order_id WHERE o.external_id = 'A-20' ORDER BY e.id"
    ) == [
        ("paid", to_iso(api.clock.now()), "api", 0),
        ("shipped", "2026-11-23T09:45:00+00:00", "api", 1),
    ]
    logged = [m for m in api.chat.care.repos.messages.for_chat(ANN.id) if m.kind == "order_shipped"]
    assert [(m.direction, m.telegram_message_id, m.text) for m in logged] == [
        ("out", message["message_id"], logged[0].text)
    ]
    assert logged[0].text is not None
    assert "MUG &lt;SPECIAL&gt; &amp; CO" in logged[0].text

    # the shop retries (freshly signed): nothing new is stored or sent
    status, retry = await api.status("A-20", "shipped")
    assert (status, retry["result"], retry["notification"]) == (200, "unchanged", "already_sent")
    assert retry["at"] == "2026-11-23T09:45:00+00:00"
    status, delivered = await api.status("A-20", "delivered")
    assert delivered["notification"] == "sent"
    texts = [m["plain_text"] for m in await api.sent_to(ANN.id) if "#A-20" in m["plain_text"]]
    assert len(texts) == 2
    assert "has been delivered" in texts[1]
    assert api.changes == ["changed"] * 3


async def test_wei_is_told_in_chinese(api: Api) -> None:
    await started(api, WEI)
    await api.order("W-1", customer=WEI_ID)
    status, answer = await api.status("W-1", "shipped")
    assert (status, answer["notification"]) == (200, "sent")
    await api.status("W-1", "delivered")
    texts = [m["plain_text"] for m in await api.sent_to(WEI.id) if "#W-1" in m["plain_text"]]
    assert len(texts) == 2
    assert "已发货" in texts[0]
    assert "合计：£22.50" in texts[0]
    assert "已送达" in texts[1]


async def test_two_calls_at_once_message_once(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-30")
    answers = await asyncio.gather(
        api.status("A-30", "shipped"), api.status("A-30", "shipped", at=to_iso(api.clock.now()))
    )
    assert sorted((a["result"], a["notification"]) for _, a in answers) == [
        ("changed", "sent"),
        ("unchanged", "already_sent"),
    ]
    assert len([m for m in await api.sent_to(ANN.id) if "#A-30" in m["plain_text"]]) == 1


async def test_an_order_sent_as_shipped_is_announced_like_a_status_change(api: Api) -> None:
    await started(api, ANN)
    status, created = await api.order("A-40", status="shipped")
    assert (status, created["notification"]) == (201, "sent")
    status, again = await api.status("A-40", "shipped")
    assert (again["result"], again["notification"]) == ("unchanged", "already_sent")
    status, quiet = await api.order("A-41", status="delivered", notify=False)
    assert quiet["notification"] == "disabled"
    status, paid = await api.status("A-41", "paid")
    assert paid["notification"] == "none"
    texts = [m["plain_text"] for m in await api.sent_to(ANN.id)]
    assert len([t for t in texts if "#A-40" in t]) == 1
    assert not [t for t in texts if "#A-41" in t]


async def test_no_message_for_an_opted_out_customer(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-50")
    api.rows("UPDATE customers SET order_updates_opt_out = 1 WHERE external_id = ?", ANN_ID)
    status, answer = await api.status("A-50", "shipped")
    assert (status, answer["result"], answer["notification"]) == (200, "changed", "opted_out")
    assert not [m for m in await api.sent_to(ANN.id) if "#A-50" in m["plain_text"]]


async def test_no_message_for_a_customer_who_blocked_the_bot(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-60")
    api.chat.sandbox.block_user(ANN.id)  # Telegram tells the bot; it flags the customer
    await api.chat.sandbox.wait_idle(quiet=0.15)
    status, answer = await api.status("A-60", "shipped")
    assert (status, answer["notification"]) == (200, "blocked")
    sends = [c for c in api.chat.sandbox.calls("sendMessage") if "#A-60" in str(c["params"])]
    assert sends == []


async def test_a_403_flags_the_customer_and_the_call_still_succeeds(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-70")
    api.chat.sandbox.block_user(ANN.id, notify=False)  # the bot has not heard yet
    status, answer = await api.status("A-70", "shipped")
    assert (status, answer["result"], answer["notification"]) == (200, "changed", "blocked")
    assert api.rows("SELECT blocked FROM customers WHERE external_id = ?", ANN_ID) == [(1,)]
    assert api.rows(
        "SELECT notified_at FROM order_events e JOIN orders o ON o.id = e.order_id"
        " WHERE o.external_id = 'A-70' AND e.status = 'shipped'"
    ) == [(None,)]  # nobody was told


async def test_a_retry_after_a_refused_notification_tells_the_customer(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-75")
    api.chat.sandbox.set_fault("403", methods="sendMessage", chat_id=ANN.id, count=1)
    status, answer = await api.status("A-75", "shipped")
    assert (status, answer["notification"]) == (200, "blocked")
    await api.chat.say(ANN, "/start")  # Ann writes again: no longer blocked
    status, retry = await api.status("A-75", "shipped")
    assert (status, retry["result"], retry["notification"]) == (200, "unchanged", "sent")
    shipped = [m for m in await api.sent_to(ANN.id) if "#A-75" in m["plain_text"]]
    assert len(shipped) == 1


async def test_a_telegram_outage_does_not_fail_the_call(api: Api) -> None:
    await started(api, ANN)
    await api.order("A-80")
    # down for the first attempt and every retry the rate limiter makes
    outage = 1 + api.config.telegram.max_retries
    api.chat.sandbox.set_fault("500", methods="sendMessage", count=outage)
    status, answer = await api.status("A-80", "shipped")
    assert (status, answer["result"], answer["notification"]) == (200, "changed", "failed")
    assert api.rows("SELECT status FROM orders WHERE external_id = 'A-80'") == [("shipped",)]


async def test_customers_without_telegram_are_not_messaged(api: Api) -> None:
    await api.order("C-90", customer=CLAIRE_ID)
    status, answer = await api.status("C-90", "delivered")
    assert (status, answer["notification"]) == (200, "not_on_telegram")
    status, future = await api.status(
        "C-90", "refunded", at=to_iso(api.clock.now() + timedelta(seconds=SKEW + 60))
    )
    assert (status, future["fields"]) == (400, {"at": "must not be in the future"})


async def test_external_ids_with_slashes_work_percent_encoded(api: Api) -> None:
    await api.order("2026/11/0042")
    status, answer = await api.status("2026%2F11%2F0042", "paid")
    assert (status, answer["external_id"], answer["result"]) == (200, "2026/11/0042", "changed")


# ---------------------------------------------------------------- the ledger itself


async def test_the_ledger_claims_once_per_order_and_status(api: Api) -> None:
    """Storage level (belongs with tests/storage): a second event of the same status loses."""
    store = IngestRepository(api.chat.care.db)
    await api.order("L-1")
    order = store.order("L-1")
    assert order is not None
    now = api.clock.now()
    first = store.change_status(order.id, OrderStatus.SHIPPED, now, now)
    assert first is not None
    assert store.change_status(order.id, OrderStatus.SHIPPED, now, now) is None
    store.change_status(order.id, OrderStatus.PAID, now, now)
    second = store.change_status(order.id, OrderStatus.SHIPPED, now, now)  # shipped again
    assert second is not None
    assert store.claim_notification(first.id, now)
    assert not store.claim_notification(first.id, now)
    assert not store.claim_notification(second.id, now)  # already told once for "shipped"
    store.release_notification(first.id)  # Telegram refused: free again
    assert not store.announced(order.id, OrderStatus.SHIPPED)
    assert store.claim_notification(second.id, now)
    assert store.announced(order.id, OrderStatus.SHIPPED)
    assert [e.source for e in (first, second)] == ["api", "api"]
