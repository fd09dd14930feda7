"""Occasion calendar: the date of Mother's Day (or a shop's own occasion) in a year, per country.

Reminder campaigns name an occasion; the campaign engine asks for its date in a given year
for a customer's country (ISO 3166-1 alpha-2, case-insensitive). A country without its own
rule, an unknown country and no country at all get the occasion's default rule. Every date
lies in the year asked for, so Orthodox Christmas "in 2026" is 7 Jan 2026.

Built-in occasions (slug: default rule; countries with their own rule):

- ``birthday``: the customer's birthday (month and day) in that year; 29 Feb falls on 28 Feb
  in common years; no known birthday -> no date.
- ``chinese-new-year``: lunar 01-01; ``mid-autumn``: lunar 08-15 (same date everywhere).
- ``valentines``: 14 Feb; ``singles-day``: 11 Nov.
- ``mothers-day``: second Sunday of May. GB, IE: Mothering Sunday, Easter - 21 days.
  FR: last Sunday of May, or the first Sunday of June when that Sunday is Pentecost.
  ES, PT, LT, HU: first Sunday of May. SE: last Sunday of May. NO: second Sunday of
  February. MX, GT, SV: 10 May. PL: 26 May. KR: 8 May (Parents' Day). TH: 12 Aug.
  AR: third Sunday of October. RU: last Sunday of November. EG, JO, LB: 21 Mar. ID: 22 Dec.
- ``fathers-day``: third Sunday of June. AU, NZ: first Sunday of September. DE: Ascension
  Day (Easter + 39). IT, ES, PT: 19 Mar (St Joseph). NO, SE, FI, EE: second Sunday of
  November. DK: 5 Jun. AT: second Sunday of June. BR: second Sunday of August. TW: 8 Aug.
  KR: 8 May. TH: 5 Dec. RU: third Sunday of October from 2021 (default before).
- ``christmas``: 25 Dec. RU, RS, GE, ET: 25 Dec of the Julian calendar (7 Jan in 1901-2100,
  8 Jan from 2101). UA: the Julian date until 2022, 25 Dec from 2023.

Custom occasions: a slug (lowercase letters and digits, single dashes between them), an
optional label, a default date rule and optional per-country rules. Date rules
(case-insensitive, extra spaces ignored; ``str(rule)`` gives the canonical text):

- ``12-25``: a fixed month-day. ``02-29`` falls on 28 Feb in common years.
- ``2nd sun of may``, ``last fri of nov``: the nth weekday of a month, n = 1st..5th or last
  (first..fifth accepted), weekday mon..sun, month jan..dec (full names accepted, "of"
  optional). A year whose month lacks a 5th such weekday has no date for the rule.
- ``easter``, ``easter+39``, ``easter-21``: days from Western (Gregorian) Easter Sunday;
  the offset is limited to -80..+245 so the date always stays in the same year.
- ``lunar 08-15``: a Chinese lunar (UTC+8) month-day, for months 01, 05 and 08, days 01..29.
  The holidays package keeps its lunisolar tables private, so the dates come from its
  public-holiday lists: Spring Festival (01-01) from CN, 1950-2100; Dragon Boat Festival
  (05-05) from HK, 1963-2100; Mid-Autumn Festival (08-15) from CN (2008 on), TW (1998 on)
  and MO (1985-1999). Other days count from those anchors (every lunar month has at least
  29 days). Outside those years a lunar rule has no date. Korean and Vietnamese calendars
  (UTC+9, UTC+7) differ from this by a day in a few years.

Years are limited to 1583..4099, the range of dateutil's Western Easter computation.
"""

from __future__ import annotations

import calendar
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

# python-dateutil ships no type hints; _easter_sunday gives the one function used a type.
from dateutil.easter import easter

MIN_YEAR = 1583
MAX_YEAR = 4099
# next_on_or_after looks at the day's year and at most this many years after it.
YEARS_AHEAD = 2

