"""Weekly support hours in the shop's timezone (used for "when will a person answer")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Span:
    start: time
    end: time

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class WeeklyHours:
    """Opening spans per weekday (0 = Monday); a day with no spans is closed."""

    days: tuple[tuple[Span, ...], ...]

    @classmethod
    def always_closed(cls) -> WeeklyHours:
        return cls(days=((),) * 7)

    def is_open(self, moment: datetime, tz: ZoneInfo) -> bool:
        local = moment.astimezone(tz)
        return any(s.start <= local.time() < s.end for s in self.days[local.weekday()])

    def next_opening(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The next time support opens after ``moment`` (aware, in ``tz``), or None if never."""
        local = moment.astimezone(tz)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            for span in self.days[day.weekday()]:
                start = datetime.combine(day, span.start, tzinfo=tz)
                if start > local:
                    return start
        return None

    def summary(self) -> list[tuple[str, str]]:
        """(day key, "09:00-18:00, ...") for each open day, for templates to translate."""
        return [
            (DAY_KEYS[i], ", ".join(s.label() for s in spans))
            for i, spans in enumerate(self.days)
            if spans
        ]


def parse_weekly_hours(table: Mapping[str, Any]) -> WeeklyHours:
    """Parse ``{mon = "09:00-12:00, 13:00-18:00", sat = "closed"}``; unnamed days are closed."""
    days: list[tuple[Span, ...]] = [()] * 7
    for key, value in table.items():
        if key not in DAY_KEYS:
            raise ValueError(f"unknown day {key!r} (use {', '.join(DAY_KEYS)})")
        if not isinstance(value, str):
            raise ValueError(f'{key} must be a string like "09:00-18:00" or "closed"')
        days[DAY_KEYS.index(key)] = _parse_day(key, value)
    return WeeklyHours(days=tuple(days))


def _parse_day(key: str, value: str) -> tuple[Span, ...]:
    if value.strip().lower() in {"", "closed"}:
        return ()
    spans = []
    for part in value.split(","):
        match = _SPAN.match(part)
        if not match:
            raise ValueError(f'{key} = {value!r}: expected spans like "09:00-18:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 == 0:
            h2, m2 = 23, 59
        try:
            span = Span(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f"{key} = {value!r}: not a valid time of day") from None
        if span.start >= span.end:
            raise ValueError(f"{key} = {value!r}: a span must end after it starts")
        spans.append(span)
    return tuple(sorted(spans, key=lambda s: s.start))
