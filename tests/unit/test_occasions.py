"""Occasion dates as customers know them.

Expected dates are real published dates, cross-checked with an independent computation
(calendar.monthcalendar for nth weekdays, dateutil.easter for Easter), not with the module.
"""

from __future__ import annotations

from datetime import date

import pytest

from bot.occasions import (
    BUILTIN,
    CustomOccasion,
    DateRule,
    OccasionCalendar,
    OccasionError,
    parse_custom_occasion,
    parse_date_rule,
)


@pytest.fixture
def calendar() -> OccasionCalendar:
    return OccasionCalendar()


@pytest.mark.parametrize(
    ("name", "year", "country", "expected"),
    [
        # Mother's Day: second Sunday of May by default.
        ("mothers-day", 2026, "US", date(2026, 5, 10)),
        ("mothers-day", 2027, "US", date(2027, 5, 9)),
        ("mothers-day", 2026, "DE", date(2026, 5, 10)),
        ("mothers-day", 2026, None, date(2026, 5, 10)),
        ("mothers-day", 2026, "ZZ", date(2026, 5, 10)),
        # Mothering Sunday, three weeks before Easter.
        ("mothers-day", 2025, "GB", date(2025, 3, 30)),
        ("mothers-day", 2026, "GB", date(2026, 3, 15)),
        ("mothers-day", 2027, "GB", date(2027, 3, 7)),
        ("mothers-day", 2026, "IE", date(2026, 3, 15)),
        # Fête des mères: last Sunday of May, first of June when that Sunday is Pentecost.
        ("mothers-day", 2024, "FR", date(2024, 5, 26)),
        ("mothers-day", 2026, "FR", date(2026, 5, 31)),
        ("mothers-day", 2012, "FR", date(2012, 6, 3)),
        ("mothers-day", 2020, "FR", date(2020, 6, 7)),
        ("mothers-day", 2023, "FR", date(2023, 6, 4)),
        ("mothers-day", 2025, "ES", date(2025, 5, 4)),
        ("mothers-day", 2026, "PT", date(2026, 5, 3)),
        ("mothers-day", 2026, "HU", date(2026, 5, 3)),
        ("mothers-day", 2025, "SE", date(2025, 5, 25)),
        ("mothers-day", 2026, "SE", date(2026, 5, 31)),
        ("mothers-day", 2025, "NO", date(2025, 2, 9)),
        ("mothers-day", 2026, "NO", date(2026, 2, 8)),
        ("mothers-day", 2026, "MX", date(2026, 5, 10)),
        ("mothers-day", 2027, "MX", date(2027, 5, 10)),
        ("mothers-day", 2026, "TH", date(2026, 8, 12)),
        ("mothers-day", 2025, "RU", date(2025, 11, 30)),
        ("mothers-day", 2026, "RU", date(2026, 11, 29)),
        ("mothers-day", 2025, "AR", date(2025, 10, 19)),
        ("mothers-day", 2026, "AR", date(2026, 10, 18)),
        ("mothers-day", 2026, "PL", date(2026, 5, 26)),
        ("mothers-day", 2026, "KR", date(2026, 5, 8)),
        ("mothers-day", 2026, "EG", date(2026, 3, 21)),
        # Father's Day: third Sunday of June by default.
        ("fathers-day", 2025, "US", date(2025, 6, 15)),
        ("fathers-day", 2026, "GB", date(2026, 6, 21)),
        ("fathers-day", 2026, "AU", date(2026, 9, 6)),
        ("fathers-day", 2025, "NZ", date(2025, 9, 7)),
        ("fathers-day", 2026, "DE", date(2026, 5, 14)),
        ("fathers-day", 2025, "DE", date(2025, 5, 29)),
        ("fathers-day", 2026, "IT", date(2026, 3, 19)),
        ("fathers-day", 2025, "NO", date(2025, 11, 9)),
        ("fathers-day", 2026, "FI", date(2026, 11, 8)),
        ("fathers-day", 2026, "DK", date(2026, 6, 5)),
        ("fathers-day", 2024, "AT", date(2024, 6, 9)),
        ("fathers-day", 2025, "BR", date(2025, 8, 10)),
        ("fathers-day", 2026, "BR", date(2026, 8, 9)),
        ("fathers-day", 2026, "TH", date(2026, 12, 5)),
        ("fathers-day", 2026, "TW", date(2026, 8, 8)),
        ("fathers-day", 2021, "RU", date(2021, 10, 17)),
        ("fathers-day", 2026, "RU", date(2026, 10, 18)),
        ("fathers-day", 2020, "RU", date(2020, 6, 21)),
        # Christmas, and Orthodox Christmas on the Julian calendar.
        ("christmas", 2026, "US", date(2026, 12, 25)),
        ("christmas", 2026, "RU", date(2026, 1, 7)),
        ("christmas", 2026, "RS", date(2026, 1, 7)),
        ("christmas", 2026, "ET", date(2026, 1, 7)),
        ("christmas", 2101, "RU", date(2101, 1, 8)),
        ("christmas", 2022, "UA", date(2022, 1, 7)),
        ("christmas", 2023, "UA", date(2023, 12, 25)),
        # Lunar festivals, the same everywhere.
        ("chinese-new-year", 2026, None, date(2026, 2, 17)),
        ("chinese-new-year", 2027, "US", date(2027, 2, 6)),
        ("chinese-new-year", 2028, "SG", date(2028, 1, 26)),
        ("chinese-new-year", 1990, None, date(1990, 1, 27)),
        ("chinese-new-year", 2000, None, date(2000, 2, 5)),
        ("mid-autumn", 2026, None, date(2026, 9, 25)),
        ("mid-autumn", 2027, "TW", date(2027, 9, 15)),
        ("mid-autumn", 2008, None, date(2008, 9, 14)),
        ("mid-autumn", 2000, None, date(2000, 9, 12)),
        ("mid-autumn", 1990, None, date(1990, 10, 3)),
        ("valentines", 2026, "JP", date(2026, 2, 14)),
        ("singles-day", 2026, "CN", date(2026, 11, 11)),
    ],
)
def test_builtin_dates(
    calendar: OccasionCalendar, name: str, year: int, country: str | None, expected: date
) -> None:
    assert calendar.date_of(name, year, country) == expected


