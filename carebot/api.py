"""The signed ingest API under ``/api/v1``: the shop's system sends customers, orders, statuses.

Every request except ``GET /api/v1/openapi.json`` is signed (see ``bot/ingest.py`` and
``docs/ingest-api.md``). Checks run cheapest first: size (413), signature, clock and replay
(401), JSON (400), fields (400), references (404/422). Every answer is JSON.

Shipped and delivered statuses are announced to the customer in Telegram, at most once per
(order, status): the intent is recorded first (``order_events.notified_at``), then the message
is sent and written to the conversation log. A Telegram failure never fails the API call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError
from telegram.ext import Application

from bot.clock import to_iso
from bot.config import SUPPORTED_LANGUAGES, Config
from bot.ingest import (
    ANNOUNCED,
    ITEMS_SHOWN,
    MAX_COUNTRY_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    MAX_ITEMS,
    MAX_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    MAX_UNIT_PRICE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AuthFailure,
    InvalidRequest,
    Notification,
    Unauthorized,
    notification_barrier,
    parse_customer,
    parse_order,
    parse_status,
    replay_window,
    verify_signature,
)
from bot.models import Order, OrderStatus
from handlers.common import fit
from handlers.context import BotData, Deps
from storage.database import write_transaction
from storage.ingest import IngestRepository, OrderEvent, SignatureLedger
from storage.repositories import NewOrderItem, Repositories

logger = logging.getLogger("carebot.api")

API_PREFIX = "/api/v1"
OrdersChanged = Callable[[OrderEvent | None], None]
#: Called (synchronously, after the change is stored) whenever the API created or changed an
#: order or an order's status, with the status event it recorded (None: no status change);
#: set on the main web app by ``build_web_app``.
ON_ORDERS_CHANGED = web.AppKey[OrdersChanged]("on_orders_changed")

_READ_CHUNK = 64 * 1024
P = TypeVar("P")


def no_orders_changed_callback(event: OrderEvent | None) -> None:
    """The default ``on_orders_changed``: nothing to recompute."""


class ApiError(Exception):
    """An answer other than success, as JSON: ``{"error": ..., "fields": {...}}``."""

    def __init__(self, status: int, error: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.fields = dict(fields) if fields else None

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.error}
        if self.fields is not None:
            body["fields"] = self.fields
        return web.json_response(body, status=self.status)


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Every failure under /api/v1 is answered in JSON, including the router's 404 and 405."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=headers)
    except Exception:
        logger.exception("api: %s %s failed", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity; anything else is a 400."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "body is not valid JSON (UTF-8)") from None


class IngestApi:
    """The handlers, over the bot's storage connection, services, texts and clock."""

    def __init__(self, config: Config, bot: Bot, deps: Deps, repos: Repositories) -> None:
        self.config = config
        self.bot = bot
        self.deps = deps
        self.clock = deps.clock
        db = repos.db  # the bot's one connection: one writer, short statements on the loop
        self.customers = repos.customers
        self.store = IngestRepository(db)
        self.signatures = SignatureLedger(db)
        self.openapi = openapi_document(config)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/customers", self.post_customer),
            web.post("/orders", self.post_order),
            web.post("/orders/{external_id}/status", self.post_status),
            web.get("/openapi.json", self.get_openapi),
        ]

    # ------------------------------------------------------------ endpoints

    async def get_openapi(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 description of this API (public, unsigned)."""
        return web.json_response(self.openapi)

    async def post_customer(self, request: web.Request) -> web.Response:
        """Create or update a customer by the shop's id; answer with a fresh deep link."""
        payload = parse_or_400(parse_customer, await self.signed_json(request))
        now = self.clock.now()
        before = self.customers.by_external_id(payload.external_id)
        with write_transaction(self.customers.db):
            # Omitted optional fields keep what is stored; the customer's own language and
            # timezone (chosen in the bot) are never overwritten.
            customer_id = self.customers.create_shop_customer(
                payload.external_id,
                first_name=payload.first_name,
                last_name=payload.last_name or (before.last_name if before else None),
                country=payload.country or (before.country if before else None),
                language=payload.language,
                email=payload.email,
                birthday=payload.birthday,
                now=now,
            )
            if payload.timezone and (before is None or before.timezone is None):
                self.customers.update_settings(customer_id, now, timezone=payload.timezone)
        token, expires = self.deps.services.links.issue(customer_id)
        customer = self.customers.get(customer_id)
        assert customer is not None
        username = self.bot_username()
        logger.info("api: customer %s %s", payload.external_id, "updated" if before else "created")
        return web.json_response(
            {
                "customer_id": customer.id,
                "external_id": customer.external_id,
                "created": before is None,
                "telegram_linked": customer.telegram_user_id is not None,
                "link": f"https://t.me/{username}?start={token}" if username else None,
                "link_expires_at": to_iso(expires),
            },
            status=200 if before else 201,
        )

    async def post_order(self, request: web.Request) -> web.Response:
        """Create or replace an order with its items; sending the same order again is a no-op."""
        data = await self.signed_json(request)
        now = self.clock.now()
        payload = parse_or_400(
            lambda d: parse_order(
                d,
                now=now,
                tolerance=self.tolerance,
                default_currency=self.config.shop.currency,
            ),
            data,
        )
        customer = self.customers.by_external_id(payload.customer_external_id)
        if customer is None:
            raise ApiError(
                422,
                "unknown customer",
                {
                    "customer_external_id": "no customer with this external_id: "
                    "create it first with POST /api/v1/customers"
                },
            )
        existing = self.store.order(payload.external_id)
        status = payload.status or (existing.status if existing else OrderStatus.PLACED)
        items = [
            NewOrderItem(i.sku, i.description, i.quantity, i.unit_price) for i in payload.items
        ]
        if existing is not None and _same_order(
            existing, customer.id, status, payload.placed_at, payload.currency, items
        ):
            result, event = "unchanged", None
        else:
            saved = self.store.save_order(
                external_id=payload.external_id,
                customer_id=customer.id,
                status=status,
                placed_at=payload.placed_at,
                currency=payload.currency,
                items=items,
                now=now,
            )
            result, event = ("created" if saved.created else "updated"), saved.event
            self.orders_changed(request, event)
        order = self.store.order(payload.external_id)
        assert order is not None
        if event is not None:
            notification = await self.announce(order, event, requested=payload.notify)
        elif self.store.announced(order.id, order.status):
            notification = Notification.ALREADY_SENT
        else:
            notification = Notification.NONE
        logger.info(
            "api: order %s %s (%s; notification %s)",
            order.external_id,
            result,
            order.status.value,
            notification.value,
        )
        return web.json_response(
            {
                "order_id": order.id,
                "external_id": order.external_id,
                "customer_external_id": payload.customer_external_id,
                "status": order.status.value,
                "placed_at": to_iso(order.placed_at),
                "currency": order.currency,
                "total": order.total,
                "item_count": order.item_count,
                "result": result,
                "notification": notification.value,
            },
            status=201 if result == "created" else 200,
        )

    async def post_status(self, request: web.Request) -> web.Response:
        """Record a status change with its time; shipped and delivered are announced once."""
        external_id = request.match_info["external_id"]
        data = await self.signed_json(request)
        now = self.clock.now()
        payload = parse_or_400(lambda d: parse_status(d, now=now, tolerance=self.tolerance), data)
        order = self.store.order(external_id)
        if order is None:
            raise ApiError(404, "no order with this external_id")
        event = self.store.change_status(order.id, payload.status, payload.at or now, now)
        if event is None:
            result = "unchanged"
            previous = self.store.latest_event(order.id, payload.status)
            at = previous.at if previous else None
            if self.store.announced(order.id, payload.status):
                notification = Notification.ALREADY_SENT
            elif previous is not None:
                # nobody was told yet (Telegram refused, or it was not asked): a retry may
                notification = await self.announce(order, previous, requested=payload.notify)
            else:
                notification = Notification.NONE
        else:
            result, at = "changed", event.at
            self.orders_changed(request, event)
            notification = await self.announce(order, event, requested=payload.notify)
        logger.info(
            "api: order %s status %s %s (notification %s)",
            external_id,
            payload.status.value,
            result,
            notification.value,
        )
        return web.json_response(
            {
                "order_id": order.id,
                "external_id": order.external_id,
                "status": payload.status.value,
                "at": to_iso(at) if at else None,
                "result": result,
                "notification": notification.value,
            }
        )

    # ------------------------------------------------------------ plumbing

    @property
    def tolerance(self) -> timedelta:
        """How far in the future a time in a payload may be (the allowed clock skew)."""
        return timedelta(seconds=self.config.api.max_clock_skew_seconds)

    async def signed_json(self, request: web.Request) -> Any:
        """The body, read within the size limit, signed, fresh, not replayed, and JSON."""
        body = await read_body(request, self.config.api.max_body_bytes)
        now = self.clock.now()
        try:
            signed = verify_signature(
                secret=self.config.api.secret,
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                signature=request.headers.get(SIGNATURE_HEADER),
                body=body,
                now=now,
                max_skew_seconds=self.config.api.max_clock_skew_seconds,
            )
        except Unauthorized as exc:
            logger.warning(
                "api: refused %s %s from %s: %s",
                request.method,
                request.path,
                request.remote,
                exc.failure.name.lower(),
            )
            raise ApiError(401, exc.failure.value) from None
        keep = replay_window(self.config.api.max_clock_skew_seconds)
        if not self.signatures.first_use(signed.signature, now, keep):
            logger.warning(
                "api: refused %s %s from %s: replayed", request.method, request.path, request.remote
            )
            raise ApiError(401, AuthFailure.REPLAYED.value)
        return parse_json(body)

    def orders_changed(self, request: web.Request, event: OrderEvent | None) -> None:
        callback = request.config_dict.get(ON_ORDERS_CHANGED, no_orders_changed_callback)
        try:
            callback(event)
        except Exception:  # the change is stored; a failing listener must not undo the answer
            logger.exception("api: on_orders_changed failed")

    def bot_username(self) -> str:
        try:
            username = self.bot.username
        except RuntimeError:  # not initialised (no getMe yet)
            username = ""
        return username or self.config.telegram.username

    async def announce(self, order: Order, event: OrderEvent, *, requested: bool) -> Notification:
        """Tell the customer about a shipped/delivered order once: claim, send, log."""
        recipient = self.store.recipient(order.customer_id)
        barrier = notification_barrier(event.status, recipient, requested=requested)
        if barrier is not None:
            return barrier
        assert recipient is not None
        assert recipient.chat_id is not None
        if not self.store.claim_notification(event.id, self.clock.now()):
            return Notification.ALREADY_SENT
        key = ANNOUNCED[event.status]
        shown = list(order.items[:ITEMS_SHOWN])
        text, parse_mode = fit(
            self.deps.texts.render(
                key,
                recipient.language,
                name=recipient.first_name,
                shop=self.config.shop.name,
                order=order,
                items=shown,
                more=len(order.items) - len(shown),
            )
        )
        try:
            message = await self.bot.send_message(recipient.chat_id, text, parse_mode=parse_mode)
        except Forbidden:
            self.store.release_notification(event.id)
            logger.warning("api: customer %s blocked the bot", recipient.customer_id)
            customer = self.customers.get(recipient.customer_id)
            if customer is not None:
                self.deps.services.customers.mark_blocked(customer)
            return Notification.BLOCKED
        except TelegramError as exc:
            if isinstance(exc, BadRequest) or not isinstance(exc, NetworkError):
                # Telegram answered and refused: nothing was delivered.
                self.store.release_notification(event.id)
            # else a timeout or a lost connection: it may have arrived, so it stays claimed
            # (a customer must never get the same news twice).
            logger.warning(
                "api: could not tell customer %s about order %s (%s): %s",
                recipient.customer_id,
                order.external_id,
                event.status.value,
                exc,
            )
            return Notification.FAILED
        self.deps.log.record_outgoing(
            chat_id=recipient.chat_id,
            customer_id=recipient.customer_id,
            kind=key.name.lower(),
            telegram_message_id=message.message_id,
            text=text,
            now=self.clock.now(),
        )
        return Notification.SENT


def parse_or_400(parse: Callable[[Any], P], data: Any) -> P:
    """The typed payload, or a 400 naming every bad field."""
    try:
        return parse(data)
    except InvalidRequest as exc:
        raise ApiError(400, "invalid request", exc.fields) from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    too_large = ApiError(413, f"body larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _same_order(
    order: Order,
    customer_id: int,
    status: OrderStatus,
    placed_at: datetime,
    currency: str,
    items: list[NewOrderItem],
) -> bool:
    stored = [(i.sku, i.description, i.quantity, i.unit_price) for i in order.items]
    given = [(i.sku, i.description, i.quantity, i.unit_price) for i in items]
    return (
        order.customer_id == customer_id
        and order.status == status
        and to_iso(order.placed_at) == to_iso(placed_at)
        and order.currency == currency
        and stored == given
    )


def register_api(
    app: web.Application,
    config: Config,
    application: Application[Any, Any, Any, Any, Any, Any],
    repos: Repositories,
) -> None:
    """Mount the API under /api/v1 on the bot's web app."""
    bot_data = application.bot_data
    if not isinstance(bot_data, BotData):
        raise TypeError("the ingest API needs the Application made by build_application")
    api = IngestApi(config, application.bot, bot_data.deps, repos)
    sub = web.Application(middlewares=[json_errors])
    sub.add_routes(api.routes())
    app.add_subapp(API_PREFIX, sub)


# ---------------------------------------------------------------- OpenAPI description

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str = "Error") -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref(schema)}}}