BIRTHDAY = "birthday"
BUILTIN: tuple[str, ...] = (
    BIRTHDAY,
    "chinese-new-year",
    "valentines",
    "mothers-day",
    "fathers-day",
    "mid-autumn",
    "singles-day",
    "christmas",
)

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_SLUG = 40
_MAX_LABEL = 80
_COUNTRY = re.compile(r"[A-Z]{2}")

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Spelled out rather than taken from calendar.day_name, which follows the process locale.
_WEEKDAY_NAMES = {name: index for index, name in enumerate(_WEEKDAYS)} | {
    name: index
    for index, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_NAMES = {name: index + 1 for index, name in enumerate(_MONTHS)} | {
    name: index + 1
    for index, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        )
    )
}
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")
_ORDINAL_NAMES = {name: index + 1 for index, name in enumerate(_ORDINALS)} | {
    name: index + 1 for index, name in enumerate(("first", "second", "third", "fourth", "fifth"))
}
LAST = -1

_EASTER_OFFSETS = range(-80, 246)

_FIXED_TEXT = re.compile(r"(\d{1,2}) ?- ?(\d{1,2})")
_LUNAR_TEXT = re.compile(r"lunar (\d{1,2}) ?- ?(\d{1,2})")
_EASTER_TEXT = re.compile(r"easter(?: ?([+-]) ?(\d{1,4}))?")
_NTH_TEXT = re.compile(r"([a-z0-9]+) ([a-z]+) (?:of )?([a-z]+)")
_RULE_FORMS = "'12-25', '2nd sun of may', 'last fri of nov', 'easter+39' or 'lunar 08-15'"


class OccasionError(ValueError):
    """An unknown occasion, a malformed name or rule, or a year out of range."""


class _YearRule(Protocol):
    def date_in(self, year: int) -> date | None: ...


@dataclass(frozen=True)
class DateRule(ABC):
    """A parsed date rule; see the module docstring for the language."""

    @abstractmethod
    def date_in(self, year: int) -> date | None:
        """The rule's date in `year`, or None when the rule has no date that year."""

    @abstractmethod
    def __str__(self) -> str: ...


@dataclass(frozen=True)
class FixedDate(DateRule):
    month: int
    day: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise OccasionError(f"month {self.month} is not 1..12")
        # 2000 is a leap year, so 02-29 passes.
        if not 1 <= self.day <= calendar.monthrange(2000, self.month)[1]:
            raise OccasionError(f"{_MONTHS[self.month - 1]} has no day {self.day}")

    def date_in(self, year: int) -> date | None:
        return _month_day_in(year, self.month, self.day)

    def __str__(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True)
class NthWeekday(DateRule):
    """The nth (1..5, or LAST) weekday (MON..SUN) of a month."""

    nth: int
    weekday: int
    month: int

    def __post_init__(self) -> None:
        if self.nth != LAST and not 1 <= self.nth <= 5:
            raise OccasionError(f"n must be 1st..5th or last, not {self.nth}")
        if not 0 <= self.weekday <= 6:
            raise OccasionError(f"weekday {self.weekday} is not 0 (mon)..6 (sun)")
        if not 1 <= self.month <= 12:
            raise OccasionError(f"month {self.month} is not 1..12")

    def date_in(self, year: int) -> date | None:
        if self.nth == LAST:
            last = date(year, self.month, calendar.monthrange(year, self.month)[1])
            return last - timedelta(days=(last.weekday() - self.weekday) % 7)
        first = date(year, self.month, 1)
        day = first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.nth - 1))
        return day if day.month == self.month else None

    def __str__(self) -> str:
        nth = "last" if self.nth == LAST else _ORDINALS[self.nth - 1]
        return f"{nth} {_WEEKDAYS[self.weekday]} of {_MONTHS[self.month - 1]}"


