"""Survey pages: results over time, and the survey settings (admins change them).

Results are the survey report's figures (``build_survey_report`` over ``surveys_sent``, as
``carebot report surveys`` prints them) per week and month. Settings are checked by the
config loader's own rules, saved as overrides of config.toml and applied to the running
survey service at once (and at every start, by ``build_application``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup
from sqlite_utils import Database

from bot.config import SurveysConfig
from bot.dashboard_metrics import Bucket, monthly, percent, period_start, weekly
from bot.survey_report import RELIABLE_ANSWERS, SurveyStats, build_survey_report
from bot.survey_settings import (
    FIELDS,
    SECTION,
    SettingField,
    apply_saved_settings,
    effective_settings,
    overrides,
    with_values,
)
from carebot.dashboard.app import (
    Routes,
    account_of,
    dashboard_of,
    flash,
    form_of,
    render_page,
    see_other,
    text_field,
)
from carebot.dashboard.charts import Series, bar_chart, line_chart
from carebot.survey_views import nps_text
from carebot.survey_views import percent as percent_text
from carebot.survey_views import score as score_text
from storage.dashboard_reports import SurveyAnswer, recent_comments, recovery_answers
from storage.survey_report import surveys_sent

PERIODS = (30, 90, 365)
DEFAULT_PERIOD = 90
LISTED = 20


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class SurveyResults:
    days: int
    since: datetime
    total: SurveyStats
    weeks: list[Bucket]
    months: list[Bucket]
    recoveries: int  # answers in the period that opened a recovery ticket
    recovered: list[SurveyAnswer]  # the latest LISTED of them
    comments: list[SurveyAnswer]


def gather(db: Database, tz: ZoneInfo, now: datetime, days: int) -> SurveyResults:
    """Every figure of the results page (run off the event loop)."""
    since = period_start(now, tz, days)
    records = surveys_sent(db, since, None)
    recoveries, recovered = recovery_answers(db, since, LISTED)
    return SurveyResults(
        days=days,
        since=since,
        total=build_survey_report(records, None, tz).total,
        weeks=weekly(records, since, now, tz),
        months=monthly(records, since, now, tz),
        recoveries=recoveries,
        recovered=recovered,
        comments=recent_comments(db, since, LISTED),
    )


def _whole_percent(value: float) -> str:
    return f"{value:.0f}%"


def _signed(value: float) -> str:
    return f"{value:+.0f}" if round(value) else "0"


def percent_trend(
    title: str, name: str, buckets: list[Bucket], share: Callable[[SurveyStats], float | None]
) -> Markup:
    """A share (CSAT, response rate) per week or month, 0-100%; a quiet one is a gap."""
    return line_chart(
        title,
        [b.label for b in buckets],
        [Series(name, [percent(share(b.stats)) for b in buckets])],
        y_min=0,
        y_max=100,
        format_value=_whole_percent,
    )


def nps_trend(title: str, buckets: list[Bucket]) -> Markup:
    """NPS per week or month, -100 to +100; a quiet one is a gap."""
    return line_chart(
        title,
        [b.label for b in buckets],
        [Series("NPS", [b.stats.nps for b in buckets])],
        y_min=-100,
        y_max=100,
        format_value=_signed,
    )


def result_charts(results: SurveyResults) -> dict[str, Markup]:
    scores = results.total.scores
    answered = results.total.answered
    return {
        "csat_chart": percent_trend(
            "CSAT by week (share of 4 and 5 scores)", "CSAT", results.weeks, lambda s: s.csat
        ),
        "response_chart": percent_trend(
            "Response rate by week (answered / sent)",
            "Response rate",
            results.weeks,
            lambda s: s.response_rate,
        ),
        "nps_chart": nps_trend("NPS by month", results.months),
        "scores_chart": bar_chart(
            "Scores given (1-5)",
            [(f"{'★' * n} {n}", float(count)) for n, count in enumerate(scores, start=1)]
            if answered
            else [],
            notes=[f"{100 * count / answered:.0f}%" for count in scores] if answered else None,
        ),
    }


def period_of(request: web.Request) -> tuple[int, str | None]:
    """The ?days= period, and a message when it was not one on offer."""
    raw = request.query.get("days", "")
    if not raw:
        return DEFAULT_PERIOD, None
    if raw.isdigit() and int(raw) in PERIODS:
        return int(raw), None
    offered = ", ".join(str(p) for p in PERIODS)
    return DEFAULT_PERIOD, f"Period must be {offered} days; showing {DEFAULT_PERIOD} days."


async def results_page(request: web.Request) -> web.StreamResponse:
    """Survey results over time."""
    dashboard = dashboard_of(request)
    days, problem = period_of(request)
    zone, now = ZoneInfo(dashboard.config.shop.timezone), dashboard.now()
    results = await dashboard.off_loop(lambda db: gather(db, zone, now, days))
    return render_page(
        request,
        "surveys/results.html",
        status=400 if problem else 200,
        results=results,
        problem=problem,
        periods=PERIODS,
        zone=zone,
        reliable=RELIABLE_ANSWERS,
        percent=percent_text,
        nps_text=nps_text,
        score_text=score_text,
        **result_charts(results),
    )


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class SettingRow:
    field: SettingField
    value: Any  # the effective value (or what was typed, after a refused save)
    file_value: Any  # from config.toml (or its environment variable)
    overridden: bool
    error: str | None = None


def setting_rows(
    file: SurveysConfig,
    effective: SurveysConfig,
    typed: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> list[SettingRow]:
    typed, errors = typed or {}, errors or {}
    return [
        SettingRow(
            field=f,
            value=typed.get(f.key, getattr(effective, f.key)),
            file_value=getattr(file, f.key),
            overridden=getattr(effective, f.key) != getattr(file, f.key),
            error=errors.get(f.key),
        )
        for f in FIELDS
    ]


def shown(value: Any) -> str:
    """A setting as people read it: on/off for switches."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def render_settings(
    request: web.Request,
    effective: SurveysConfig,
    *,
    typed: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> web.Response:
    dashboard = dashboard_of(request)
    file = dashboard.config.surveys
    return render_page(
        request,
        "surveys/settings.html",
        status=400 if errors else 200,
        rows=setting_rows(file, effective, typed, errors),
        errors=errors or {},
        source=dashboard.config.source,
        source_name=Path(dashboard.config.source).name,
        overridden=bool(overrides(file, effective)),
        shown=shown,
    )