def _body(schema: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": _ref(schema), "example": example}}}


def openapi_document(config: Config) -> dict[str, Any]:
    """OpenAPI 3.1 for the routes in :meth:`IngestApi.routes`, with this shop's limits."""
    api = config.api
    skew = api.max_clock_skew_seconds
    signed: list[dict[str, list[str]]] = [{"signature": [], "timestamp": []}]
    refused = {
        "400": _answer(
            "The body is not JSON, or fields are not valid: `fields` names every bad one, "
            'e.g. `{"items[0].quantity": "must be a non-zero whole number"}`.'
        ),
        "401": _answer(
            "Missing or wrong signature, a timestamp more than "
            f"{skew} seconds from the server's clock, or a replayed request."
        ),
        "413": _answer(f"The body is larger than {api.max_body_bytes} bytes."),
    }
    identifier = {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
            {"type": "integer"},
        ],
        "description": "The shop's own id (an integer is taken as its decimal text); "
        "no spaces at either end.",
    }
    moment = {
        "type": "string",
        "format": "date-time",
        "description": "ISO-8601 with a UTC offset; not in the future.",
    }
    status = {"type": "string", "enum": [s.value for s in OrderStatus]}
    notification = {
        "type": "string",
        "enum": [n.value for n in Notification],
        "description": "What happened about telling the customer in Telegram. Only shipped "
        "and delivered are announced, once per order and status, and only to customers with "
        "a Telegram chat who have not blocked the bot or opted out of order updates; "
        "`failed` means Telegram did not take the message (the change is stored anyway).",
    }
    notify = {
        "type": "boolean",
        "default": True,
        "description": "false stores the change without telling the customer (backfills).",
    }
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Field path (like `items[0].quantity`) to what is wrong.",
                },
            },
        },
        "CustomerIn": {
            "type": "object",
            "additionalProperties": False,
            "required": ["external_id", "first_name"],
            "description": "Omitted (or null) optional fields keep what is stored. language "
            "and timezone only apply while the customer has none (a choice made in the bot "
            "is never overwritten).",
            "properties": {
                "external_id": identifier,
                "first_name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                "last_name": {"type": ["string", "null"], "maxLength": MAX_NAME_LENGTH},
                "email": {"type": ["string", "null"], "maxLength": MAX_EMAIL_LENGTH},
                "country": {"type": ["string", "null"], "maxLength": MAX_COUNTRY_LENGTH},
                "language": {"type": ["string", "null"], "enum": [*SUPPORTED_LANGUAGES, None]},
                "timezone": {
                    "type": ["string", "null"],
                    "description": 'IANA time zone, like "Europe/London".',
                },
                "birthday": {
                    "type": ["string", "null"],
                    "format": "date",
                    "description": "For birthday reminder campaigns, like 1985-05-17.",
                },
            },
        },
        "CustomerOut": {
            "type": "object",
            "required": [
                "customer_id",
                "external_id",
                "created",
                "telegram_linked",
                "link",
                "link_expires_at",
            ],
            "properties": {
                "customer_id": {"type": "integer"},
                "external_id": {"type": "string"},
                "created": {"type": "boolean"},
                "telegram_linked": {"type": "boolean"},
                "link": {
                    "type": ["string", "null"],
                    "format": "uri",
                    "description": "A fresh single-use t.me deep link that binds the "
                    "customer's Telegram account (put it in the order confirmation).",
                },
                "link_expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "OrderItem": {
            "type": "object",
            "additionalProperties": False,
            "required": ["sku", "quantity", "unit_price"],
            "properties": {
                "sku": {**identifier, "description": f"At most {MAX_SKU_LENGTH} characters."},
                "description": {"type": "string", "maxLength": MAX_DESCRIPTION_LENGTH},
                "quantity": {
                    "type": "integer",
                    "not": {"const": 0},
                    "minimum": -MAX_QUANTITY,
                    "maximum": MAX_QUANTITY,
                    "description": "Non-zero whole number; negative for a returned line.",
                },
                "unit_price": {
                    "oneOf": [
                        {"type": "number", "minimum": 0, "maximum": MAX_UNIT_PRICE},
                        {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,6})?$"},
                    ],
                    "description": 'A number, or decimal text like "2.55".',
                },
            },
        },
        "OrderIn": {
            "type": "object",
            "additionalProperties": False,
            "required": ["external_id", "customer_external_id", "placed_at", "items"],
            "properties": {
                "external_id": identifier,
                "customer_external_id": {
                    **identifier,
                    "description": "Must be a customer already sent to POST /customers.",
                },
                "placed_at": moment,
                "status": {
                    **status,
                    "description": "Default: placed for a new order; an update without a "
                    "status keeps the current one.",
                },
                "currency": {
                    "type": "string",
                    "pattern": "^[A-Za-z]{3}$",
                    "default": config.shop.currency,
                },
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_ITEMS,
                    "items": _ref("OrderItem"),
                },
                "notify": notify,
            },
        },
        "OrderOut": {
            "type": "object",
            "properties": {
                "order_id": {"type": "integer"},
                "external_id": {"type": "string"},
                "customer_external_id": {"type": "string"},
                "status": status,
                "placed_at": {"type": "string", "format": "date-time"},
                "currency": {"type": "string"},
                "total": {"type": "number"},
                "item_count": {"type": "integer"},
                "result": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                "notification": notification,
            },
        },
        "StatusIn": {
            "type": "object",
            "additionalProperties": False,
            "required": ["status"],
            "properties": {
                "status": status,
                "at": {
                    **moment,
                    "description": "When it happened (default: now); ISO-8601 with a UTC "
                    "offset, not in the future.",
                },
                "notify": notify,
            },
        },
        "StatusOut": {
            "type": "object",
            "properties": {
                "order_id": {"type": "integer"},
                "external_id": {"type": "string"},
                "status": status,
                "at": {"type": ["string", "null"], "format": "date-time"},
                "result": {
                    "type": "string",
                    "enum": ["changed", "unchanged"],
                    "description": "unchanged: the order already had this status (no new "
                    "event, no message).",
                },
                "notification": notification,
            },
        },
    }
    paths = {
        "/customers": {
            "post": {
                "operationId": "upsertCustomer",
                "summary": "Create or update a customer by external_id",
                "security": signed,
                "requestBody": _body(
                    "CustomerIn",
                    {
                        "external_id": "12361",
                        "first_name": "Ann",
                        "last_name": "Peeters",
                        "email": "ann@example.com",
                        "country": "Belgium",
                        "language": "en",
                        "timezone": "Europe/Brussels",
                    },
                ),
                "responses": {
                    "200": _answer("Updated.", "CustomerOut"),
                    "201": _answer("Created.", "CustomerOut"),
                    **refused,
                },
            }
        },
        "/orders": {
            "post": {
                "operationId": "upsertOrder",
                "summary": "Create or replace an order with its items by external_id",
                "description": "Idempotent: the same body again changes nothing. A status "
                "change to shipped or delivered is announced like POST "
                "/orders/{external_id}/status does.",
                "security": signed,
                "requestBody": _body(
                    "OrderIn",
                    {
                        "external_id": "581587",
                        "customer_external_id": "12361",
                        "placed_at": "2026-11-21T09:15:00+00:00",
                        "status": "paid",
                        "currency": "GBP",
                        "items": [
                            {
                                "sku": "22728",
                                "description": "ALARM CLOCK BAKELIKE PINK",
                                "quantity": 4,
                                "unit_price": 3.75,
                            }
                        ],
                    },
                ),
                "responses": {
                    "200": _answer("Updated, or unchanged (see `result`).", "OrderOut"),
                    "201": _answer("Created.", "OrderOut"),
                    **refused,
                    "422": _answer(
                        "customer_external_id names no known customer (named in `fields`)."
                    ),
                },
            }
        },
        "/orders/{external_id}/status": {
            "post": {
                "operationId": "setOrderStatus",
                "summary": "Record a status change with its time",
                "description": "Shipped and delivered are announced to the customer in "
                "Telegram, at most once per order and status, even when the call is retried.",
                "security": signed,
                "parameters": [
                    {
                        "name": "external_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The order's external_id (percent-encoded).",
                    }
                ],
                "requestBody": _body(
                    "StatusIn", {"status": "shipped", "at": "2026-11-21T14:02:00+00:00"}
                ),
                "responses": {
                    "200": _answer("Changed, or unchanged (see `result`).", "StatusOut"),
                    **refused,
                    "404": _answer("No order with this external_id."),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This description (not signed)",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document.",
                        "content": {_JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{config.shop.name} carebot ingest API",
            "version": "1",
            "description": (
                "Customers, orders and order statuses from the shop's system. Every request "
                f"except this document is signed: `{TIMESTAMP_HEADER}` is the Unix time in "
                f"seconds and `{SIGNATURE_HEADER}` is `sha256=` followed by the hex "
                "HMAC-SHA256, keyed with the shared secret, of the timestamp, a dot and the "
                f"raw body. Timestamps more than {skew} s away from the server's clock are "
                "refused and every signature is accepted once: sign each attempt anew. "
                "Unknown paths answer 404 and wrong methods 405, in JSON."
            ),
        },
        "servers": [{"url": API_PREFIX}],
        "security": signed,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "signature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": "sha256=<hex HMAC-SHA256(secret, timestamp + '.' + body)>",
                },
                "timestamp": {
                    "type": "apiKey",
                    "in": "header",
                    "name": TIMESTAMP_HEADER,
                    "description": "Unix time in seconds when the request was signed.",
                },
            },
        },
    }
