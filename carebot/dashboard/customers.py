"""Customers: search by name, @username, shop id, Telegram id or email; one customer's
profile with contact, settings, segment, purchase history, tickets, surveys, reminders and
recent messages. Read-only: what a customer chose is changed by the customer in Telegram."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web
from sqlite_utils import Database

from bot.telegram_html import parse_html
from carebot.dashboard.app import Routes, dashboard_of, int_param, page_number, render_page
from storage.dashboard_customers import (
    CustomerFile,
    CustomerHit,
    MessageLine,
    customer_file,
    search_customers,
)

PAGE_SIZE = 50
ORDERS_PER_PAGE = 20
MAX_QUERY = 200


def shown_text(line: MessageLine) -> str | None:
    """What the customer saw: the bot's messages are Telegram HTML, theirs are plain text."""
    if line.text is None or line.direction != "out":
        return line.text
    return parse_html(line.text).text


async def customer_list(request: web.Request) -> web.StreamResponse:
    """Search customers; without a query, the ones who wrote most recently."""
    dashboard = dashboard_of(request)
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    page = page_number(request)

    def search(db: Database) -> list[CustomerHit]:
        return search_customers(db, query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)

    hits = await dashboard.off_loop(search)
    return render_page(
        request,
        "customers/list.html",
        query=query,
        hits=hits[:PAGE_SIZE],
        page=page,
        first=(page - 1) * PAGE_SIZE + 1,
        has_next=len(hits) > PAGE_SIZE,
        zone=ZoneInfo(dashboard.config.shop.timezone),
    )


async def customer_profile(request: web.Request) -> web.StreamResponse:
    """One customer, everything the shop knows about them."""
    dashboard = dashboard_of(request)
    customer_id = int_param(request, "customer_id")
    page = page_number(request, "orders_page")

    def load(db: Database) -> CustomerFile | None:
        return customer_file(
            db,
            customer_id,
            orders_limit=ORDERS_PER_PAGE,
            orders_offset=(page - 1) * ORDERS_PER_PAGE,
        )

    found = await dashboard.off_loop(load)
    if found is None:
        raise web.HTTPNotFound(text="No such customer.")
    pages = max(1, -(-found.order_count // ORDERS_PER_PAGE))
    return render_page(
        request,
        "customers/profile.html",
        customer=found.contact,
        stats=found.stats,
        orders=found.orders,
        order_count=found.order_count,
        orders_page=page,
        orders_pages=pages,
        tickets=found.tickets,
        surveys=found.surveys,
        reminders=found.reminders,
        messages=[(line, shown_text(line)) for line in found.messages],
        zone=ZoneInfo(dashboard.config.shop.timezone),
        currency=dashboard.config.shop.currency,
    )


def register(routes: Routes) -> None:
    routes.get("/customers", customer_list)
    routes.get("/customers/{customer_id}", customer_profile)
