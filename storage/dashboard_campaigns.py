"""What the dashboard's campaign form offers beyond the campaign repositories: the shop's
product categories and its customers' countries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

from bot.countries import country_code


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