@dataclass(frozen=True)
class EasterOffset(DateRule):
    """Days from Western Easter Sunday (negative: before)."""

    days: int = 0

    def __post_init__(self) -> None:
        if self.days not in _EASTER_OFFSETS:
            raise OccasionError(
                f"Easter offset {self.days:+d} is outside "
                f"{_EASTER_OFFSETS.start}..+{_EASTER_OFFSETS.stop - 1} days "
                "(the date must stay in Easter's year)"
            )

    def date_in(self, year: int) -> date | None:
        return _easter_sunday(year) + timedelta(days=self.days)

    def __str__(self) -> str:
        return f"easter{self.days:+d}" if self.days else "easter"


@dataclass(frozen=True)
class LunarDate(DateRule):
    """A Chinese lunar month-day (months 1, 5 and 8; days 1..29)."""

    month: int
    day: int

    def __post_init__(self) -> None:
        if self.month not in _LUNAR_ANCHORS:
            months = ", ".join(f"{month:02d}" for month in _LUNAR_ANCHORS)
            raise OccasionError(f"lunar month {self.month:02d} is not supported (only {months})")
        if not 1 <= self.day <= 29:
            raise OccasionError(
                f"lunar day {self.day} is not 1..29 (day 30 exists only in some months)"
            )

    def date_in(self, year: int) -> date | None:
        anchor_day, _ = _LUNAR_ANCHORS[self.month]
        anchor = _lunar_anchor(self.month, year)
        return None if anchor is None else anchor + timedelta(days=self.day - anchor_day)

    def __str__(self) -> str:
        return f"lunar {self.month:02d}-{self.day:02d}"


def parse_date_rule(text: str) -> DateRule:
    """Parse the rule language of the module docstring; OccasionError names what is wrong."""
    normalized = " ".join(text.lower().split())
    if not normalized:
        raise OccasionError(f"date rule is empty; use {_RULE_FORMS}")
    try:
        return _parse_normalized(normalized)
    except OccasionError as exc:
        raise OccasionError(f"date rule {text.strip()!r}: {exc}") from None


def _parse_normalized(text: str) -> DateRule:
    if match := _FIXED_TEXT.fullmatch(text):
        return FixedDate(int(match[1]), int(match[2]))
    if match := _LUNAR_TEXT.fullmatch(text):
        return LunarDate(int(match[1]), int(match[2]))
    if match := _EASTER_TEXT.fullmatch(text):
        days = int(match[2] or 0)
        return EasterOffset(-days if match[1] == "-" else days)
    if match := _NTH_TEXT.fullmatch(text):
        nth_text, weekday_text, month_text = match.groups()
        nth = LAST if nth_text == "last" else _ORDINAL_NAMES.get(nth_text)
        if nth is None:
            raise OccasionError(f"{nth_text!r} is not 1st, 2nd, 3rd, 4th, 5th or last")
        weekday = _WEEKDAY_NAMES.get(weekday_text)
        if weekday is None:
            raise OccasionError(f"{weekday_text!r} is not a weekday (mon..sun)")
        month = _MONTH_NAMES.get(month_text)
        if month is None:
            raise OccasionError(f"{month_text!r} is not a month (jan..dec)")
        return NthWeekday(nth, weekday, month)
    raise OccasionError(f"not understood; use {_RULE_FORMS}")


@dataclass(frozen=True)
class CustomOccasion:
    """An occasion an admin added. `by_country` holds (country, rule) pairs sorted by country."""

    name: str
    label: str
    rule: DateRule
    by_country: tuple[tuple[str, DateRule], ...] = ()

    def __post_init__(self) -> None:
        _check_slug(self.name)
        countries = [country for country, _ in self.by_country]
        for country in countries:
            if not _COUNTRY.fullmatch(country):
                raise OccasionError(
                    f"occasion {self.name!r}: country {country!r} is not an upper-case "
                    "ISO 3166-1 alpha-2 code"
                )
        if countries != sorted(set(countries)):
            raise OccasionError(
                f"occasion {self.name!r}: countries must be unique and sorted, got {countries}"
            )

    def rule_for(self, country: str | None) -> DateRule:
        return dict(self.by_country).get(_normalize_country(country) or "", self.rule)


