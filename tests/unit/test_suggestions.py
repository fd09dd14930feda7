"""Gift suggestions on small hand-made purchase histories."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from math import sqrt

import pytest

from bot.suggestion_eval import EvalResult, Hits, WindowPurchases, evaluate_suggestions
from bot.suggestions import (
    CustomerHistory,
    ProductInfo,
    PurchaseLine,
    SuggestionModel,
    history_from_lines,
)
from carebot.suggestion_views import format_eval

MUG, TEAPOT, CARD, WRAP, LANTERN, NECKLACE, CANDLE, RETIRED, SCARF = 1, 2, 3, 4, 5, 6, 7, 8, 9


def product(
    product_id: int, name: str, category: str | None = None, price: float | None = None
) -> ProductInfo:
    return ProductInfo(product_id, f"SKU{product_id}", name, category, price)


# RETIRED is bought in the baskets but is not in the catalogue (inactive).
CATALOGUE = {
    p.id: p
    for p in (
        product(MUG, "Mug", "kitchen", 5.0),
        product(TEAPOT, "Teapot", "kitchen", 6.0),
        product(CARD, "Card", "cards", 2.0),
        product(WRAP, "Wrap", "cards", 1.5),
        product(LANTERN, "Lantern", "home", 8.0),
        product(NECKLACE, "Necklace", "jewellery", 60.0),
        product(CANDLE, "Candle", "home", 4.0),
        product(SCARF, "Scarf"),
    )
}
SHOP = [
    (101, [MUG, TEAPOT, CARD]),
    (102, [MUG, TEAPOT]),
    (103, [MUG, TEAPOT, LANTERN]),
    (104, [CARD, WRAP]),
    (105, [CARD, WRAP, LANTERN]),
    (106, [LANTERN, CANDLE]),
    (107, [LANTERN, CANDLE]),
]


def build(
    baskets: Iterable[tuple[int, Iterable[int]]] = SHOP,
    products: Mapping[int, ProductInfo] = CATALOGUE,
    **options: int,
) -> SuggestionModel:
    return SuggestionModel.build(baskets, products, **options)


def history(
    *recent: int,
    occasion: Mapping[str, int] | None = None,
    typical_price: float | None = None,
) -> CustomerHistory:
    return CustomerHistory(frozenset(recent), tuple(recent), occasion or {}, typical_price)


def ids(products: Iterable[ProductInfo]) -> list[int]:
    return [p.id for p in products]


def test_neighbours_are_products_bought_by_the_same_customers() -> None:
    model = build()
    # mug and teapot: 3 buyers each, all 3 bought both
    assert model.neighbours_of(MUG) == [(TEAPOT, 1.0)]
    # card (3 buyers) and wrap (2 buyers), bought together twice
    assert model.neighbours_of(CARD) == [(WRAP, 2 / sqrt(3 * 2))]
    assert model.neighbours_of(LANTERN) == [(CANDLE, 2 / sqrt(4 * 2))]
    # mug and card were bought together once only: noise, below the minimum co-count
    assert model.neighbours_of(SCARF) == []
    assert model.buyers(LANTERN) == 4


def test_a_minimum_co_count_of_one_keeps_single_coincidences() -> None:
    neighbours = dict(build(min_co_count=1).neighbours_of(MUG))
    assert set(neighbours) == {TEAPOT, CARD, LANTERN}
    assert neighbours[TEAPOT] > neighbours[CARD]


def test_only_the_closest_neighbours_are_kept() -> None:
    assert build(neighbours=1).neighbours_of(MUG) == [(TEAPOT, 1.0)]
    assert len(build(neighbours=1, min_co_count=1).neighbours_of(MUG)) == 1


def test_suggestions_follow_what_goes_with_the_customers_products_and_skip_owned() -> None:
    suggested = ids(build().suggest(history(MUG, CARD), 3))
    # teapot (similarity 1.0) before wrap (0.82); then the most bought product not owned
    assert suggested == [TEAPOT, WRAP, LANTERN]


def test_similarities_add_up_over_the_customers_products() -> None:
    baskets = [
        (1, [MUG, CARD, LANTERN]),
        (2, [MUG, CARD, LANTERN]),
        (3, [TEAPOT, CARD]),
        (4, [TEAPOT, CARD]),
        (5, [TEAPOT, CARD]),
    ]
    model = build(baskets)
    # the mug alone points to the lantern first (similarity 1.0, card 0.63) ...
    assert ids(model.suggest(history(MUG), 2)) == [LANTERN, CARD]
    # ... but with the teapot as well, card's two similarities add up (0.63 + 0.77)
    assert ids(model.suggest(history(TEAPOT, MUG), 2)) == [CARD, LANTERN]


def test_inactive_products_are_never_suggested_but_still_count_as_evidence() -> None:
    baskets = [(n, [RETIRED, NECKLACE, CANDLE]) for n in range(5)] + [(9, [RETIRED])]
    model = build(baskets)
    # the retired product has the most buyers
    assert ids(model.popular(3)) == [NECKLACE, CANDLE]
    assert ids(model.suggest(history(CANDLE), 3)) == [NECKLACE]
    # owning the retired product still points to what was bought with it
    assert ids(model.suggest(history(RETIRED), 2)) == [NECKLACE, CANDLE]


def test_categories_bought_for_this_occasion_before_come_first() -> None:
    baskets = [(n, [SCARF, CARD, MUG]) for n in range(3)]
    model = build(baskets)
    # card and mug are equally close to the scarf: the lower id wins the tie
    assert ids(model.suggest(history(SCARF), 2)) == [MUG, CARD]
    assert ids(model.suggest(history(SCARF, occasion={"cards": 1}), 2)) == [CARD, MUG]
    # more of their earlier occasion purchases were cards than kitchen things
    assert ids(model.suggest(history(SCARF, occasion={"kitchen": 1, "cards": 3}), 2)) == [
        CARD,
        MUG,
    ]
    assert ids(model.suggest(history(SCARF, occasion={"kitchen": 3, "cards": 1}), 2)) == [
        MUG,
        CARD,
    ]


def test_products_far_from_the_usual_price_are_pushed_down_not_removed() -> None:
    baskets = [(n, [SCARF, MUG, NECKLACE]) for n in range(3)]
    model = build(baskets)
    assert ids(model.suggest(history(SCARF), 2)) == [MUG, NECKLACE]
    # someone who usually pays around 50 sees the necklace (60) before the mug (5)
    assert ids(model.suggest(history(SCARF, typical_price=50.0), 2)) == [NECKLACE, MUG]
    # and someone around 5 still gets the necklace when nothing else is left
    assert ids(model.suggest(history(SCARF, MUG, typical_price=5.0), 1)) == [NECKLACE]


def test_a_much_closer_product_still_wins_over_a_cheaper_one() -> None:
    baskets = [(n, [SCARF, LANTERN]) for n in range(4)] + [
        (10, [SCARF, WRAP]),
        (11, [SCARF, WRAP]),
        (12, [WRAP]),
        (13, [WRAP]),
    ]
    model = build(baskets)
    # the lantern (8) is 4 times the usual 2: x0.75, yet far more often bought with the scarf
    assert ids(model.suggest(history(SCARF, typical_price=2.0), 2)) == [LANTERN, WRAP]


def test_thin_histories_are_filled_with_popular_products_occasion_categories_first() -> None:
    model = build()
    # the scarf goes with nothing; lantern (4 buyers) is the most bought product
    assert ids(model.suggest(history(SCARF), 3)) == [LANTERN, MUG, TEAPOT]
    assert ids(model.suggest(history(SCARF, occasion={"cards": 1}), 3)) == [CARD, WRAP, LANTERN]
    # never what they own, never twice
    assert ids(model.suggest(history(SCARF, CARD, occasion={"cards": 1}), 3)) == [
        WRAP,
        LANTERN,
        MUG,
    ]


def test_no_history_at_all_gets_the_most_popular() -> None:
    model = build()
    assert ids(model.suggest(history(), 3)) == ids(model.popular(3)) == [LANTERN, MUG, TEAPOT]


def test_popular_orders_by_buyers_then_id_and_skips_excluded() -> None:
    model = build()
    assert ids(model.popular(10)) == [LANTERN, MUG, TEAPOT, CARD, WRAP, CANDLE]
    assert ids(model.popular(2, exclude={LANTERN, TEAPOT})) == [MUG, CARD]
    assert model.popular(0) == []


def test_more_suggestions_continue_where_the_first_page_stopped() -> None:
    model = build(min_co_count=1)
    customer = history(CARD, occasion={"home": 1})
    first = ids(model.suggest(customer, 3))
    # lantern (home, boosted for the occasion) overtakes mug and teapot
    assert first == [WRAP, LANTERN, MUG]
    second = ids(model.suggest(customer, 3, exclude=first))
    # teapot was the last neighbour; candle is filled in from popular home products
    assert second == [TEAPOT, CANDLE]
    assert first + second == ids(model.suggest(customer, 6))
    # nothing else has ever been bought
    assert model.suggest(customer, 3, exclude=first + second) == []


def test_the_same_history_always_gets_the_same_suggestions() -> None:
    shuffled = [(customer, list(items)) for customer, items in SHOP]
    rng = random.Random(3)
    rng.shuffle(shuffled)
    for _, items in shuffled:
        rng.shuffle(items)
    # a customer may also arrive in several pieces
    pieces = [(customer, [item]) for customer, items in shuffled for item in items]
    models = [build(), build(shuffled), build(pieces)]
    customers = [history(MUG), history(CARD, LANTERN), history(SCARF), history(WRAP, MUG)]
    for customer in customers:
        results = {tuple(ids(m.suggest(customer, 4))) for m in models}
        assert len(results) == 1


def test_a_history_is_built_from_one_customers_lines() -> None:
    start, end = datetime(2009, 11, 20, tzinfo=UTC), datetime(2009, 12, 25, tzinfo=UTC)
    day = datetime(2010, 12, 1, 10, 0, tzinfo=UTC)
    lines = [
        PurchaseLine(7, MUG, start - timedelta(seconds=1), "kitchen", 5.0),  # just before
        PurchaseLine(7, CARD, start, "cards", 2.0),  # last Christmas
        PurchaseLine(7, WRAP, end - timedelta(seconds=1), "cards", 1.0),  # last Christmas
        PurchaseLine(7, CANDLE, end, "home", 3.0),  # just after
        PurchaseLine(7, MUG, day - timedelta(days=10), "kitchen", 4.0),
        PurchaseLine(7, SCARF, day - timedelta(days=10), None, 0.0),
        PurchaseLine(7, TEAPOT, day - timedelta(days=30), "kitchen", 6.0),
    ]
    built = history_from_lines(lines, [(start, end)])
    assert built.owned == {MUG, CARD, WRAP, CANDLE, SCARF, TEAPOT}
    # latest purchase first; mug and scarf bought at the same time: lower id first
    assert built.recent == (MUG, SCARF, TEAPOT, CANDLE, WRAP, CARD)
    assert built.occasion_categories == {"cards": 2}
    # median of the positive prices 5, 2, 1, 3, 4, 6
    assert built.typical_price == 3.5
    assert history_from_lines([], [(start, end)]) == CustomerHistory(frozenset(), (), {}, None)


def test_lines_of_two_customers_are_refused() -> None:
    day = datetime(2010, 12, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="mixed"):
        history_from_lines(
            [PurchaseLine(1, MUG, day, None, 1.0), PurchaseLine(2, MUG, day, None, 1.0)], []
        )


def test_the_evaluation_counts_hits_for_both_methods() -> None:
    model = build()
    start, end = datetime(2011, 1, 1, tzinfo=UTC), datetime(2011, 1, 22, tzinfo=UTC)
    histories = {1: history(MUG), 2: history(SCARF), 3: history(CARD)}
    purchases = {
        # suggested teapot, lantern, card; popular lantern, teapot, card: both hit
        1: WindowPurchases(frozenset({TEAPOT}), frozenset({"kitchen"})),
        # suggested = popular = lantern, mug, teapot: neither hits the necklace or its category
        2: WindowPurchases(frozenset({NECKLACE}), frozenset({"jewellery"})),
        # suggested wrap, lantern, mug (wrap hits); popular lantern, mug, teapot: a category hit
        3: WindowPurchases(frozenset({WRAP, CANDLE}), frozenset({"cards", "home"})),
        # no history: skipped
        4: WindowPurchases(frozenset({MUG}), frozenset({"kitchen"})),
    }
    result = evaluate_suggestions(
        model, histories, purchases, n=3, window_start=start, window_end=end
    )
    assert (result.evaluated, result.skipped_no_history, result.bought_new) == (3, 1, 3)
    assert (result.suggested.hits, result.suggested.category_hits) == (2, 2)
    assert (result.popular.hits, result.popular.category_hits) == (1, 2)
    assert result.suggested.hit_rate == pytest.approx(2 / 3)
    assert result.popular.category_hit_rate == pytest.approx(2 / 3)


def test_the_evaluation_report_is_a_small_table() -> None:
    start, end = datetime(2010, 12, 4, tzinfo=UTC), datetime(2010, 12, 25, tzinfo=UTC)
    result = EvalResult(
        window_start=start,
        window_end=end,
        n=3,
        evaluated=240,
        skipped_no_history=12,
        bought_new=200,
        suggested=Hits(240, 60, 180),
        popular=Hits(240, 30, 170),
    )
    text = format_eval(result)
    assert "2010-12-04 to 2010-12-24 (21 days), 3 suggestions per customer" in text
    assert "Customers evaluated: 240 (skipped, no purchase before the window: 12)" in text
    rows = {
        line.split()[0]: line.split()[-4:]
        for line in text.splitlines()
        if line.startswith(("suggestions", "most popular"))
    }
    assert rows == {
        "suggestions": ["60", "25.0%", "180", "75.0%"],
        "most": ["30", "12.5%", "170", "70.8%"],
    }
    assert "Small sample" not in text
    small = format_eval(replace(result, evaluated=24))
    assert "Small sample (24 customers, under 100)" in small
