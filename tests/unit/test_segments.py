"""RFM quintiles, segment rules, key customers and the Pareto check on hand-made numbers."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.segments import (
    RULES,
    PurchaseTotals,
    Segment,
    classify,
    default_as_of,
    key_customer_ids,
    quintile_scores,
    segment_customers,
    top_fifth_revenue_cents,
    top_fifth_size,
)

DAY0 = datetime(2011, 12, 1, 12, 0, tzinfo=UTC)


def totals(
    customer_id: int,
    orders: int,
    spend: float,
    days_ago: int | None,
    returns: int = 0,
) -> PurchaseTotals:
    last = DAY0 - timedelta(days=days_ago) if days_ago is not None else None
    return PurchaseTotals(customer_id, orders, returns, spend, last, last)


# --- quintiles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "scores"),
    [
        ([], []),
        ([42], [3]),  # no spread, no ranking
        ([7, 7, 7], [3, 3, 3]),
        ([1, 2], [1, 5]),
        ([2, 1], [5, 1]),
        ([1, 2, 3], [1, 3, 5]),
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),
        (list(range(10)), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
        # lowest and highest values score 1 and 5 however many share them
        ([1] * 7 + [2] * 3, [1] * 7 + [5] * 3),
        ([1] + [2] * 9, [1] + [5] * 9),
        # 6 of 10 bought once; the two with 2 orders sit at ranks 7-8 of 10 (middle 70%)
        ([1] * 6 + [2, 2, 3, 4], [1] * 6 + [4, 4, 5, 5]),
        ([-5.0, 0.0, 0.0, 10.5], [1, 3, 3, 5]),
    ],
)
def test_quintiles_by_rank_with_ties_and_tiny_populations(
    values: list[float], scores: list[int]
) -> None:
    assert quintile_scores(values) == scores


def test_quintiles_do_not_depend_on_input_order() -> None:
    rng = random.Random(3)
    values = [rng.randint(1, 30) for _ in range(500)]
    scores = dict(zip(values, quintile_scores(values), strict=True))  # equal values: one score
    shuffled = values[:]
    rng.shuffle(shuffled)
    assert [scores[v] for v in shuffled] == quintile_scores(shuffled)
    assert sorted(scores) == sorted(set(values))
    assert min(scores.values()) == 1
    assert max(scores.values()) == 5


def test_quintiles_are_fifths_for_distinct_values() -> None:
    scores = quintile_scores(list(range(1000)))
    assert [scores.count(s) for s in range(1, 6)] == [200] * 5


def test_one_time_buyers_keep_frequency_1_when_they_are_most_customers() -> None:
    orders = [1] * 650 + [2] * 200 + [3] * 100 + [5] * 50
    scores = dict(zip(orders, quintile_scores(orders), strict=True))
    assert scores == {1: 1, 2: 4, 3: 5, 5: 5}


# --- segment rules -----------------------------------------------------------------------


def test_every_score_combination_matches_exactly_one_rule() -> None:
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        matches = [segment for segment, _, rule in RULES if rule(r, f, m)]
        assert len(matches) == 1, (r, f, m, matches)
        assert classify(r, f, m) is matches[0]
    every_rfm_segment = {classify(*rfm) for rfm in itertools.product(range(1, 6), repeat=3)}
    assert every_rfm_segment == set(Segment) - {Segment.RETURNS_ONLY}


# The grid documented in bot/segments.py, for a big spender (M=5) and a small one (M=1).
GRID = """
    5  new          potential    loyal    champions  champions
    4  new          potential    loyal    champions  champions
    3  potential    potential    loyal    loyal      loyal
    2  hibernating  hibernating  at_risk  at_risk    at_risk
    1  lost         lost         at_risk  at_risk    at_risk
