"""The survey pages: results over time from real answers in the sandbox, and settings that
are checked like config.toml, saved, applied to the running bot at once and after a restart."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import time, timedelta
from typing import Any

import pytest

from bot.config import ConfigError, SurveysConfig, config_from_dict
from bot.dashboard_metrics import period_start
from bot.survey_report import build_survey_report
from bot.survey_settings import FIELDS, effective_settings, with_values
from bot.surveys import QuietHours
from carebot.runtime import build_application
from carebot.survey_views import percent
from storage.survey_report import surveys_sent
from tests.e2e.conftest import ANN, WEI
from tests.e2e.test_surveys import delivered, invited, orders_of
from tests.web.conftest import Site, Visitor

# The settings form as the page sends it with config.toml's values (switches ticked).
SETTINGS_FORM = {
    "enabled": "true",
    "send_after": "delivered",
    "delay_days": "3",
    "quiet_hours": "21:00-09:00",
    "min_days_between": "14",
    "expire_days": "7",
    "followup_max_score": "3",
    "recovery_max_score": "2",
    "nps_percent": "30",
    "after_support": "true",
}


def settings_form(**changes: str | None) -> dict[str, Any]:
    """The form with some fields changed (None: a switch left unticked, so not sent)."""
    form: dict[str, Any] = {**SETTINGS_FORM, **changes}
    return {k: v for k, v in form.items() if v is not None}


def text(page_html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html)).split())


async def test_admin_saves_settings_they_apply_at_once_and_after_a_restart(
    site: Site, admin: Visitor
) -> None:
    care = site.desk.care
    page = await admin.get("/admin/surveys/settings")
    assert page.status == 200
    assert 'action="/admin/surveys/settings"' in page.text
    assert "overridden here" not in page.text

    saved = await admin.post(
        "/admin/surveys/settings",
        settings_form(delay_days="5", quiet_hours="22:00-08:00", nps_percent="100", enabled=None),
    )
    assert saved.status == 200
    assert saved.url.endswith("/admin/surveys/settings")
    assert "Survey settings saved and applied." in saved.text
    assert saved.text.count("overridden here") == 4  # each value that differs from the file
    assert re.search(r'name="delay_days" value="5"', saved.text)
    # Only what differs from config.toml is stored, and the running bot uses it at once.
    assert care.deps.dashboard.settings.get("surveys") == {
        "delay_days": 5,
        "enabled": False,
        "nps_percent": 100,
        "quiet_hours": "22:00-08:00",
    }
    running = care.deps.services.surveys.settings
    assert running.delay == timedelta(days=5)
    assert running.quiet_hours == QuietHours(time(22, 0), time(8, 0))
    assert running.nps_share == 1.0
    assert not running.enabled
    [entry] = [e for e in care.deps.dashboard.audit.recent() if e.action == "surveys.settings"]
    assert entry.who == "alex"
    assert "delay_days 3 -> 5" in entry.detail
    assert "enabled on -> off" in entry.detail

    # Surveys switched off: a delivery now plans no survey.
    await site.desk.say(ANN, "/start")
    delivered(care, orders_of(care, ANN.id)[0], site.clock.now())
    assert list(care.db.query("SELECT id FROM surveys")) == []

    # Switched back on (delay still 5 days): the next delivery's survey is due in 5 days.
    await admin.post(
        "/admin/surveys/settings",
        settings_form(delay_days="5", quiet_hours="22:00-08:00", nps_percent="100"),
    )
    assert care.deps.services.surveys.settings.enabled
    delivered(care, orders_of(care, ANN.id)[1], site.clock.now())
    [planned] = care.db.query("SELECT due_at FROM surveys")
    assert planned["due_at"] == "2026-11-28T10:00:00+00:00"  # now + 5 days

    # A restart over the same database (config.toml unchanged) runs with the saved values.
    rebuilt = build_application(
        care.config,
        clock=site.clock,
        bot_api_url=site.desk.sandbox.base_url,
        token=site.desk.sandbox.bot_token,
    )
    try:
        assert rebuilt.config.surveys == SurveysConfig()  # the file says 3 days...
        assert rebuilt.deps.services.surveys.settings == care.deps.services.surveys.settings
        assert rebuilt.deps.services.surveys.settings.delay == timedelta(days=5)  # ...saved: 5
    finally:
        rebuilt.db.close()

    # "Use config.toml values" drops every override.
    reset = await admin.post("/admin/surveys/settings", {"reset": "1"})
    assert "reset to the config file&#39;s values and applied" in reset.text
    assert "overridden here" not in reset.text
    assert care.deps.dashboard.settings.get("surveys") == {}
    assert care.deps.services.surveys.settings == SurveysConfig().settings()


async def test_invalid_values_are_refused_naming_the_field_and_nothing_is_saved(
    site: Site, admin: Visitor
) -> None:
    care = site.desk.care
    before = care.deps.services.surveys.settings
    await admin.get("/admin/surveys/settings")
    page = await admin.post(
        "/admin/surveys/settings",
        settings_form(delay_days="400", quiet_hours="25:00-09:00", nps_percent="many"),
    )
    assert page.status == 400
    seen = text(page.text)
    assert "Nothing was saved." in seen
    assert "delay_days must be between 0 and 365" in seen
    assert "quiet_hours: '25:00-09:00' is not a span like \"21:00-09:00\"" in seen
    assert "nps_percent must be a whole number, got 'many'" in seen
    # What was typed stays in the form, marked.
    assert 'name="nps_percent" value="many" inputmode="numeric" size="6" aria-invalid="true"' in (
        page.text
    )
    assert 'name="quiet_hours" value="25:00-09:00"' in page.text
    assert care.deps.dashboard.settings.get("surveys") == {}
    assert care.deps.services.surveys.settings == before
    assert not [e for e in care.deps.dashboard.audit.recent() if e.action == "surveys.settings"]
    # A forged choice is refused the same way.
    forged = await admin.post("/admin/surveys/settings", settings_form(send_after="shipped"))
    assert forged.status == 400
    assert 'send_after must be "delivered" or "placed", got \'shipped\'' in text(forged.text)
    assert care.deps.dashboard.settings.get("surveys") == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("delay_days", 366),
        ("expire_days", 0),
        ("followup_max_score", 6),
        ("nps_percent", -1),
        ("quiet_hours", "09:00-09:00"),
        ("enabled", "maybe"),
    ],
)
def test_the_dashboard_refuses_exactly_what_config_toml_refuses(key: str, value: Any) -> None:
    raw = {"database": {"path": "x.db"}, "shop": {"name": "S", "timezone": "Europe/London"}}
    with pytest.raises(ConfigError) as from_file:
        config_from_dict({**raw, "surveys": {key: value}}, source="carebot.toml")
    _, errors = with_values(SurveysConfig(), {key: str(value)})
    assert list(errors) == [key]
    assert str(from_file.value).endswith(errors[key])


def test_every_survey_setting_of_config_toml_is_on_the_page() -> None:
    assert [f.key for f in FIELDS] == [f.name for f in dataclasses.fields(SurveysConfig)]


def test_a_saved_value_that_no_longer_passes_is_left_out_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Saved:
        def get(self, section: str) -> dict[str, Any]:
            return {"delay_days": 999, "nps_percent": 50}

    effective = effective_settings(SurveysConfig(), Saved())
    assert effective == dataclasses.replace(SurveysConfig(), nps_percent=50)
    assert "saved survey setting delay_days ignored" in caplog.text


async def test_staff_read_results_and_settings_but_cannot_change_them(
    site: Site, staff: Visitor
) -> None:
    assert (await staff.get("/admin/surveys")).status == 200
    page = await staff.get("/admin/surveys/settings")
    assert page.status == 200
    assert "Only admins change these." in page.text
    assert '<form method="post" action="/admin/surveys/settings"' not in page.text
    assert "21:00-09:00" in page.text
    refused = await staff.post("/admin/surveys/settings", settings_form(delay_days="9"))
    assert refused.status == 403
    assert site.desk.care.deps.dashboard.settings.get("surveys") == {}
    assert site.desk.care.deps.services.surveys.settings.delay == timedelta(days=3)


async def test_results_show_charts_recovery_tickets_and_escaped_comments(
    site: Site, admin: Visitor
) -> None:
    desk = site.desk
    empty = await admin.get("/admin/surveys")
    assert empty.status == 200
    assert "No data yet: no comments in the period." in empty.text

    await desk.say(ANN, "/start")
    await desk.say(WEI, "/start")
    question = await invited(desk, site.clock, ANN)
    await desk.press(ANN, question, "2")  # low: a recovery ticket, and "what went wrong?"
    await desk.say(ANN, "<b>Box</b> crushed & two mugs broke")
    question = await invited(desk, site.clock, WEI)
    await desk.press(WEI, question, "5")

    await admin.login("alex")  # six days later: the session from before has expired
    page = await admin.get("/admin/surveys?days=30")
    assert page.status == 200
    since = period_start(site.clock.now(), desk.care.config.business_calendar().tz, 30)
    tz = desk.care.config.business_calendar().tz
    report = build_survey_report(surveys_sent(desk.care.db, since, None), None, tz).total
    seen = text(page.text)
    assert f"CSAT {percent(report.csat)} share of 4 and 5" in seen
    assert percent(report.csat) == "50.0%"
    assert "Response rate 100.0% 2 answered of 2 sent" in seen
    assert "Became recovery tickets 1" in seen
    assert page.text.count("<svg") == 4  # CSAT, response rate, NPS, score distribution
    assert "Scores given (1-5)" in page.text
    assert 'href="/admin/tickets/1"' in page.text
    customer = desk.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert f'href="/admin/customers/{customer.id}"' in page.text
    # The customer's words are shown as text, never as markup.
    assert "&lt;b&gt;Box&lt;/b&gt; crushed &amp; two mugs broke" in page.text
    assert "<b>Box</b>" not in page.text

    wrong = await admin.get("/admin/surveys?days=7")
    assert wrong.status == 400
    assert "Period must be 30, 90, 365 days; showing 90 days." in wrong.text