def parse_custom_occasion(
    name: str, rule: str, *, label: str = "", by_country: Mapping[str, str] | None = None
) -> CustomOccasion:
    """Build a custom occasion from admin input. Label defaults to the name in words."""
    name = name.strip()
    _check_slug(name)
    if name in BUILTIN:
        raise OccasionError(f"occasion {name!r} is built in; choose another name")
    label = " ".join(label.split()) or name.replace("-", " ").capitalize()
    if len(label) > _MAX_LABEL:
        raise OccasionError(f"occasion {name!r}: label is longer than {_MAX_LABEL} characters")
    try:
        default = parse_date_rule(rule)
    except OccasionError as exc:
        raise OccasionError(f"occasion {name!r}: {exc}") from None
    country_rules: dict[str, DateRule] = {}
    for raw_country, country_rule in (by_country or {}).items():
        country = raw_country.strip().upper()
        if not _COUNTRY.fullmatch(country):
            raise OccasionError(
                f"occasion {name!r}: {raw_country!r} is not an ISO 3166-1 alpha-2 country code"
            )
        if country in country_rules:
            raise OccasionError(f"occasion {name!r}: country {country} is given twice")
        try:
            country_rules[country] = parse_date_rule(country_rule)
        except OccasionError as exc:
            raise OccasionError(f"occasion {name!r}, country {country}: {exc}") from None
    return CustomOccasion(name, label, default, tuple(sorted(country_rules.items())))


@dataclass(frozen=True)
class _Occasion:
    label: str
    # None for the birthday, whose date comes from the customer rather than a rule.
    default: _YearRule | None
    by_country: Mapping[str, _YearRule] = field(default_factory=dict)

    def rule_for(self, country: str | None) -> _YearRule | None:
        return self.by_country.get(_normalize_country(country) or "", self.default)


class OccasionCalendar:
    """Built-in occasions plus the shop's custom ones."""

    def __init__(self, custom: Iterable[CustomOccasion] = ()) -> None:
        self._occasions: dict[str, _Occasion] = dict(_BUILTIN_OCCASIONS)
        for occasion in custom:
            if occasion.name in BUILTIN:
                raise OccasionError(f"custom occasion {occasion.name!r} shadows a built-in one")
            if occasion.name in self._occasions:
                raise OccasionError(f"custom occasion {occasion.name!r} is defined twice")
            self._occasions[occasion.name] = _Occasion(
                occasion.label, occasion.rule, dict(occasion.by_country)
            )

    def names(self) -> list[str]:
        """Built-ins in display order, then custom occasions in the order given."""
        return list(self._occasions)

    def has(self, name: str) -> bool:
        return name in self._occasions

    def label(self, name: str) -> str:
        return self._get(name).label

    def date_of(
        self, name: str, year: int, country: str | None = None, *, birthday: date | None = None
    ) -> date | None:
        """The occasion's date in `year` for `country`; None when it has none that year."""
        occasion = self._get(name)
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise OccasionError(f"year {year} is outside {MIN_YEAR}..{MAX_YEAR}")
        rule = occasion.rule_for(country)
        if rule is None:
            return None if birthday is None else _month_day_in(year, birthday.month, birthday.day)
        return rule.date_in(year)

    def next_on_or_after(
        self, name: str, day: date, country: str | None = None, *, birthday: date | None = None
    ) -> date | None:
        """The first occurrence on or after `day`, looking at most YEARS_AHEAD years ahead."""
        for year in range(day.year, min(day.year + YEARS_AHEAD, MAX_YEAR) + 1):
            found = self.date_of(name, year, country, birthday=birthday)
            if found is not None and found >= day:
                return found
        return None

    def countries_with_own_rule(self, name: str) -> frozenset[str]:
        """Countries whose rule differs from the default; everyone else shares one date."""
        occasion = self._get(name)
        return frozenset(
            country for country, rule in occasion.by_country.items() if rule != occasion.default
        )

    def _get(self, name: str) -> _Occasion:
        try:
            return self._occasions[name]
        except KeyError:
            known = ", ".join(self._occasions)
            raise OccasionError(f"unknown occasion {name!r}; known: {known}") from None