"""


@pytest.mark.parametrize("monetary", [5, 1])
def test_the_documented_grid(monetary: int) -> None:
    for line in GRID.strip().splitlines():
        r, *names = line.split()
        for f, name in enumerate(names, start=1):
            expected = Segment(name)
            if expected is Segment.CHAMPIONS and monetary < 4:
                expected = Segment.LOYAL
            assert classify(int(r), f, monetary) is expected, (r, f, monetary)


def test_classify_rejects_scores_outside_1_to_5() -> None:
    with pytest.raises(ValueError, match="scores must be 1-5"):
        classify(0, 3, 3)


# --- key customers and the Pareto check --------------------------------------------------


def test_key_customers_stop_at_the_one_that_reaches_80_percent() -> None:
    spends = [(1, 500.0), (2, 300.0), (3, 100.0), (4, 50.0), (5, 50.0)]
    assert key_customer_ids(spends) == {1, 2}  # 500 + 300 = exactly 80%
    assert key_customer_ids([(1, 500.0), (2, 299.99), (3, 200.01)]) == {1, 2, 3}


def test_key_customers_break_ties_by_customer_id_and_ignore_non_positive_spend() -> None:
    spends = [(9, 100.0), (3, 100.0), (5, 100.0), (1, 100.0), (7, 100.0), (8, 0.0), (2, -40.0)]
    assert key_customer_ids(spends) == {1, 3, 5, 7}  # 400 of 500
    assert key_customer_ids(reversed(spends)) == {1, 3, 5, 7}


def test_key_customers_use_exact_cents() -> None:
    # in floating point 0.02 + 0.02 < 0.8 * (0.02 + 0.02 + 0.01); in cents it is exactly 80%
    assert key_customer_ids([(1, 0.02), (2, 0.02), (3, 0.01)]) == {1, 2}


def test_key_customers_at_least_one_when_there_is_revenue() -> None:
    assert key_customer_ids([(4, 0.01)]) == {4}
    assert key_customer_ids([(4, 0.0), (5, -3.0)]) == set()
    assert key_customer_ids([]) == set()


@pytest.mark.parametrize(
    ("customers", "top"), [(0, 0), (1, 1), (2, 1), (5, 1), (6, 2), (10, 2), (11, 3)]
)
def test_top_fifth_is_at_least_one_customer(customers: int, top: int) -> None:
    assert top_fifth_size(customers) == top


def test_top_fifth_revenue() -> None:
    spend_cents = [1_000, 25_000, 4_000, 0, 10_000, -2_000, 3_000, 2_000, 5_000, 50_000]
    assert top_fifth_revenue_cents(spend_cents) == 75_000  # 500.00 + 250.00
    assert top_fifth_revenue_cents([-500]) == 0
    assert top_fifth_revenue_cents([]) == 0


# --- the whole computation ---------------------------------------------------------------


def test_segment_customers_end_to_end() -> None:
    history = [
        totals(1, orders=12, spend=900.0, days_ago=2),  # the best at everything
        totals(2, orders=8, spend=400.0, days_ago=5),
        totals(3, orders=1, spend=30.0, days_ago=1),  # bought once, yesterday
        totals(4, orders=6, spend=200.0, days_ago=300),  # was frequent, gone quiet
        totals(5, orders=1, spend=20.0, days_ago=400, returns=1),
        totals(6, orders=0, spend=-15.0, days_ago=None, returns=2),  # only returns
    ]
    result = segment_customers(history)
    assert result.as_of == date(2011, 12, 1)  # day after the latest purchase (customer 3)
    by_id = {s.customer_id: s for s in result.customers}
    assert len(by_id) == 6

    # five scored customers: days since 1, 2, 5, 301, 401; orders 1, 1, 6, 8, 12 (one tie)
    assert (by_id[3].recency, by_id[3].frequency) == (5, 1)
    assert (by_id[1].recency, by_id[1].frequency, by_id[1].monetary) == (4, 5, 5)
    assert by_id[1].segment is Segment.CHAMPIONS
    assert by_id[2].segment is Segment.LOYAL  # R3 F4
    assert by_id[3].segment is Segment.NEW
    assert by_id[4].segment is Segment.AT_RISK  # R2 F3
    assert (by_id[5].recency, by_id[5].frequency, by_id[5].monetary) == (1, 1, 1)
    assert by_id[5].segment is Segment.LOST

    only_returns = by_id[6]
    assert only_returns.segment is Segment.RETURNS_ONLY
    assert (only_returns.recency, only_returns.frequency, only_returns.monetary) == (0, 0, 0)
    assert only_returns.spend == -15.0
    assert not only_returns.key_customer

    # revenue 900+400+30+200+20 = 1550; 80% = 1240: 900, 400 reach it
    assert {s.customer_id for s in result.customers if s.key_customer} == {1, 2}
    summary = result.summary
    assert summary.customers == 5
    assert summary.returns_only == 1
    assert summary.revenue_cents == 155_000
    assert summary.key_customers == 2
    assert summary.key_revenue_share == pytest.approx(1300 / 1550)
    assert summary.top_fifth_customers == 1
    assert summary.top_fifth_revenue_share == pytest.approx(900 / 1550)
    counts = {row.segment: row.customers for row in summary.rows}
    assert counts == {
        Segment.CHAMPIONS: 1,
        Segment.LOYAL: 1,
        Segment.POTENTIAL: 0,
        Segment.NEW: 1,
        Segment.AT_RISK: 1,
        Segment.HIBERNATING: 0,
        Segment.LOST: 1,
    }
    assert summary.rows[0].segment is Segment.CHAMPIONS


def test_a_single_customer_and_nobody() -> None:
    one = segment_customers([totals(1, orders=1, spend=10.0, days_ago=0)])
    (stats,) = one.customers
    assert (stats.recency, stats.frequency, stats.monetary) == (3, 3, 3)
    assert stats.key_customer
    assert one.summary.key_revenue_share == 1.0
    assert one.summary.top_fifth_revenue_share == 1.0

    none = segment_customers([])
    assert none.as_of is None
    assert none.customers == []
    assert none.summary.customers == 0
    assert none.summary.key_revenue_share == 0.0  # no division by zero
    assert none.summary.top_fifth_revenue_share == 0.0


def test_only_returns_in_the_data() -> None:
    result = segment_customers([totals(1, orders=0, spend=-9.5, days_ago=None, returns=1)])
    assert result.as_of is None
    assert [s.segment for s in result.customers] == [Segment.RETURNS_ONLY]
    assert result.summary.customers == 0
    assert result.summary.returns_only == 1
    assert result.summary.revenue_cents == 0


def test_a_customer_whose_returns_outweigh_orders_brings_no_revenue() -> None:
    result = segment_customers(
        [totals(1, orders=2, spend=-30.0, days_ago=3, returns=3), totals(2, 1, 50.0, 3)]
    )
    by_id = {s.customer_id: s for s in result.customers}
    assert by_id[1].monetary < by_id[2].monetary
    assert not by_id[1].key_customer
    assert result.summary.revenue_cents == 5_000
    assert sum(row.revenue_cents for row in result.summary.rows) == 5_000


def test_the_reference_date_alone_moves_no_score() -> None:
    history = [totals(i, orders=i % 4 + 1, spend=10.0 * i, days_ago=i * 7) for i in range(1, 30)]
    default = segment_customers(history)
    assert default.as_of == default_as_of(history) == date(2011, 11, 25)
    later = segment_customers(history, as_of=date(2012, 12, 31))
    assert later.as_of == date(2012, 12, 31)
    assert [s.segment for s in later.customers] == [s.segment for s in default.customers]


def test_segment_labels() -> None:
    assert Segment.AT_RISK.label == "at risk"
    assert Segment.CHAMPIONS.label == "champions"
