"""Customer segments from purchase history: RFM scores, segments, key customers, Pareto check.

Pure domain: the numbers come in as :class:`PurchaseTotals` (one per customer, aggregated by
storage) and go out as :class:`CustomerStats` plus a :class:`SegmentSummary`.

Who is scored
    Customers with at least one order. A customer who only has returns in the data (their
    purchase predates it) gets the bucket ``returns_only``, scores 0, and counts towards no
    revenue, quintile or key-customer figure.

Scores, 1 (worst) to 5 (best), by quintile over the scored customers
    R  recency: whole days from the last purchase (orders only, UTC date) to ``as_of``; fewer is
       better. ``as_of`` defaults to the day after the latest purchase in the data, so an
       historical data set segments as it would have on its last day. (Storage also leaves
       out what was placed on or after ``as_of``: moving the date alone would change no
       score, since it shifts everyone's days equally and quintiles are ranks.)
    F  frequency: number of orders.
    M  monetary: net spend in cents (order totals plus the negative totals of returns).

    Quintiles are rank based and tie-safe. Customers sharing a value form a block; a block
    scores by the middle of its ranks, ``1 + floor(5 * (below + equal / 2) / n)`` in integers,
    except that the lowest value always scores 1 and the highest 5. So:

    - equal values get equal scores, and nothing depends on input order;
    - distinct values give exact quintiles (ten customers: two per score);
    - ``F == 1`` keeps meaning "the fewest orders" when one-time buyers are half the shop or
      more (by the middle of their ranks alone they would all get F = 2, leaving ``new``
      empty), and ``R == 5`` "the latest buyers" however many bought that day;
    - no spread, no ranking: one customer, or customers all equal, score 3;
      two customers score 1 and 5; three score 1, 3 and 5.

Segments (every (R, F, M) in 1..5 lands in exactly one; checked when this module loads)

    ============  ========================================  ==============================
    segment       rule                                      meaning
    ============  ========================================  ==============================
    champions     R >= 4 and F >= 4 and M >= 4              recent, frequent, big spenders
    loyal         R >= 3 and F >= 3, not champions          buy often, still around
    new           R >= 4 and F == 1                         first purchase, recently
    potential     R >= 3 and F <= 2, not new                recent, few orders so far
    at_risk       R <= 2 and F >= 3                         used to buy often, gone quiet
    hibernating   R == 2 and F <= 2                         few orders, a while ago
    lost          R == 1 and F <= 2                         few orders, long ago
    ============  ========================================  ==============================

    As an (R, F) grid (``champions*`` is ``loyal`` when M <= 3)::

        R\\F   1            2            3        4            5
        5     new          potential    loyal    champions*   champions*
        4     new          potential    loyal    champions*   champions*
        3     potential    potential    loyal    loyal        loyal
        2     hibernating  hibernating  at_risk  at_risk      at_risk
        1     lost         lost         at_risk  at_risk      at_risk

Revenue
    A customer's revenue is their net spend when positive, else 0 (returns cannot make a
    customer bring negative revenue). Shares are of the scored customers' total revenue.

Key customers
    Scored customers with positive net spend, from the highest (ties: lower customer id
    first), until the running total first reaches 80% of revenue; that customer is included,
    so there is at least one whenever there is any revenue.

Pareto check
    Revenue share of the top 20% of scored customers by net spend, ``ceil(n / 5)`` of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction

KEY_REVENUE_SHARE = Fraction(4, 5)
SCORES = range(1, 6)


class Segment(StrEnum):
    """Stored in ``customer_stats.segment``; declaration order is the display order."""

    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL = "potential"
    NEW = "new"
    AT_RISK = "at_risk"
    HIBERNATING = "hibernating"
    LOST = "lost"
    RETURNS_ONLY = "returns_only"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


RFM_SEGMENTS = tuple(s for s in Segment if s is not Segment.RETURNS_ONLY)


def _champion(r: int, f: int, m: int) -> bool:
    return r >= 4 and f >= 4 and m >= 4


# (segment, rule as documented, predicate over (R, F, M)). The predicates are written to be
# disjoint on their own (no first-match order), so the exactly-one check below means something.
RULES: tuple[tuple[Segment, str, Callable[[int, int, int], bool]], ...] = (
    (Segment.CHAMPIONS, "R>=4, F>=4, M>=4", _champion),
    (
        Segment.LOYAL,
        "R>=3, F>=3, not champions",
        lambda r, f, m: r >= 3 and f >= 3 and not _champion(r, f, m),
    ),
    (Segment.NEW, "R>=4, F=1", lambda r, f, m: r >= 4 and f == 1),
    (
        Segment.POTENTIAL,
        "R>=3, F<=2, not new",
        lambda r, f, m: r >= 3 and f <= 2 and not (r >= 4 and f == 1),
    ),
    (Segment.AT_RISK, "R<=2, F>=3", lambda r, f, m: r <= 2 and f >= 3),
    (Segment.HIBERNATING, "R=2, F<=2", lambda r, f, m: r == 2 and f <= 2),
    (Segment.LOST, "R=1, F<=2", lambda r, f, m: r == 1 and f <= 2),
)


def _rule_grid() -> dict[tuple[int, int, int], Segment]:
    grid: dict[tuple[int, int, int], Segment] = {}
    for r, f, m in itertools.product(SCORES, SCORES, SCORES):
        matches = [segment for segment, _, rule in RULES if rule(r, f, m)]
        if len(matches) != 1:
            raise AssertionError(f"R{r} F{f} M{m} matches {matches or 'no segment'}")
        grid[r, f, m] = matches[0]
    return grid


_GRID = _rule_grid()


def classify(recency: int, frequency: int, monetary: int) -> Segment:
    """The segment for scores 1-5 (a lookup in the table checked at import)."""
    try:
        return _GRID[recency, frequency, monetary]
    except KeyError:
        raise ValueError(f"scores must be 1-5, got R{recency} F{frequency} M{monetary}") from None


def quintile_scores(values: Sequence[float]) -> list[int]:
    """Scores 1-5 for ``values`` (higher value, higher score), in input order. O(n log n)."""
    n = len(values)
    blocks = [(value, sum(1 for _ in block)) for value, block in itertools.groupby(sorted(values))]
    score_of: dict[float, int] = {}
    below = 0
    for i, (value, equal) in enumerate(blocks):
        if len(blocks) == 1:
            score_of[value] = 3
        elif i == 0:
            score_of[value] = 1
        elif i == len(blocks) - 1:
            score_of[value] = 5
        else:  # below + equal/2 < n, so this stays within 1-5
            score_of[value] = 1 + (5 * (2 * below + equal)) // (2 * n)
        below += equal
    return [score_of[v] for v in values]


def cents(amount: float) -> int:
    """Money in whole cents, so sums and comparisons are exact."""
    return round(amount * 100)


def key_customer_ids(spends: Iterable[tuple[int, float]]) -> set[int]:
    """Top customers by net spend that first reach 80% of revenue, from (customer id, spend)."""
    return _key_customers((customer_id, cents(spend)) for customer_id, spend in spends)


def _key_customers(spend_cents: Iterable[tuple[int, int]]) -> set[int]:
    # (-cents, id) sorts by spend descending, then lower id first, without a key function
    ranked = sorted((-c, customer_id) for customer_id, c in spend_cents if c > 0)
    total = -sum(negative for negative, _ in ranked)
    keys: set[int] = set()
    running = 0
    for negative, customer_id in ranked:
        keys.add(customer_id)
        running -= negative
        if running * KEY_REVENUE_SHARE.denominator >= total * KEY_REVENUE_SHARE.numerator:
            break
    return keys


def top_fifth_size(customers: int) -> int:
    """How many customers make the top 20%: ceil(n / 5), so at least one when n >= 1."""
    return (customers + 4) // 5


def top_fifth_revenue_cents(spend_cents: Iterable[int]) -> int:
    """Revenue (cents) of the top 20% of customers by net spend (given in cents)."""
    ordered = sorted(spend_cents, reverse=True)
    return sum(max(c, 0) for c in ordered[: top_fifth_size(len(ordered))])


@dataclass(frozen=True)
class PurchaseTotals:
    """One customer's history as aggregated from their orders and returns."""

    customer_id: int
    orders: int
    returns: int
    spend: float
    first_purchase: datetime | None  # orders only
    last_purchase: datetime | None