def _check_slug(name: str) -> None:
    if not _SLUG.fullmatch(name) or len(name) > _MAX_SLUG:
        raise OccasionError(
            f"occasion name {name!r} must be lowercase letters and digits with single dashes "
            f"between them, at most {_MAX_SLUG} characters (e.g. 'shop-anniversary')"
        )


def _normalize_country(country: str | None) -> str | None:
    return country.strip().upper() if country else None


def _month_day_in(year: int, month: int, day: int) -> date:
    """The month-day in `year`; 29 Feb becomes 28 Feb in common years."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return date(year, month, day)


def _easter_sunday(year: int) -> date:
    sunday: date = easter(year)
    return sunday


# Lunar month -> (its day with a festival, public-holiday lists naming that festival, tried in
# order: the first that has it that year wins). They agree wherever they overlap (checked
# 1985-2100 with holidays 0.109).
_MID_AUTUMN = "Mid-Autumn Festival"
_LUNAR_ANCHORS: dict[int, tuple[int, tuple[tuple[str, str], ...]]] = {
    1: (1, (("CN", "Chinese New Year (Spring Festival)"),)),
    5: (5, (("HK", "Dragon Boat Festival"), ("CN", "Dragon Boat Festival"))),
    8: (15, (("CN", _MID_AUTUMN), ("TW", _MID_AUTUMN), ("MO", _MID_AUTUMN))),
}


@functools.lru_cache(maxsize=4096)
def _lunar_anchor(month: int, year: int) -> date | None:
    """The Gregorian date of the lunar month's festival day in `year`, if a list has it."""
    _, sources = _LUNAR_ANCHORS[month]
    for country, holiday in sources:
        found = _public_holiday(country, holiday, year)
        if found is not None:
            return found
    return None


def _public_holiday(country: str, holiday: str, year: int) -> date | None:
    """The first day in `year` that the holidays package names exactly `holiday` (en_US)."""
    # Imported here: importing holidays takes ~60 ms, and most processes never need it.
    import holidays

    table = holidays.country_holidays(country, years=year, language="en_US")
    # Several holidays on one day share the entry, joined by "; ".
    days = [day for day, names in table.items() if holiday in names.split("; ")]
    return min(days, default=None)


@dataclass(frozen=True)
class _FrenchMothersDay:
    """Last Sunday of May, moved to the first Sunday of June when it is Pentecost."""

    def date_in(self, year: int) -> date | None:
        last_sunday_of_may = NthWeekday(LAST, SUN, 5).date_in(year)
        if last_sunday_of_may == _easter_sunday(year) + timedelta(days=49):
            return NthWeekday(1, SUN, 6).date_in(year)
        return last_sunday_of_may


@dataclass(frozen=True)
class _Since:
    """`rule` from `year` on, `before` in earlier years (a custom that changed by law)."""

    year: int
    rule: _YearRule
    before: _YearRule

    def date_in(self, year: int) -> date | None:
        return (self.rule if year >= self.year else self.before).date_in(year)


@dataclass(frozen=True)
class _JulianChristmas:
    """25 Dec of the Julian calendar, which falls early in the next Gregorian year.

    The calendars drift apart by a day in each century year that is not a multiple of 400:
    7 Jan for Christmas 1900..2099, 8 Jan from Christmas 2100.
    """

    def date_in(self, year: int) -> date | None:
        previous = year - 1
        drift = previous // 100 - previous // 400 - 2
        return date(previous, 12, 25) + timedelta(days=drift)


def _same(rule: _YearRule, *countries: str) -> dict[str, _YearRule]:
    return dict.fromkeys(countries, rule)


