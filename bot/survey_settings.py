"""Survey settings changed on the dashboard: checked like config.toml, saved as overrides of
the file, and applied to the running survey service (at once, and again at every start).

Only the keys whose value differs from config.toml are saved, so a key set back to the
file's value follows the file again.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.config import SECTION_RANGES, ConfigError, SurveysConfig, override_section
from bot.surveys import SurveyService

logger = logging.getLogger("carebot.surveys")

SECTION = "surveys"  # the dashboard settings section (and the config.toml table)
SOURCE = "dashboard"  # where ConfigError says the values came from


@dataclass(frozen=True)
class SettingField:
    key: str  # as in config.toml [surveys]
    label: str
    hint: str
    kind: Literal["number", "switch", "choice", "text"]
    choices: tuple[str, ...] = ()

    @property
    def allowed(self) -> str:
        """ "0-365" for a bounded number (the loader's own range), else ""."""
        bounds = [(low, high) for key, low, high in SECTION_RANGES[SECTION] if key == self.key]
        return f"{bounds[0][0]}-{bounds[0][1]}" if bounds else ""


FIELDS = (
    SettingField("enabled", "Surveys on", "Send satisfaction surveys at all.", "switch"),
    SettingField(
        "send_after",
        "Send after the order is",
        '"delivered" (ingest API status) or "placed", for shops that send no delivery events.',
        "choice",
        typing.get_args(typing.get_type_hints(SurveysConfig)["send_after"]),
    ),
    SettingField("delay_days", "Delay (days)", "Days after that status.", "number"),
    SettingField(
        "quiet_hours",
        "Quiet hours",
        'Customer\'s local time when nothing is sent, like "21:00-09:00".',
        "text",
    ),
    SettingField(
        "min_days_between",
        "Days between purchase surveys",
        "At most one purchase survey per customer in this many days.",
        "number",
    ),
    SettingField("expire_days", "Closes after (days)", "Unanswered surveys close.", "number"),
    SettingField(
        "followup_max_score",
        "Ask what went wrong up to score",
        'Scores up to this get "what went wrong?" (0: never).',
        "number",
    ),
    SettingField(
        "recovery_max_score",
        "Recovery ticket up to score",
        "Scores up to this open a service-recovery ticket (0: never).",
        "number",
    ),
    SettingField(
        "nps_percent",
        "NPS question (% of high scores)",
        "Share of purchase surveys with a high score that also ask the 0-10 question.",
        "number",
    ),
    SettingField(
        "after_support",
        "Survey after support",
        "Ask about the support when a ticket is resolved.",
        "switch",
    ),
)


class SettingsStore(Protocol):
    def get(self, section: str) -> dict[str, Any]: ...


def with_values(
    base: SurveysConfig, values: Mapping[str, Any]
) -> tuple[SurveysConfig, dict[str, str]]:
    """``base`` with ``values`` applied key by key, each checked as config.toml is checked;
    the keys that failed, with why (those keep ``base``'s value)."""
    result, errors = base, {}
    for key, value in values.items():
        try:
            result = override_section(SECTION, result, {key: value}, source=SOURCE)
        except ConfigError as exc:
            errors[key] = str(exc).removeprefix(f"{SOURCE}: ").removeprefix(f"[{SECTION}] ")
    return result, errors


def overrides(file: SurveysConfig, effective: SurveysConfig) -> dict[str, Any]:
    """What to save: the values that differ from config.toml."""
    return {
        f.name: getattr(effective, f.name)
        for f in dataclasses.fields(SurveysConfig)
        if getattr(effective, f.name) != getattr(file, f.name)
    }


def effective_settings(file: SurveysConfig, store: SettingsStore) -> SurveysConfig:
    """config.toml with the saved overrides; a saved value that no longer passes the checks
    (a later version narrowed a range) is left out with a warning rather than stopping the bot."""
    effective, errors = with_values(file, store.get(SECTION))
    for key, why in errors.items():
        logger.warning("saved survey setting %s ignored: %s", key, why)
    return effective


def apply_saved_settings(
    service: SurveyService, file: SurveysConfig, store: SettingsStore
) -> SurveysConfig:
    """At start: the survey service runs with the settings saved on the dashboard."""
    effective = effective_settings(file, store)
    service.settings = effective.settings()
    return effective
