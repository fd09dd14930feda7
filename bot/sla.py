"""Business time for SLA targets: when is "4 business hours after this message"?

Counted in the shop's support hours (weekly spans in its timezone), skipping holidays.
Elapsed time is real time (UTC differences), so a span that crosses a daylight-saving
change counts the hours that actually passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.hours import WeeklyHours

# How far ahead to look for open time before concluding there is none (a shop closed for
# longer than this has no SLA to speak of).
MAX_DAYS_AHEAD = 400
_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


DEFAULT_FIRST_RESPONSE = {
    Priority.URGENT: timedelta(hours=1),
    Priority.HIGH: timedelta(hours=2),
    Priority.NORMAL: timedelta(hours=4),
    Priority.LOW: timedelta(hours=8),
}
DEFAULT_RESOLUTION = {
    Priority.URGENT: timedelta(hours=4),
    Priority.HIGH: timedelta(hours=8),
    Priority.NORMAL: timedelta(hours=24),
    Priority.LOW: timedelta(hours=40),
}


def parse_duration(text: str) -> timedelta:
    """ "4h", "90m", "1h30m" (business hours and minutes); raises ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f'{text!r} is not a duration like "4h", "90m" or "1h30m"')
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    duration = timedelta(hours=hours, minutes=minutes)
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} must be longer than zero")
    return duration


def parse_targets(
    table: Mapping[str, Any], defaults: Mapping[Priority, timedelta]
) -> dict[Priority, timedelta]:
    """``{urgent = "1h", normal = "4h"}``: given priorities replace the defaults."""
    targets = dict(defaults)
    for name, value in table.items():
        try:
            priority = Priority(name)
        except ValueError:
            raise ValueError(
                f"unknown priority {name!r} (use {', '.join(p.value for p in Priority)})"
            ) from None
        if not isinstance(value, str):
            raise ValueError(f'{name} must be a string like "4h"')
        targets[priority] = parse_duration(value)
    return targets


@dataclass(frozen=True)
class BusinessCalendar:
    hours: WeeklyHours
    tz: ZoneInfo
    holidays: frozenset[date] = field(default_factory=frozenset)

    def open_intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open periods (aware, UTC) from ``start`` on, in order, the first one clipped."""
        start = start.astimezone(self.tz)
        for offset in range(MAX_DAYS_AHEAD + 1):
            day = start.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for span in self.hours.days[day.weekday()]:
                opens = datetime.combine(day, span.start, tzinfo=self.tz)
                closes = datetime.combine(day, span.end, tzinfo=self.tz)
                if closes <= start:
                    continue
                yield max(opens, start).astimezone(_UTC), closes.astimezone(_UTC)

    def add(self, start: datetime, duration: timedelta) -> datetime | None:
        """The moment ``duration`` of business time has passed after ``start``.

        None if the shop has no open time in the next MAX_DAYS_AHEAD days.
        """
        remaining = duration
        for opens, closes in self.open_intervals(start):
            available = closes - opens
            if remaining <= available:
                return (opens + remaining).astimezone(self.tz)
            remaining -= available
        return None

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two moments (zero if ``end`` is not after ``start``)."""
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self.open_intervals(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        return local.date() not in self.holidays and self.hours.is_open(moment, self.tz)


_UTC = ZoneInfo("UTC")


def parse_holidays(values: list[Any]) -> frozenset[date]:
    """``["2026-12-25", ...]``; raises ValueError naming the bad entry."""
    days = set()
    for value in values:
        if isinstance(value, date) and not isinstance(value, datetime):
            days.add(value)  # TOML dates arrive as date objects
            continue
        try:
            days.add(date.fromisoformat(str(value)))
        except ValueError:
            raise ValueError(f"{value!r} is not a date like 2026-12-25") from None
    return frozenset(days)


@dataclass(frozen=True)
class Targets:
    """Per-priority targets from config; priorities not given keep the defaults."""

    overrides: tuple[tuple[Priority, timedelta], ...] = ()

    def merged(self, defaults: Mapping[Priority, timedelta]) -> dict[Priority, timedelta]:
        return {**defaults, **dict(self.overrides)}


@dataclass(frozen=True)
class Holidays:
    days: frozenset[date] = frozenset()
