"""SLA business time: due moments and elapsed time in support hours."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_config
from bot.hours import parse_weekly_hours
from bot.sla import BusinessCalendar, Priority, parse_duration

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = {d: "09:00-12:00, 13:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}
CALENDAR = BusinessCalendar(parse_weekly_hours(WEEKDAYS), LONDON, frozenset({date(2026, 12, 25)}))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ("2026-11-23 10:00", 1, "2026-11-23 11:00"),  # inside a span
        ("2026-11-23 11:30", 1, "2026-11-23 13:30"),  # across lunch
        ("2026-11-23 16:00", 2, "2026-11-24 10:00"),  # across the night
        ("2026-11-27 16:00", 2, "2026-11-30 10:00"),  # Friday to Monday
        ("2026-11-28 12:00", 1, "2026-11-30 10:00"),  # asked on Saturday
        ("2026-11-23 07:00", 3, "2026-11-23 12:00"),  # asked before opening
        ("2026-12-24 16:00", 2, "2026-12-28 10:00"),  # Christmas Day is a holiday
        ("2026-11-23 09:00", 7, "2026-11-23 17:00"),  # exactly a whole day
    ],
)
def test_due_moments(start: str, hours: int, due: str) -> None:
    assert CALENDAR.add(at(start), timedelta(hours=hours)) == at(due)


def test_elapsed_is_the_inverse_of_add() -> None:
    start = at("2026-11-27 15:20")
    for minutes in (1, 40, 100, 7 * 60, 19 * 60 + 13):
        due = CALENDAR.add(start, timedelta(minutes=minutes))
        assert due is not None
        assert CALENDAR.elapsed(start, due) == timedelta(minutes=minutes)
    assert CALENDAR.elapsed(at("2026-11-28 10:00"), at("2026-11-29 10:00")) == timedelta(0)
    assert CALENDAR.elapsed(at("2026-11-23 12:00"), at("2026-11-23 10:00")) == timedelta(0)


def test_a_daylight_saving_change_counts_the_hours_that_passed() -> None:
    night = BusinessCalendar(parse_weekly_hours({"sun": "00:30-03:30"}), LONDON)
    # 29 March 2026: clocks go from 01:00 to 02:00, so 00:30-03:30 holds two real hours
    start = at("2026-03-29 00:30")
    assert night.elapsed(start, at("2026-03-29 03:30")) == timedelta(hours=2)
    assert night.add(start, timedelta(hours=2)) == at("2026-03-29 03:30")


def test_a_shop_that_never_opens_has_no_due_time() -> None:
    closed = BusinessCalendar(parse_weekly_hours({}), LONDON)
    assert closed.add(at("2026-11-23 10:00"), timedelta(hours=1)) is None
    assert not closed.is_open(at("2026-11-23 10:00"))
    assert not CALENDAR.is_open(at("2026-12-25 10:00"))
    assert CALENDAR.is_open(at("2026-12-24 10:00"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4h", timedelta(hours=4)), ("90m", timedelta(minutes=90)), ("1h30m", timedelta(minutes=90))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "4", "0h", "four hours", "2d", "-1h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        parse_duration(bad)


MINIMAL = '[database]\npath = "x.db"\n[shop]\nname = "S"\ntimezone = "Europe/London"\n'


def test_sla_config_merges_defaults_and_names_bad_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        MINIMAL
        + '[sla]\nfirst_response = { urgent = "30m" }\nholidays = ["2026-12-25", 2027-01-01]\n'
    )
    config = load_config(path, env={})
    assert config.sla.first_response_targets[Priority.URGENT] == timedelta(minutes=30)
    assert config.sla.first_response_targets[Priority.NORMAL] == timedelta(hours=4)
    assert config.business_calendar().holidays == {date(2026, 12, 25), date(2027, 1, 1)}
    for bad, message in [
        ('first_response = { critical = "1h" }', r"\[sla\] first_response: unknown priority"),
        ('resolution = { low = "2 days" }', r"\[sla\] resolution: '2 days' is not a duration"),
        ('holidays = ["Christmas"]', r"\[sla\] holidays: 'Christmas' is not a date"),
    ]:
        path.write_text(MINIMAL + "[sla]\n" + bad + "\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path, env={})
