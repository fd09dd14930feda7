"""Survey reports on hand-made records: response rate, CSAT, NPS, groups, small samples."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.survey_report import (
    GroupBy,
    SurveyRecord,
    SurveyStats,
    build_survey_report,
)
from bot.surveys import SurveyKind
from carebot.survey_views import nps_text, survey_csv_rows, survey_report_lines
from carebot.ticket_views import period_label

LONDON = ZoneInfo("Europe/London")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 10, tzinfo=UTC)


def purchase(
    score: int | None = None, nps: int | None = None, *, day: int = 0, category: str | None = None
) -> SurveyRecord:
    return SurveyRecord(
        kind=SurveyKind.PURCHASE,
        sent_at=MONDAY + timedelta(days=day),
        score=score,
        nps=nps,
        category=category,
    )


def support(
    score: int | None = None, *, staff: str | None = "Bob", category: str | None = None
) -> SurveyRecord:
    return SurveyRecord(
        kind=SurveyKind.SUPPORT, sent_at=MONDAY, score=score, staff_name=staff, category=category
    )


def test_response_rate_average_and_distribution() -> None:
    stats = SurveyStats.of([purchase(5), purchase(4), purchase(2), purchase(), support(5)])
    assert (stats.sent, stats.answered) == (5, 4)
    assert stats.response_rate == 0.8
    assert stats.scores == (0, 1, 0, 1, 2)
    assert stats.average_score == 4.0  # (5 + 4 + 2 + 5) / 4


@pytest.mark.parametrize(
    ("scores", "csat"),
    [
        ([5, 5, 5], 1.0),
        ([4, 3], 0.5),  # 3 is not satisfied
        ([1, 2, 3], 0.0),
        ([5, 4, 3, 2, 1], 0.4),
    ],
)
def test_csat_is_the_share_of_fours_and_fives(scores: list[int], csat: float) -> None:
    assert SurveyStats.of(purchase(s) for s in scores).csat == csat


@pytest.mark.parametrize(
    ("values", "nps", "promoters", "detractors"),
    [
        ([10, 9, 9, 9], 100.0, 4, 0),
        ([0, 6, 5], -100.0, 0, 3),
        ([7, 8], 0.0, 0, 0),  # passives only
        ([10, 9, 8, 7, 6], 20.0, 2, 1),  # 40% promoters - 20% detractors
        ([10, 6, 8], 0.0, 1, 1),
    ],
)
def test_nps_is_promoters_minus_detractors(
    values: list[int], nps: float, promoters: int, detractors: int
) -> None:
    stats = SurveyStats.of([purchase(5, v) for v in values] + [purchase(4)])
    assert stats.nps_answers == len(values)  # the answer without NPS does not count
    assert (stats.promoters, stats.detractors) == (promoters, detractors)
    assert stats.nps == pytest.approx(nps)


def test_nothing_answered_has_no_figures() -> None:
    stats = SurveyStats.of([purchase(), purchase()])
    assert (stats.sent, stats.answered, stats.response_rate) == (2, 0, 0.0)
    assert (stats.average_score, stats.csat, stats.nps) == (None, None, None)
    assert stats.small_sample


def test_empty_input() -> None:
    report = build_survey_report([], GroupBy.CATEGORY, LONDON)
    assert report.empty
    assert report.groups == ()
    total = report.total
    assert (total.sent, total.answered, total.scores, total.nps_answers) == (0, 0, (0,) * 5, 0)
    assert (total.response_rate, total.average_score, total.csat, total.nps) == (None,) * 4
    period = period_label(date(2026, 11, 23), date(2026, 11, 30))
    assert survey_report_lines(report, period, LONDON) == [
        "No surveys sent 2026-11-23 to 2026-11-29 (Europe/London)."
    ]
    assert survey_report_lines(report, period, LONDON, SurveyKind.SUPPORT) == [
        "No support surveys sent 2026-11-23 to 2026-11-29 (Europe/London)."
    ]
    assert survey_csv_rows(report)[1:] == [
        ["total", "0", "0", "", "", "", "0", "0", "0", "0", "0", "", "0", "0", "0", "yes"]
    ]


def test_small_sample_below_thirty_answers() -> None:
    assert SurveyStats.of([purchase(5)] * 29 + [purchase()] * 5).small_sample
    assert not SurveyStats.of([purchase(5)] * 30).small_sample
    report = build_survey_report(
        [purchase(5, category="mugs")] * 30 + [purchase(1, category="cards")],
        GroupBy.CATEGORY,
        LONDON,
    )
    lines = survey_report_lines(report, "since 2026-11-23", LONDON)
    rows = {line.split()[0]: line for line in lines[3:6]}
    assert list(rows) == ["mugs", "cards", "total"]
    assert "small sample" not in rows["mugs"] + rows["total"]
    assert rows["cards"].endswith("  (small sample: 1 answer; under 30 is not reliable)")
    assert [row[-1] for row in survey_csv_rows(report)] == ["small_sample", "no", "yes", "no"]


def test_weeks_are_iso_weeks_in_the_shop_timezone() -> None:
    # Sunday 29 November 17:00 UTC is Monday 01:00 in Shanghai: week 49 there, 48 in London.
    sunday = SurveyRecord(kind="purchase", sent_at=datetime(2026, 11, 29, 17, tzinfo=UTC))
    new_year = SurveyRecord(kind="purchase", sent_at=datetime(2027, 1, 1, 12, tzinfo=UTC))
    records = [purchase(4), sunday, new_year]
    assert [g.name for g in build_survey_report(records, GroupBy.WEEK, LONDON).groups] == [
        "2026-W48",
        "2026-W53",  # 1 January 2027 is a Friday: still in 2026's last ISO week
    ]
    shanghai = build_survey_report(records, GroupBy.WEEK, SHANGHAI)
    assert [(g.name, g.stats.sent) for g in shanghai.groups] == [
        ("2026-W48", 1),
        ("2026-W49", 1),
        ("2026-W53", 1),
    ]


def test_categories_default_and_order() -> None:
    records = [
        purchase(5, category="mugs"),
        purchase(4),
        support(3, category="damaged"),
        support(2),
        purchase(1, category="cards"),
        purchase(5, category="cards"),
    ]
    groups = build_survey_report(records, GroupBy.CATEGORY, LONDON).groups
    # Most sent first, then by name; no category: "uncategorised" or "inquiry".
    assert [(g.name, g.stats.sent) for g in groups] == [
        ("cards", 2),
        ("damaged", 1),
        ("inquiry", 1),
        ("mugs", 1),
        ("uncategorised", 1),
    ]


def test_staff_of_support_surveys() -> None:
    records = [
        purchase(5),
        support(4, staff="carol"),
        support(2, staff="Bob"),
        support(5, staff=None),
    ]
    groups = build_survey_report(records, GroupBy.STAFF, LONDON).groups
    assert [(g.name, g.stats.answered) for g in groups] == [
        ("(unknown)", 1),
        ("-", 1),
        ("Bob", 1),
        ("carol", 1),
    ]


def test_no_grouping_gives_the_total_only() -> None:
    report = build_survey_report([purchase(5), support(1)], None, LONDON)
    assert report.groups == ()
    assert report.total.sent == 2
    lines = survey_report_lines(report, "on 2026-11-23", LONDON)
    assert lines[0] == "Surveys sent on 2026-11-23 (Europe/London): 2"
    assert lines[3].split()[:9] == ["total", "2", "2", "100.0%", "3.00", "50.0%", "1", "0", "0"]
    assert survey_csv_rows(report)[0][0] == "group"


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0.0, "0"), (-0.4, "0"), (33.333, "+33"), (-40.0, "-40"), (100.0, "+100")],
)
def test_nps_text(value: float | None, text: str) -> None:
    assert nps_text(value) == text


def test_months_are_calendar_months_in_the_shop_timezone() -> None:
    # 30 November 17:00 UTC is already 1 December in Shanghai.
    month_end = SurveyRecord(kind="purchase", sent_at=datetime(2026, 11, 30, 17, tzinfo=UTC))
    january = SurveyRecord(kind="purchase", sent_at=datetime(2027, 1, 1, 12, tzinfo=UTC))
    records = [january, purchase(4), month_end]
    london = build_survey_report(records, GroupBy.MONTH, LONDON)
    assert [(g.name, g.stats.sent) for g in london.groups] == [("2026-11", 2), ("2027-01", 1)]
    shanghai = build_survey_report(records, GroupBy.MONTH, SHANGHAI)
    assert [(g.name, g.stats.sent) for g in shanghai.groups] == [
        ("2026-11", 1),
        ("2026-12", 1),
        ("2027-01", 1),
    ]