def test_country_codes_are_case_insensitive(calendar: OccasionCalendar) -> None:
    assert calendar.date_of("mothers-day", 2026, " gb ") == date(2026, 3, 15)


def test_lunar_dates_outside_the_published_years_are_unknown(calendar: OccasionCalendar) -> None:
    assert calendar.date_of("mid-autumn", 1980) is None
    assert calendar.date_of("chinese-new-year", 2101) is None


def test_birthday_falls_on_28_february_in_common_years(calendar: OccasionCalendar) -> None:
    leap_baby = date(2000, 2, 29)
    assert calendar.date_of("birthday", 2027, birthday=leap_baby) == date(2027, 2, 28)
    assert calendar.date_of("birthday", 2028, birthday=leap_baby) == date(2028, 2, 29)
    assert calendar.date_of("birthday", 2027, "FR", birthday=date(1985, 7, 14)) == date(2027, 7, 14)


def test_unknown_birthday_has_no_date(calendar: OccasionCalendar) -> None:
    assert calendar.date_of("birthday", 2026) is None
    assert calendar.next_on_or_after("birthday", date(2026, 1, 1)) is None


def test_next_occurrence_on_or_after_a_day(calendar: OccasionCalendar) -> None:
    assert calendar.next_on_or_after("mothers-day", date(2026, 5, 10), "US") == date(2026, 5, 10)
    assert calendar.next_on_or_after("mothers-day", date(2026, 5, 11), "US") == date(2027, 5, 9)
    assert calendar.next_on_or_after("christmas", date(2025, 12, 30), "RU") == date(2026, 1, 7)
    assert calendar.next_on_or_after(
        "birthday", date(2026, 3, 1), birthday=date(2000, 2, 29)
    ) == date(2027, 2, 28)