@dataclass(frozen=True)
class CustomerStats:
    customer_id: int
    orders: int
    returns: int
    spend: float
    first_purchase: datetime | None
    last_purchase: datetime | None
    recency: int  # scores 1-5; 0 for returns_only
    frequency: int
    monetary: int
    segment: Segment
    key_customer: bool

    @property
    def scored(self) -> bool:
        return self.segment is not Segment.RETURNS_ONLY


@dataclass(frozen=True)
class SegmentRow:
    segment: Segment
    customers: int
    revenue_cents: int


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class SegmentSummary:
    """Counts and revenue per segment, key customers and the Pareto check."""

    rows: tuple[SegmentRow, ...]  # every RFM segment, in display order, empty ones included
    customers: int  # scored: at least one order
    returns_only: int
    revenue_cents: int
    key_customers: int
    key_revenue_cents: int
    top_fifth_customers: int
    top_fifth_revenue_cents: int
    as_of: date | None = None  # known right after a computation, not stored
    computed_at: datetime | None = None

    def customer_share(self, row: SegmentRow) -> float:
        return _share(row.customers, self.customers)

    def revenue_share(self, row: SegmentRow) -> float:
        return _share(row.revenue_cents, self.revenue_cents)

    @property
    def key_customer_share(self) -> float:
        return _share(self.key_customers, self.customers)

    @property
    def key_revenue_share(self) -> float:
        return _share(self.key_revenue_cents, self.revenue_cents)

    @property
    def top_fifth_revenue_share(self) -> float:
        return _share(self.top_fifth_revenue_cents, self.revenue_cents)


