"""What the dashboard's campaign pages read beyond the campaign repositories: delivery totals
for the list, the choices the campaign form offers, and the names of preview customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlite_utils import Database

from bot.countries import country_code


@dataclass(frozen=True)
class DeliveryTotals:
    sent: int = 0
    failed: int = 0
    clicks: int = 0


def delivery_totals(db: Database) -> dict[int, DeliveryTotals]:
    """Per campaign: reminders sent, failed, and "Show me" clicks (one pass over the ledger)."""
    return {
        r["campaign_id"]: DeliveryTotals(r["sent"], r["failed"], r["clicks"])
        for r in db.query(
            """SELECT campaign_id, COALESCE(SUM(status = 'sent'), 0) AS sent,
                      COALESCE(SUM(status = 'failed'), 0) AS failed,
                      COALESCE(SUM(clicks), 0) AS clicks
               FROM campaign_deliveries GROUP BY campaign_id"""
        )
    }


@dataclass(frozen=True)
class FormChoices:
    """What the campaign form lists: product categories, and the countries customers are in
    (as the ISO codes the countries rule takes)."""

    categories: list[str]
    countries: list[str]


def form_choices(db: Database) -> FormChoices:
    categories = [
        r["category"]
        for r in db.query(
            "SELECT DISTINCT category FROM products WHERE category IS NOT NULL ORDER BY category"
        )
    ]
    codes = {country_code(r["country"]) for r in db.query("SELECT DISTINCT country FROM customers")}
    return FormChoices(categories, sorted(code for code in codes if code))


def customer_names(db: Database, customer_ids: Sequence[int]) -> dict[int, str]:
    """Full names of a few customers (the preview's examples)."""
    if not customer_ids:
        return {}
    marks = ", ".join("?" for _ in customer_ids)
    return {
        r["id"]: " ".join(p for p in (r["first_name"], r["last_name"]) if p)
        for r in db.query(
            f"SELECT id, first_name, last_name FROM customers WHERE id IN ({marks})",
            list(customer_ids),
        )
    }
