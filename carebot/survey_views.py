"""Text and CSV rows for the survey report."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.survey_report import RELIABLE_ANSWERS, SurveyReport, SurveyStats
from bot.surveys import SurveyKind

TOTAL = "total"
# (header, width) of the figures' columns, after the group's name.
COLUMNS = (
    ("sent", 6),
    ("answered", 10),
    ("response", 10),
    ("avg score", 11),
    ("CSAT", 8),
    *((str(n), 5) for n in range(1, 6)),
    ("NPS", 7),
    ("NPS answers", 13),
)
CSV_HEADER = (
    "sent",
    "answered",
    "response_rate_pct",
    "average_score",
    "csat_pct",
    "score_1",
    "score_2",
    "score_3",
    "score_4",
    "score_5",
    "nps",
    "nps_answers",
    "promoters",
    "detractors",
    "small_sample",
)


def surveys_noun(kind: SurveyKind | None) -> str:
    return f"{kind.value.capitalize()} surveys" if kind is not None else "Surveys"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def nps_text(value: float | None) -> str:
    """ "+25", "-40", "0"; "-" without NPS answers."""
    if value is None:
        return "-"
    whole = round(value)
    return f"{whole:+d}" if whole else "0"


def small_sample_note(stats: SurveyStats) -> str:
    answers = "answer" if stats.answered == 1 else "answers"
    return f"(small sample: {stats.answered} {answers}; under {RELIABLE_ANSWERS} is not reliable)"


def stats_cells(stats: SurveyStats) -> list[str]:
    return [
        str(stats.sent),
        str(stats.answered),
        percent(stats.response_rate),
        score(stats.average_score),
        percent(stats.csat),
        *(str(n) for n in stats.scores),
        nps_text(stats.nps),
        str(stats.nps_answers),
    ]


def survey_report_lines(
    report: SurveyReport, period: str, tz: ZoneInfo, kind: SurveyKind | None = None
) -> list[str]:
    noun = surveys_noun(kind)
    if report.empty:
        return [f"No {noun.lower()} sent {period} ({tz.key})."]
    label = report.by.value if report.by is not None else ""
    rows = [(g.name, g.stats) for g in report.groups] + [(TOTAL, report.total)]
    width = max(16, *(len(name) + 2 for name, _ in rows))
    lines = [
        f"{noun} sent {period} ({tz.key}): {report.total.sent}",
        "",
        f"{label:<{width}}" + "".join(f"{h:>{w}}" for h, w in COLUMNS),
    ]
    for name, stats in rows:
        line = f"{name:<{width}}" + "".join(
            f"{cell:>{w}}" for cell, (_, w) in zip(stats_cells(stats), COLUMNS, strict=True)
        )
        if stats.small_sample:
            line += "  " + small_sample_note(stats)
        lines.append(line)
    lines += [
        "(response: answered / sent; avg score and 1-5: of the answers; CSAT: share of 4 and 5)",
        "(NPS: % of 9-10 minus % of 0-6 among NPS answers)",
    ]
    return lines


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def survey_csv_rows(report: SurveyReport) -> list[list[str]]:
    """A header, one row per group and the total; rates in percent, empty when undefined."""

    def row(name: str, s: SurveyStats) -> list[str]:
        return [
            name,
            str(s.sent),
            str(s.answered),
            _number(None if s.response_rate is None else 100 * s.response_rate, 2),
            _number(s.average_score, 3),
            _number(None if s.csat is None else 100 * s.csat, 2),
            *(str(n) for n in s.scores),
            _number(s.nps, 2),
            str(s.nps_answers),
            str(s.promoters),
            str(s.detractors),
            "yes" if s.small_sample else "no",
        ]

    first = report.by.value if report.by is not None else "group"
    return [
        [first, *CSV_HEADER],
        *(row(g.name, g.stats) for g in report.groups),
        row(TOTAL, report.total),
    ]