def test_next_occurrence_skips_years_without_the_date() -> None:
    # February has five Sundays only in leap years that start it on a Sunday: 2004, then 2032.
    occasion = parse_custom_occasion("leap-sunday", "5th sun of feb")
    calendar = OccasionCalendar([occasion])
    assert calendar.date_of("leap-sunday", 2028) is None
    assert calendar.next_on_or_after("leap-sunday", date(2020, 3, 1)) is None
    assert calendar.next_on_or_after("leap-sunday", date(2030, 3, 1)) == date(2032, 2, 29)


def test_countries_with_own_rule(calendar: OccasionCalendar) -> None:
    mothers = calendar.countries_with_own_rule("mothers-day")
    assert {"GB", "FR", "NO", "MX"} <= mothers
    assert not {"US", "DE", "JP", "CN"} & mothers
    assert calendar.countries_with_own_rule("christmas") == {"RU", "RS", "GE", "ET", "UA"}
    assert calendar.countries_with_own_rule("valentines") == frozenset()
    assert calendar.countries_with_own_rule("birthday") == frozenset()


def test_countries_grouped_by_own_rule_share_the_default_date(
    calendar: OccasionCalendar,
) -> None:
    own = calendar.countries_with_own_rule("fathers-day")
    for country in ("US", "GB", "FR", "JP", "CN", "IN", "CA", "NL"):
        assert country not in own
        assert calendar.date_of("fathers-day", 2026, country) == date(2026, 6, 21)


def test_names_labels_and_lookup(calendar: OccasionCalendar) -> None:
    assert calendar.names() == list(BUILTIN)
    assert calendar.label("mothers-day") == "Mother's Day"
    assert calendar.label("mid-autumn") == "Mid-Autumn Festival"
    assert calendar.has("christmas")
    assert not calendar.has("easter")


def test_unknown_occasion_lists_the_known_ones(calendar: OccasionCalendar) -> None:
    with pytest.raises(OccasionError, match=r"unknown occasion 'easter'; known: birthday, "):
        calendar.date_of("easter", 2026)
    with pytest.raises(OccasionError, match="mothers-day"):
        calendar.label("mother")


def test_year_out_of_range_is_an_error(calendar: OccasionCalendar) -> None:
    with pytest.raises(OccasionError, match="year 1500"):
        calendar.date_of("christmas", 1500)


@pytest.mark.parametrize(
    ("text", "canonical", "expected_2026", "expected_2024"),
    [
        ("12-25", "12-25", date(2026, 12, 25), date(2024, 12, 25)),
        ("7-4", "07-04", date(2026, 7, 4), date(2024, 7, 4)),
        ("02-29", "02-29", date(2026, 2, 28), date(2024, 2, 29)),
        ("2nd sun of may", "2nd sun of may", date(2026, 5, 10), date(2024, 5, 12)),
        ("Last Sunday of MAY", "last sun of may", date(2026, 5, 31), date(2024, 5, 26)),
        ("1st mon of sep", "1st mon of sep", date(2026, 9, 7), date(2024, 9, 2)),
        ("first Monday of September", "1st mon of sep", date(2026, 9, 7), date(2024, 9, 2)),
        ("last fri nov", "last fri of nov", date(2026, 11, 27), date(2024, 11, 29)),
        ("4th thu of nov", "4th thu of nov", date(2026, 11, 26), date(2024, 11, 28)),
        ("easter", "easter", date(2026, 4, 5), date(2024, 3, 31)),
        ("easter+39", "easter+39", date(2026, 5, 14), date(2024, 5, 9)),
        ("Easter - 21", "easter-21", date(2026, 3, 15), date(2024, 3, 10)),
        ("easter+49", "easter+49", date(2026, 5, 24), date(2024, 5, 19)),
        ("lunar 08-15", "lunar 08-15", date(2026, 9, 25), date(2024, 9, 17)),
        ("lunar 1-1", "lunar 01-01", date(2026, 2, 17), date(2024, 2, 10)),
        # Lantern Festival and Dragon Boat Festival.
        ("lunar 01-15", "lunar 01-15", date(2026, 3, 3), date(2024, 2, 24)),
        ("lunar 05-05", "lunar 05-05", date(2026, 6, 19), date(2024, 6, 10)),
    ],
)
def test_date_rules(text: str, canonical: str, expected_2026: date, expected_2024: date) -> None:
    rule = parse_date_rule(text)
    assert str(rule) == canonical
    assert parse_date_rule(canonical) == rule
    assert rule.date_in(2026) == expected_2026
    assert rule.date_in(2024) == expected_2024


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "date rule is empty"),
        ("13-01", "'13-01': month 13"),
        ("02-30", "'02-30': feb has no day 30"),
        ("6th sun of may", "'6th' is not 1st"),
        ("2nd sunny of may", "'sunny' is not a weekday"),
        ("2nd sun of mayo", "'mayo' is not a month"),
        ("easter+300", "Easter offset \\+300"),
        ("lunar 03-03", "lunar month 03 is not supported"),
        ("lunar 08-30", "lunar day 30"),
        ("christmas eve", "'christmas eve': not understood"),
    ],
)
def test_rule_errors_name_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(OccasionError, match=complaint):
        parse_date_rule(text)