def summary_from_rows(
    rows: Iterable[SegmentRow],
    *,
    returns_only: int,
    key_customers: int,
    key_revenue_cents: int,
    top_fifth_revenue_cents: int,
) -> SegmentSummary:
    """Assemble a summary from per-segment totals (used both after computing and on reads)."""
    by_segment = {row.segment: row for row in rows}
    full = tuple(by_segment.get(s, SegmentRow(s, 0, 0)) for s in RFM_SEGMENTS)
    customers = sum(row.customers for row in full)
    return SegmentSummary(
        rows=full,
        customers=customers,
        returns_only=returns_only,
        revenue_cents=sum(row.revenue_cents for row in full),
        key_customers=key_customers,
        key_revenue_cents=key_revenue_cents,
        top_fifth_customers=top_fifth_size(customers),
        top_fifth_revenue_cents=top_fifth_revenue_cents,
    )


def summarize(stats: Sequence[CustomerStats], as_of: date | None = None) -> SegmentSummary:
    counts: dict[Segment, int] = dict.fromkeys(RFM_SEGMENTS, 0)
    revenue: dict[Segment, int] = dict.fromkeys(RFM_SEGMENTS, 0)
    spend_cents: list[int] = []
    returns_only = key_customers = key_revenue = 0
    for s in stats:
        if not s.scored:
            returns_only += 1
            continue
        c = cents(s.spend)
        spend_cents.append(c)
        counts[s.segment] += 1
        revenue[s.segment] += max(c, 0)
        if s.key_customer:
            key_customers += 1
            key_revenue += max(c, 0)
    summary = summary_from_rows(
        (SegmentRow(seg, counts[seg], revenue[seg]) for seg in RFM_SEGMENTS),
        returns_only=returns_only,
        key_customers=key_customers,
        key_revenue_cents=key_revenue,
        top_fifth_revenue_cents=top_fifth_revenue_cents(spend_cents),
    )
    return replace(summary, as_of=as_of)


def default_as_of(totals: Iterable[PurchaseTotals]) -> date | None:
    """The day after the latest purchase (orders only); None when nobody has ordered."""
    latest = max((t.last_purchase for t in totals if t.last_purchase and t.orders), default=None)
    return latest.date() + timedelta(days=1) if latest else None


@dataclass(frozen=True)
class Segmentation:
    as_of: date | None
    customers: list[CustomerStats]
    summary: SegmentSummary


def segment_customers(totals: Sequence[PurchaseTotals], as_of: date | None = None) -> Segmentation:
    """Score and segment every customer, flag key customers, and summarize. O(n log n)."""
    reference = as_of or default_as_of(totals)
    scored = [t for t in totals if t.orders > 0]
    recency_days: list[float] = []
    for t in scored:
        assert t.last_purchase is not None  # every order has a date
        assert reference is not None
        recency_days.append(-(reference - t.last_purchase.date()).days)  # fewer days is better
    r_scores = quintile_scores(recency_days)
    f_scores = quintile_scores([t.orders for t in scored])
    spend_cents = [cents(t.spend) for t in scored]
    m_scores = quintile_scores(spend_cents)
    keys = _key_customers(zip((t.customer_id for t in scored), spend_cents, strict=True))
    result: list[CustomerStats] = []
    for t, r, f, m in zip(scored, r_scores, f_scores, m_scores, strict=True):
        result.append(_stats(t, r, f, m, classify(r, f, m), t.customer_id in keys))
    result += [_stats(t, 0, 0, 0, Segment.RETURNS_ONLY, False) for t in totals if t.orders <= 0]
    return Segmentation(reference, result, summarize(result, reference))


def _stats(t: PurchaseTotals, r: int, f: int, m: int, segment: Segment, key: bool) -> CustomerStats:
    return CustomerStats(
        customer_id=t.customer_id,
        orders=t.orders,
        returns=t.returns,
        spend=round(t.spend, 2),
        first_purchase=t.first_purchase,
        last_purchase=t.last_purchase,
        recency=r,
        frequency=f,
        monetary=m,
        segment=segment,
        key_customer=key,
    )
