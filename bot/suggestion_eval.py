"""Offline evaluation of gift suggestions: replay an occasion that already happened.

Everything the suggestions use (model, histories, popularity) comes from before the window;
the window only says what customers then bought. Storage gathers both sides; this module
only counts.

Who is evaluated
    Every customer who bought a product in ``[window_start, window_end)`` and had bought a
    product before ``window_start``. Window customers without earlier purchases are counted
    as ``skipped_no_history`` (they have nothing to personalise from).

Figures, each over the evaluated customers
    hit rate           share who bought at least one of their ``n`` suggested products in
                       the window.
    category hit rate  share who bought, in the window, something in the category of at least
                       one suggestion (products without a category never match).

    The same two figures for the baseline: the ``n`` most bought products before the window,
    without those the customer already owned. Both methods leave out owned products, so a hit
    is always a product new to that customer; ``bought_new`` counts the customers who bought
    anything new to them in the window, the most any method could hit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.suggestions import CustomerHistory, ProductInfo, SuggestionModel


@dataclass(frozen=True)
class WindowPurchases:
    """What one customer bought in the evaluation window."""

    products: frozenset[int]
    categories: frozenset[str]


@dataclass(frozen=True)
class Hits:
    """How one method did: hits among ``customers`` evaluated customers."""

    customers: int
    hits: int
    category_hits: int

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.customers if self.customers else None

    @property
    def category_hit_rate(self) -> float | None:
        return self.category_hits / self.customers if self.customers else None


@dataclass(frozen=True)
class EvalResult:
    window_start: datetime
    window_end: datetime
    n: int
    evaluated: int
    skipped_no_history: int
    bought_new: int
    suggested: Hits
    popular: Hits


def evaluate_suggestions(
    model: SuggestionModel,
    histories: Mapping[int, CustomerHistory],
    purchases: Mapping[int, WindowPurchases],
    *,
    n: int,
    window_start: datetime,
    window_end: datetime,
) -> EvalResult:
    """Score the model and the popular baseline on every window customer with a history."""
    evaluated = skipped = bought_new = 0
    suggested_hits = suggested_category_hits = popular_hits = popular_category_hits = 0
    for customer_id in sorted(purchases):
        bought = purchases[customer_id]
        history = histories.get(customer_id)
        if history is None or not history.owned:
            skipped += 1
            continue
        evaluated += 1
        if not bought.products <= history.owned:
            bought_new += 1
        hit, category_hit = _score(model.suggest(history, n), bought)
        suggested_hits += hit
        suggested_category_hits += category_hit
        hit, category_hit = _score(model.popular(n, exclude=history.owned), bought)
        popular_hits += hit
        popular_category_hits += category_hit
    return EvalResult(
        window_start=window_start,
        window_end=window_end,
        n=n,
        evaluated=evaluated,
        skipped_no_history=skipped,
        bought_new=bought_new,
        suggested=Hits(evaluated, suggested_hits, suggested_category_hits),
        popular=Hits(evaluated, popular_hits, popular_category_hits),
    )


def _score(products: list[ProductInfo], bought: WindowPurchases) -> tuple[bool, bool]:
    hit = any(p.id in bought.products for p in products)
    category_hit = any(p.category in bought.categories for p in products if p.category)
    return hit, category_hit
