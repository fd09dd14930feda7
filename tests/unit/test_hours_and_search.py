"""Support hours and the FAQ search terms."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.hours import parse_weekly_hours
from bot.search_terms import coverage, fts_query, search_terms

LONDON = ZoneInfo("Europe/London")
HOURS = parse_weekly_hours({"mon": "09:00-12:00, 13:00-18:00", "sat": "10:00-14:00"})


def test_open_and_closed_in_the_shop_timezone() -> None:
    monday_10_london = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)  # BST: 10:00 local
    assert HOURS.is_open(monday_10_london, LONDON)
    lunch = datetime(2026, 7, 6, 11, 30, tzinfo=UTC)  # 12:30 local
    assert not HOURS.is_open(lunch, LONDON)
    assert HOURS.next_opening(lunch, LONDON) == datetime(2026, 7, 6, 13, 0, tzinfo=LONDON)


def test_next_opening_skips_closed_days() -> None:
    saturday_evening = datetime(2026, 7, 11, 18, 0, tzinfo=LONDON)
    assert HOURS.next_opening(saturday_evening, LONDON) == datetime(
        2026, 7, 13, 9, 0, tzinfo=LONDON
    )
    never = parse_weekly_hours({})
    assert never.next_opening(saturday_evening, LONDON) is None


@pytest.mark.parametrize("bad", ["9-5", "18:00-09:00", "25:00-26:00", "09:00"])
def test_bad_spans_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="mon"):
        parse_weekly_hours({"mon": bad})


def test_english_terms_drop_stop_words() -> None:
    assert search_terms("How do I return my MUG?") == ["return", "mug"]
    assert search_terms("hello, thanks!") == []


def test_chinese_terms_are_bigrams_without_function_words() -> None:
    assert search_terms("怎么退货") == ["退货"]
    assert search_terms("我想取消订单") == ["取消", "消订", "订单"]


def test_fts_query_quotes_terms_so_operators_cannot_be_injected() -> None:
    assert fts_query(['a"b', "NEAR"]) == '"a""b" OR "NEAR"'


def test_coverage_counts_shared_stems() -> None:
    assert coverage(["refunds", "card"], {"refund", "money"}) == 0.5
    assert coverage([], {"x"}) == 0.0