def test_custom_occasion_with_country_rules() -> None:
    occasion = parse_custom_occasion(
        "shop-anniversary",
        "09-01",
        by_country={"us": "1st mon of sep", "FR": "09-01", "GB": "easter+1"},
    )
    assert occasion.label == "Shop anniversary"
    assert [country for country, _ in occasion.by_country] == ["FR", "GB", "US"]
    calendar = OccasionCalendar([occasion])
    assert calendar.names()[-1] == "shop-anniversary"
    assert calendar.date_of("shop-anniversary", 2026, "DE") == date(2026, 9, 1)
    assert calendar.date_of("shop-anniversary", 2026, "US") == date(2026, 9, 7)
    assert calendar.date_of("shop-anniversary", 2026, "GB") == date(2026, 4, 6)
    # FR repeats the default, so it needs no group of its own.
    assert calendar.countries_with_own_rule("shop-anniversary") == {"GB", "US"}


def test_custom_occasion_label_and_hashability() -> None:
    first = parse_custom_occasion("tet", "lunar 01-01", label="  Tết  Nguyên Đán ")
    second = parse_custom_occasion("tet", "lunar 1-1", label="Tết Nguyên Đán")
    assert first.label == "Tết Nguyên Đán"
    assert first == second
    assert len({first, second}) == 1
    assert isinstance(first.rule, DateRule)


@pytest.mark.parametrize(
    ("name", "rule", "by_country", "complaint"),
    [
        ("Black Friday", "last fri of nov", None, "occasion name 'Black Friday'"),
        ("black--friday", "last fri of nov", None, "occasion name 'black--friday'"),
        ("-sale", "11-11", None, "occasion name '-sale'"),
        ("mothers-day", "2nd sun of may", None, "'mothers-day' is built in"),
        ("sale", "11-31", None, "occasion 'sale': date rule '11-31': nov has no day 31"),
        ("sale", "11-11", {"USA": "11-12"}, "'USA' is not an ISO 3166-1 alpha-2"),
        ("sale", "11-11", {"us": "11-12", "US": "11-13"}, "country US is given twice"),
        ("sale", "11-11", {"US": "whenever"}, "occasion 'sale', country US: date rule"),
    ],
)
def test_custom_occasion_errors(
    name: str, rule: str, by_country: dict[str, str] | None, complaint: str
) -> None:
    with pytest.raises(OccasionError, match=complaint):
        parse_custom_occasion(name, rule, by_country=by_country)


def test_custom_occasions_may_not_shadow_builtins_or_repeat() -> None:
    rule = parse_date_rule("02-14")
    with pytest.raises(OccasionError, match="'valentines' shadows a built-in"):
        OccasionCalendar([CustomOccasion("valentines", "Valentine's", rule)])
    sale = parse_custom_occasion("sale", "11-11")
    with pytest.raises(OccasionError, match="'sale' is defined twice"):
        OccasionCalendar([sale, sale])