_SECOND_SUNDAY_OF_MAY = NthWeekday(2, SUN, 5)
_THIRD_SUNDAY_OF_JUNE = NthWeekday(3, SUN, 6)

_BUILTIN_OCCASIONS: dict[str, _Occasion] = {
    BIRTHDAY: _Occasion("Birthday", None),
    "chinese-new-year": _Occasion("Chinese New Year", LunarDate(1, 1)),
    "valentines": _Occasion("Valentine's Day", FixedDate(2, 14)),
    "mothers-day": _Occasion(
        "Mother's Day",
        _SECOND_SUNDAY_OF_MAY,
        {
            # Mothering Sunday, the fourth Sunday of Lent (church calendar).
            **_same(EasterOffset(-21), "GB", "IE"),
            # Code de l'action sociale et des familles, art. D215-1 (law of 1950).
            "FR": _FrenchMothersDay(),
            # National custom.
            **_same(NthWeekday(1, SUN, 5), "ES", "PT", "LT", "HU"),
            "SE": NthWeekday(LAST, SUN, 5),  # National custom (Mors dag).
            "NO": NthWeekday(2, SUN, 2),  # Official flag day (Morsdag).
            **_same(FixedDate(5, 10), "MX", "GT", "SV"),  # National custom.
            "PL": FixedDate(5, 26),  # National custom (Dzień Matki).
            "KR": FixedDate(5, 8),  # Parents' Day, a national day since 1973.
            "TH": FixedDate(8, 12),  # Queen Sirikit's birthday, a public holiday.
            "AR": NthWeekday(3, SUN, 10),  # National custom (Día de la Madre).
            "RU": NthWeekday(LAST, SUN, 11),  # Presidential decree of 1998.
            # Arab Mother's Day, on the spring equinox since 1956 (national custom).
            **_same(FixedDate(3, 21), "EG", "JO", "LB"),
            "ID": FixedDate(12, 22),  # Hari Ibu, a national day by presidential decree.
        },
    ),
    "fathers-day": _Occasion(
        "Father's Day",
        _THIRD_SUNDAY_OF_JUNE,
        {
            **_same(NthWeekday(1, SUN, 9), "AU", "NZ"),  # National custom.
            "DE": EasterOffset(39),  # Vatertag on Ascension Day, a public holiday.
            **_same(FixedDate(3, 19), "IT", "ES", "PT"),  # St Joseph's Day (church calendar).
            # Official flag day in each country.
            **_same(NthWeekday(2, SUN, 11), "NO", "SE", "FI", "EE"),
            "DK": FixedDate(6, 5),  # Constitution Day (Fars dag), a national custom.
            "AT": NthWeekday(2, SUN, 6),  # National custom (Vatertag).
            "BR": NthWeekday(2, SUN, 8),  # National custom (Dia dos Pais).
            "TW": FixedDate(8, 8),  # "Baba" Day: 8-8 sounds like "papa" (national custom).
            "KR": FixedDate(5, 8),  # Parents' Day, a national day since 1973.
            "TH": FixedDate(12, 5),  # King Bhumibol's birthday, a public holiday.
            # Presidential decree no. 573 of 4 Oct 2021.
            "RU": _Since(2021, NthWeekday(3, SUN, 10), _THIRD_SUNDAY_OF_JUNE),
        },
    ),
    "mid-autumn": _Occasion("Mid-Autumn Festival", LunarDate(8, 15)),
    "singles-day": _Occasion("Singles' Day", FixedDate(11, 11)),
    "christmas": _Occasion(
        "Christmas",
        FixedDate(12, 25),
        {
            # Churches on the Julian calendar; 7 Jan is a public holiday in each.
            **_same(_JulianChristmas(), "RU", "RS", "GE", "ET"),
            # Ukraine's churches and state holiday moved to 25 Dec in 2023 (law of July 2023).
            "UA": _Since(2023, FixedDate(12, 25), _JulianChristmas()),
        },
    ),
}
