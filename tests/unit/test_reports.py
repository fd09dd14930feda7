"""Ticket reports on hand-made records: percentiles, business vs wall-clock time, staff."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.hours import parse_weekly_hours
from bot.reports import (
    TicketRecord,
    build_report,
    format_duration,
    median,
    percentile,
)
from bot.sla import BusinessCalendar
from carebot.ticket_views import period_label, report_lines

LONDON = ZoneInfo("Europe/London")
# The demo shop's support hours: Monday 09:00-18:00, Saturday 10:00-14:00.
CALENDAR = BusinessCalendar(
    parse_weekly_hours({"mon": "09:00-18:00", "sat": "10:00-14:00"}), LONDON
)
MONDAY = datetime(2026, 11, 23, tzinfo=LONDON)  # GMT in November: London time is UTC


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY + timedelta(days=day_offset, hours=hour, minutes=minute)


def minutes(*values: int) -> list[timedelta]:
    return [timedelta(minutes=v) for v in values]


def test_median_and_p90_of_one_value() -> None:
    assert median(minutes(7)) == timedelta(minutes=7)
    assert percentile(minutes(7), 90) == timedelta(minutes=7)


def test_median_and_p90_of_two_values() -> None:
    # Median: mean of the two middle values; p90 by nearest rank: ceil(0.9 * 2) = 2nd.
    assert median(minutes(30, 10)) == timedelta(minutes=20)
    assert percentile(minutes(30, 10), 90) == timedelta(minutes=30)
    assert percentile(minutes(30, 10), 50) == timedelta(minutes=10)


def test_median_and_p90_of_ten_values() -> None:
    values = minutes(10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
    assert median(values) == timedelta(minutes=5, seconds=30)
    assert percentile(values, 90) == timedelta(minutes=9)  # rank ceil(0.9 * 10) = 9
    assert percentile(values, 100) == timedelta(minutes=10)
    assert percentile(values, 1) == timedelta(minutes=1)


def test_no_values_have_no_median_or_percentile() -> None:
    assert median([]) is None
    assert percentile([], 90) is None


@pytest.mark.parametrize("p", [0, -5, 101])
def test_percentile_outside_0_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(minutes(1), p)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (None, "-"),
        (timedelta(0), "0m"),
        (timedelta(seconds=29), "0m"),
        (timedelta(seconds=31), "1m"),
        (timedelta(minutes=45), "45m"),
        (timedelta(minutes=65), "1h 05m"),
        (timedelta(hours=23, minutes=59), "23h 59m"),
        (timedelta(days=1), "1d 0h"),
        (timedelta(days=2, hours=3, minutes=40), "2d 3h"),
    ],
)
def test_format_duration(duration: timedelta | None, text: str) -> None:
    assert format_duration(duration) == text


def test_empty_report_says_so() -> None:
    report = build_report([], CALENDAR)
    assert report.empty
    assert report.total == 0
    assert report.first_response.count == 0
    assert report.first_response.business_median is None
    assert report.resolution.wall_p90 is None
    assert report.staff == ()
    period = period_label(date(2026, 11, 23), date(2026, 11, 30))
    assert report_lines(report, period, LONDON) == [
        "No tickets created 2026-11-23 to 2026-11-29 (Europe/London)."
    ]


RECORDS = [
    # Asked Monday 17:30, answered Saturday 10:30: 1h of business time, 4d 17h of waiting.
    TicketRecord(
        created_at=at(0, 17, 30),
        status="resolved",
        kind="complaint",
        priority="normal",
        category="damaged",
        first_response_at=at(5, 10, 30),
        first_responder_name="Bob",
        resolved_at=at(5, 13, 30),
        resolved_by_name="Carol",
        first_response_breached_at=None,
        resolution_breached_at=None,
    ),
    # Asked and answered on Monday: 20m of both; resolved by Bob an hour after asking.
    TicketRecord(
        created_at=at(0, 10),
        status="closed",
        kind="inquiry",
        priority="high",
        first_response_at=at(0, 10, 20),
        first_responder_name="Bob",
        resolved_at=at(0, 11),
        resolved_by_name="Bob",
    ),
    # A complaint without category, never answered: both targets missed.
    TicketRecord(
        created_at=at(0, 11),
        status="open",
        kind="complaint",
        priority="normal",
        first_response_breached_at=at(0, 15),
        resolution_breached_at=at(5, 12),
    ),
    # Answered by someone whose name was not recorded.
    TicketRecord(
        created_at=at(0, 12),
        status="answered",
        kind="complaint",
        priority="low",
        category="damaged",
        first_response_at=at(0, 14),
    ),
]


def test_report_counts_statuses_kinds_and_categories() -> None:
    report = build_report(RECORDS, CALENDAR)
    assert report.total == 4
    assert report.by_status == {
        "open": 1,
        "answered": 1,
        "resolved": 1,
        "reopened": 0,
        "closed": 1,
    }
    assert report.by_kind == {"complaint": 3, "inquiry": 1}
    assert report.by_topic == {"damaged": 2, "inquiry": 1, "uncategorised": 1}
    assert (report.first_response_breaches, report.resolution_breaches) == (1, 1)


def test_report_times_in_business_and_wall_clock_time() -> None:
    report = build_report(RECORDS, CALENDAR)
    first = report.first_response
    # Business: 1h, 20m, 2h -> median 1h, p90 (rank 3) 2h.
    assert first.count == 3
    assert first.business_median == timedelta(hours=1)
    assert first.business_p90 == timedelta(hours=2)
    # Wall clock: 4d 17h, 20m, 2h -> median 2h, p90 4d 17h.
    assert first.wall_median == timedelta(hours=2)
    assert first.wall_p90 == timedelta(days=4, hours=17)
    resolution = report.resolution
    # Business: Monday 17:30-18:00 + Saturday 10:00-13:30 = 4h; and 1h. Wall: 4d 20h; 1h.
    assert resolution.count == 2
    assert resolution.business_median == timedelta(hours=2, minutes=30)
    assert resolution.business_p90 == timedelta(hours=4)
    assert resolution.wall_median == timedelta(days=2, hours=10, minutes=30)
    assert resolution.wall_p90 == timedelta(days=4, hours=20)


def test_report_per_staff_member() -> None:
    staff = {s.name: s for s in build_report(RECORDS, CALENDAR).staff}
    assert list(staff) == ["(unknown)", "Bob", "Carol"]
    bob = staff["Bob"]
    assert (bob.first_answered, bob.resolved) == (2, 1)
    assert bob.median_first_response == timedelta(minutes=40)  # of 1h and 20m
    carol = staff["Carol"]
    assert (carol.first_answered, carol.resolved, carol.median_first_response) == (0, 1, None)
    assert staff["(unknown)"].median_first_response == timedelta(hours=2)


def test_report_lines_show_every_part() -> None:
    report = build_report(RECORDS, CALENDAR)
    text = "\n".join(report_lines(report, period_label(date(2026, 11, 23), None), LONDON))
    assert "Tickets created since 2026-11-23 (Europe/London): 4" in text
    assert "by status:    open 1, answered 1, resolved 1, reopened 0, closed 1" in text
    assert "by category:  damaged 2, inquiry 1, uncategorised 1" in text
    assert "SLA breaches: first response 1, resolution 1" in text
    first = next(line for line in text.splitlines() if line.startswith("First response"))
    assert " ".join(first.split()) == "First response 3 1h 00m 2h 00m 2h 00m 4d 17h"
