"""Gift suggestions from purchase history: "customers who bought X also bought Y".

Pure domain: storage hands in baskets and purchase lines, this module builds the model once
and answers ``suggest`` for each recipient of a reminder campaign.

The model (:meth:`SuggestionModel.build`)
    A basket is the set of products one customer ever bought (orders only, product lines
    only; storage decides what counts). For products X and Y:

    - ``buyers(X)``: how many customers bought X (its popularity);
    - ``co(X, Y)``: how many customers bought both;
    - similarity ``co(X, Y) / sqrt(buyers(X) * buyers(Y))`` (cosine of the two buyer sets),
      kept only when ``co(X, Y) >= min_co_count`` (a pair bought together once is noise).

    Each product keeps its ``neighbours`` (default 20) most similar candidates, best first
    (ties: lower product id). Every product in the baskets can be evidence, but only the
    products handed in as ``products`` (the active catalogue) are ever suggested.

Scoring one recipient (:meth:`SuggestionModel.suggest`)
    Evidence is the ``MAX_EVIDENCE`` (20) most recently bought distinct products (``recent``;
    a history without it uses the lowest ``owned`` ids). A candidate's score is the sum of its
    similarities to them, then multiplied by two factors:

    occasion  ``1 + OCCASION_BOOST * count(category) / count(all)``, where the counts are the
              recipient's purchases in this occasion's earlier windows. Someone whose earlier
              Mother's Day purchases were all cards sees card scores doubled; half cards,
              half jewellery: both x1.5. No occasion history: x1.
    price     1 inside ``[typical / PRICE_TOLERANCE, typical * PRICE_TOLERANCE]`` (typical is
              the median unit price they paid), and outside it the ratio to the nearest bound:
              with a typical price of 5 and tolerance 3, a 30.00 product scores x0.5 (15/30)
              and a 0.50 product x0.3 (0.50/1.67). Unknown typical or product price: x1.

    Owned products, ``exclude`` and products outside the catalogue never appear. Ties in score
    go to the lower product id, so the same history always gives the same list.

Filling up
    With fewer than ``n`` scored candidates (a thin or unusual history), the rest comes from
    popularity: first the most bought products of the recipient's occasion categories (the
    category with more occasion purchases first; equal counts by name), then the most bought
    products overall. Popularity order is buyers descending, then product id.

More suggestions
    ``suggest(history, n, exclude=already_shown)`` gives the next page: the same ranking
    without what was shown, provided the history is the same (occasion windows included).

Speed
    The build keeps baskets and buyers in flat arrays of ints (about 12 bytes per
    purchased product; a million customers' baskets stay in tens of megabytes), counts
    co-purchases one product at a time (memory stays at one product's counts), and keeps
    neighbour lists as flat arrays. ``suggest`` adds up at most 20 x 20 similarities and
    adjusts candidates from the best raw score down, stopping as soon as no factor could
    lift the next one into the top ``n``.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import statistics
from array import array
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from math import sqrt
from typing import NamedTuple

DEFAULT_NEIGHBOURS = 20
DEFAULT_MIN_CO_COUNT = 2
MAX_EVIDENCE = 20
OCCASION_BOOST = 1.0
PRICE_TOLERANCE = 3.0


@dataclass(frozen=True)
class ProductInfo:
    id: int
    sku: str
    name: str
    category: str | None
    price: float | None


@dataclass(frozen=True)
class CustomerHistory:
    """What the scoring needs to know about one recipient."""

    owned: frozenset[int]
    recent: tuple[int, ...] = ()  # distinct owned products, most recently bought first
    occasion_categories: Mapping[str, int] = field(default_factory=dict)
    typical_price: float | None = None


class PurchaseLine(NamedTuple):
    """One purchased line (a tuple: planning reads about ten per recipient, a million for a
    big campaign, and a tuple is made several times faster than a frozen dataclass)."""

    customer_id: int
    product_id: int
    placed_at: datetime
    category: str | None
    unit_price: float
    quantity: int = 1


def history_from_lines(
    lines: Iterable[PurchaseLine], occasion_windows: Sequence[tuple[datetime, datetime]]
) -> CustomerHistory:
    """One customer's history from their purchase lines.

    ``recent`` orders products by their latest purchase, newest first (same moment: lower id
    first); ``occasion_categories`` counts the lines placed in any ``[start, end)`` window;
    ``typical_price`` is the median of the positive unit prices (None without any).
    """
    latest: dict[int, datetime] = {}
    occasion: Counter[str] = Counter()
    prices: list[float] = []
    customer: int | None = None
    for line in lines:
        if customer is None:
            customer = line.customer_id
        elif line.customer_id != customer:
            raise ValueError(f"lines of customers {customer} and {line.customer_id} mixed")
        placed_at, product_id = line.placed_at, line.product_id
        seen = latest.get(product_id)
        if seen is None or placed_at > seen:
            latest[product_id] = placed_at
        if line.category is not None:
            for start, end in occasion_windows:
                if start <= placed_at < end:
                    occasion[line.category] += 1
                    break
        if line.unit_price > 0:
            prices.append(line.unit_price)
    # Newest first; at the same moment the lower id first (reverse=True keeps a sort stable,
    # so the ascending ids of the first sort survive among equal moments).
    recent = sorted(latest)
    recent.sort(key=latest.__getitem__, reverse=True)
    return CustomerHistory(
        owned=frozenset(latest),
        recent=tuple(recent),
        occasion_categories=dict(occasion),
        typical_price=statistics.median(prices) if prices else None,
    )


_NO_NEIGHBOURS: tuple[array[int], array[float]] = (array("q"), array("d"))
_SCORE = operator.itemgetter(1)


class SuggestionModel:
    """Precomputed neighbour lists and popularity orders; build once, suggest many times."""

    def __init__(
        self,
        products: Mapping[int, ProductInfo],
        neighbours: dict[int, tuple[array[int], array[float]]],
        buyers: Mapping[int, int],
    ) -> None:
        self._products = dict(products)
        # Flat lookups for the scoring loop (an attribute read per candidate adds up).
        self._categories = {p: info.category for p, info in self._products.items()}
        self._prices = {p: info.price for p, info in self._products.items()}
        self._neighbours = neighbours
        self._buyers = dict(buyers)
        ranked = sorted(
            (p for p in self._products if self._buyers.get(p, 0) > 0),
            key=lambda p: (-self._buyers[p], p),
        )
        self._popular: tuple[int, ...] = tuple(ranked)
        by_category: defaultdict[str, list[int]] = defaultdict(list)
        for product_id in ranked:
            category = self._products[product_id].category
            if category is not None:
                by_category[category].append(product_id)
        self._popular_in: dict[str, tuple[int, ...]] = {
            category: tuple(ids) for category, ids in by_category.items()
        }

    @classmethod
    def build(
        cls,
        baskets: Iterable[tuple[int, Iterable[int]]],
        products: Mapping[int, ProductInfo],
        *,
        neighbours: int = DEFAULT_NEIGHBOURS,
        min_co_count: int = DEFAULT_MIN_CO_COUNT,
    ) -> SuggestionModel:
        """The model from (customer id, product ids) baskets in any order; a customer may
        come repeatedly. ``products`` are the candidates (the active catalogue); baskets may
        name others."""
        by_customer: defaultdict[int, set[int]] = defaultdict(set)
        for customer_id, product_ids in baskets:
            by_customer[customer_id].update(product_ids)
        return cls.build_grouped(
            sorted(by_customer.items()),
            products,
            neighbours=neighbours,
            min_co_count=min_co_count,
        )

    @classmethod
    def build_grouped(
        cls,
        baskets: Iterable[tuple[int, Iterable[int]]],
        products: Mapping[int, ProductInfo],
        *,
        neighbours: int = DEFAULT_NEIGHBOURS,
        min_co_count: int = DEFAULT_MIN_CO_COUNT,
    ) -> SuggestionModel:
        """Like :meth:`build`, for baskets that come once per customer, customer ids
        ascending (as storage reads them): streamed into flat arrays, so a million customers
        take tens of megabytes, not the gigabyte that sets and tuples of ints would."""
        items = array("i")  # every basket's distinct products, one basket after another
        ends = array("q")  # where each basket ends in ``items``
        bought_by: defaultdict[int, array[int]] = defaultdict(lambda: array("i"))
        previous: int | None = None
        for customer_id, product_ids in baskets:
            if previous is not None and customer_id <= previous:
                raise ValueError(f"customer {customer_id} after {previous}: not grouped")
            previous = customer_id
            basket = dict.fromkeys(product_ids)
            if not basket:
                continue
            index = len(ends)
            items.extend(basket)
            ends.append(len(items))
            for product_id in basket:
                bought_by[product_id].append(index)
        buyers = {product_id: len(indexes) for product_id, indexes in bought_by.items()}

        def basket_of(index: int) -> array[int]:
            return items[ends[index - 1] if index else 0 : ends[index]]

        # Two flat arrays per product rather than tuples of (id, similarity) objects: a tenth
        # of the memory, and the scoring loop reads them about three times faster (objects
        # made during the build end up scattered over the heap).
        lists: dict[int, tuple[array[int], array[float]]] = {}
        minimum = max(min_co_count, 1)
        for product_id, indexes in bought_by.items():
            if len(indexes) < minimum:
                continue  # no pair can reach the minimum co-count
            # One C-level count over the baskets of its buyers; transient, one product at a time.
            co = Counter(itertools.chain.from_iterable(map(basket_of, indexes)))
            own = buyers[product_id]
            scored = [
                (count / sqrt(own * buyers[other]), -other)
                for other, count in co.items()
                if count >= minimum and other != product_id and other in products
            ]
            if scored:
                best = heapq.nlargest(neighbours, scored)
                lists[product_id] = (
                    array("q", [-negated for _, negated in best]),
                    array("d", [similarity for similarity, _ in best]),
                )
        return cls(products, lists, buyers)

    def neighbours_of(self, product_id: int) -> list[tuple[int, float]]:
        """(product id, similarity) of its nearest candidates, most similar first."""
        ids, similarities = self._neighbours.get(product_id, _NO_NEIGHBOURS)
        return list(zip(ids, similarities, strict=True))

    def buyers(self, product_id: int) -> int:
        return self._buyers.get(product_id, 0)

    def product(self, product_id: int) -> ProductInfo | None:
        return self._products.get(product_id)

    def popular(self, n: int, *, exclude: Collection[int] = ()) -> list[ProductInfo]:
        """The ``n`` most bought catalogue products, without ``exclude``."""
        chosen = self._take(self._popular, n, exclude)
        return [self._products[p] for p in chosen]

    def suggest(
        self, history: CustomerHistory, n: int = 3, *, exclude: Collection[int] = ()
    ) -> list[ProductInfo]:
        """Up to ``n`` products for this recipient, best first (see the module docstring)."""
        if n <= 0:
            return []
        skip = history.owned.union(exclude) if exclude else history.owned
        chosen = self._ranked(history, n, skip)
        if len(chosen) < n:
            taken = skip.union(chosen)
            occasion = history.occasion_categories
            for category in sorted(occasion, key=lambda c: (-occasion[c], c)):
                extra = self._take(self._popular_in.get(category, ()), n - len(chosen), taken)
                chosen.extend(extra)
                taken = taken.union(extra)
                if len(chosen) == n:
                    break
            chosen.extend(self._take(self._popular, n - len(chosen), taken))
        return [self._products[p] for p in chosen]

    def _ranked(self, history: CustomerHistory, n: int, skip: Collection[int]) -> list[int]:
        """The top ``n`` candidates by adjusted score, ties to the lower product id."""
        evidence = history.recent or tuple(sorted(history.owned))
        neighbours = self._neighbours.get
        scores: dict[int, float] = {}
        get = scores.get
        for source in evidence[:MAX_EVIDENCE]:
            ids, similarities = neighbours(source, _NO_NEIGHBOURS)
            for product_id, similarity in zip(ids, similarities, strict=True):
                scores[product_id] = get(product_id, 0.0) + similarity
        if len(skip) < len(scores):
            for product_id in skip:
                scores.pop(product_id, None)
        else:
            scores = {p: s for p, s in scores.items() if p not in skip}
        if not scores:
            return []

        occasion = history.occasion_categories
        total = sum(occasion.values())
        boost: dict[str | None, float] = {
            c: 1.0 + OCCASION_BOOST * k / total for c, k in occasion.items() if k > 0
        }
        typical = history.typical_price
        low = high = 0.0
        if typical is not None and typical > 0:
            low, high = typical / PRICE_TOLERANCE, typical * PRICE_TOLERANCE
        ceiling = max(boost.values(), default=1.0)  # no factor can lift a score higher
        categories, prices = self._categories, self._prices

        # Walk the raw scores from the top, adjusting each; stop once even the largest factor
        # cannot lift the next raw score to the n-th best adjusted one (strictly: no tie).
        kept: list[tuple[float, int]] = []
        nth_best: list[float] = []  # min-heap of the n best adjusted scores so far
        for product_id, score in sorted(scores.items(), key=_SCORE, reverse=True):
            if len(nth_best) == n and score * ceiling < nth_best[0]:
                break
            if boost:
                score *= boost.get(categories[product_id], 1.0)
            if high:
                price = prices[product_id]
                if price is not None and price > high:
                    score *= high / price
                elif price is not None and 0 < price < low:
                    score *= price / low
            kept.append((-score, product_id))
            if len(nth_best) < n:
                heapq.heappush(nth_best, score)
            elif score > nth_best[0]:
                heapq.heapreplace(nth_best, score)
        kept.sort()
        return [product_id for _, product_id in kept[:n]]

    @staticmethod
    def _take(ranked: Iterable[int], n: int, skip: Collection[int]) -> list[int]:
        if n <= 0:
            return []
        taken: list[int] = []
        for product_id in ranked:
            if product_id not in skip:
                taken.append(product_id)
                if len(taken) == n:
                    break
        return taken
