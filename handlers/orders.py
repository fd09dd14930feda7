"""My orders: the latest orders, and one order's detail (only ever the customer's own)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from telegram import Update
from telegram.ext import Application, CommandHandler

from bot.texts import T
from handlers.buttons import CustomerButton
from handlers.common import (
    PRIVATE_MESSAGES,
    customer_of,
    deps,
    inline_keyboard,
    label,
    local_zone,
    reply,
)
from handlers.context import CareContext

ORDER = re.compile(r"^order:(\d{1,12})$")
# Items shown in one message; the rest are summarised so the message stays under 4096.
MAX_ITEMS_SHOWN = 40


async def my_orders(update: Update, context: CareContext) -> None:
    """List the customer's recent orders with a button for each."""
    d, customer = deps(context), customer_of(context)
    if not customer.is_linked:
        await reply(update, context, T.ORDERS_NOT_LINKED, contact=d.config.shop.contact)
        return
    orders = d.services.orders.recent(customer)
    if not orders:
        await reply(update, context, T.ORDERS_NONE)
        return
    zone = local_zone(context)
    orders = [replace(o, placed_at=o.placed_at.astimezone(zone)) for o in orders]
    buttons = inline_keyboard(
        [[(label(context, T.BTN_ORDER, order=o), f"order:{o.id}")] for o in orders]
    )
    await reply(update, context, T.ORDERS_LIST, markup=buttons, orders=orders)


async def order_detail(update: Update, context: CareContext) -> None:
    """Show one order's items; a forged or foreign order id gets "not found"."""
    query = update.callback_query
    assert query is not None
    match = ORDER.match(query.data or "")
    order = (
        deps(context).services.orders.detail(customer_of(context), int(match.group(1)))
        if match
        else None
    )
    if order is None:
        await query.answer(label(context, T.ORDER_NOT_FOUND), show_alert=True)
        return
    await query.answer()
    order = replace(order, placed_at=order.placed_at.astimezone(local_zone(context)))
    items = order.items[:MAX_ITEMS_SHOWN]
    await reply(
        update,
        context,
        T.ORDER_DETAIL,
        order=order,
        items=items,
        more=len(order.items) - len(items),
    )


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("orders", my_orders, filters=PRIVATE_MESSAGES))
    app.add_handler(CustomerButton(order_detail, pattern=r"^order:"))