async def settings_page(request: web.Request) -> web.StreamResponse:
    """The survey settings the bot runs with (a form for admins)."""
    dashboard = dashboard_of(request)
    return render_settings(
        request, effective_settings(dashboard.config.surveys, dashboard.stores.settings)
    )


def _typed(form: Any) -> dict[str, str]:
    """The form as config text: switches are "true"/"false" (an unticked box is not sent)."""
    return {
        f.key: ("true" if f.key in form else "false")
        if f.kind == "switch"
        else text_field(form, f.key)
        for f in FIELDS
    }


def _changes(before: SurveysConfig, after: SurveysConfig) -> str:
    changed = [
        f"{f.key} {shown(getattr(before, f.key))} -> {shown(getattr(after, f.key))}"
        for f in FIELDS
        if getattr(before, f.key) != getattr(after, f.key)
    ]
    return ", ".join(changed) or "no change"


async def save_settings(request: web.Request) -> web.StreamResponse:
    """Check, save (only what differs from config.toml) and apply at once; nothing is saved
    if any value is refused."""
    dashboard = dashboard_of(request)
    file, store = dashboard.config.surveys, dashboard.stores.settings
    before = effective_settings(file, store)
    form = await form_of(request)
    if "reset" in form:
        effective = file
    else:
        typed = _typed(form)
        effective, errors = with_values(file, typed)
        if errors:
            return render_settings(request, before, typed=typed, errors=errors)
    store.save(SECTION, overrides(file, effective), account_of(request).id, dashboard.now())
    # The same function that applies them at start: the running bot uses them from now on.
    apply_saved_settings(dashboard.deps.services.surveys, file, store)
    dashboard.audit(request, "surveys.settings", _changes(before, effective))
    flash(
        request,
        "Survey settings reset to the config file's values and applied."
        if "reset" in form
        else "Survey settings saved and applied.",
    )
    raise see_other("/admin/surveys/settings")


def register(routes: Routes) -> None:
    routes.get("/surveys", results_page)
    routes.get("/surveys/settings", settings_page)
    routes.post("/surveys/settings", save_settings, access="admin")
