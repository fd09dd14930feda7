"""Typed, frozen configuration loaded from TOML, with secrets from the environment.

Every value can be overridden by an environment variable named ``CAREBOT_<SECTION>_<KEY>``
(for example ``CAREBOT_TELEGRAM_TOKEN``), so secrets never have to live in the file.
A wrong, unknown or missing key raises :class:`ConfigError` with one line naming the key
and the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.campaigns import CampaignSettings
from bot.catalog import DEFAULT_CATEGORY, CategoryRules, parse_category_rules
from bot.hours import WeeklyHours, parse_weekly_hours
from bot.sla import (
    DEFAULT_FIRST_RESPONSE,
    DEFAULT_RESOLUTION,
    BusinessCalendar,
    Holidays,
    Priority,
    Targets,
    parse_holidays,
    parse_targets,
)
from bot.surveys import SurveySettings, parse_quiet_hours
from bot.tickets import DEFAULT_CATEGORIES, SlaPolicy, TicketSettings

SUPPORTED_LANGUAGES = ("en", "zh")
ENV_PREFIX = "CAREBOT_"
ENV_CONFIG_FILE = "CAREBOT_CONFIG"
MIN_WEBHOOK_SECRET = 32


class ConfigError(Exception):
    """A configuration problem, phrased as one line naming the key and the file."""


@dataclass(frozen=True)
class TelegramConfig:
    token: str = ""
    base_url: str = ""
    username: str = ""
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_secret: str = ""
    max_retries: int = 3
    # Seconds to wait for Telegram's answer to a request before it counts as timed out.
    read_timeout: float = 5.0


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    # The admin and staff dashboard at /admin (served whenever the web server runs).
    dashboard: bool = True
    # Address people open the dashboard at (behind a TLS proxy: https://...). Used for the
    # one-time login links /login sends; with https, session cookies are marked Secure.
    public_url: str = ""
    # A dashboard session ends this many hours after login, or after idle_minutes unused.
    session_hours: int = 12
    idle_minutes: int = 120

    @property
    def base_url(self) -> str:
        """Where the dashboard is reached: ``public_url``, else the address it listens on."""
        host = self.host if self.host not in {"0.0.0.0", "::", ""} else "127.0.0.1"
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")


@dataclass(frozen=True)
class DatabaseConfig:
    path: str


@dataclass(frozen=True)
class StaffConfig:
    chat_id: int = 0
    admins: tuple[int, ...] = ()
    members: tuple[int, ...] = ()
    language: str = ""
    sign_replies: bool = False

    def is_staff(self, user_id: int) -> bool:
        """Configured as staff. With no ``members`` list, anyone in the staff chat is staff."""
        return user_id in self.admins or user_id in self.members

    @property
    def members_listed(self) -> bool:
        return bool(self.members)


@dataclass(frozen=True)
class ShopConfig:
    name: str
    timezone: str
    default_language: str = "en"
    currency: str = "GBP"
    contact: str = ""
    support_hours: WeeklyHours = field(default_factory=WeeklyHours.always_closed)
    # Where most customers live (ISO 3166 code): occasion dates for customers of unknown country.
    country: str = "GB"
    # The shop's web address, linked from campaign reminders ("Show me").
    url: str = ""


@dataclass(frozen=True)
class LinksConfig:
    token_ttl_hours: int = 72


@dataclass(frozen=True)
class ApiConfig:
    """The signed ingest API (``/api/v1``) that shops call with customers and orders."""

    enabled: bool = False
    secret: str = ""
    max_body_bytes: int = 1_048_576
    max_clock_skew_seconds: int = 300


@dataclass(frozen=True)
class SlaConfig:
    """Service-level targets, counted in business hours (support hours, minus holidays)."""

    first_response: Targets = field(default_factory=Targets)
    resolution: Targets = field(default_factory=Targets)
    holidays: Holidays = field(default_factory=Holidays)

    @property
    def first_response_targets(self) -> dict[Priority, timedelta]:
        return self.first_response.merged(DEFAULT_FIRST_RESPONSE)

    @property
    def resolution_targets(self) -> dict[Priority, timedelta]:
        return self.resolution.merged(DEFAULT_RESOLUTION)


@dataclass(frozen=True)
class CannedReplies:
    """Canned staff replies from config: name -> text with {{ variables }}."""

    texts: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, str]:
        return dict(self.texts)


@dataclass(frozen=True)
class TicketsConfig:
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    reopen_days: int = 7
    canned: CannedReplies = field(default_factory=CannedReplies)


@dataclass(frozen=True)
class SurveysConfig:
    enabled: bool = True
    send_after: Literal["delivered", "placed"] = "delivered"
    delay_days: int = 3
    quiet_hours: str = "21:00-09:00"
    min_days_between: int = 14
    expire_days: int = 7
    followup_max_score: int = 3
    recovery_max_score: int = 2
    nps_percent: int = 30
    after_support: bool = True

    def settings(self) -> SurveySettings:
        return SurveySettings(
            enabled=self.enabled,
            delay=timedelta(days=self.delay_days),
            send_after=self.send_after,
            quiet_hours=parse_quiet_hours(self.quiet_hours),
            min_gap=timedelta(days=self.min_days_between),
            expire_after=timedelta(days=self.expire_days),
            followup_max_score=self.followup_max_score,
            recovery_max_score=self.recovery_max_score,
            nps_share=self.nps_percent / 100,
            after_support=self.after_support,
        )


@dataclass(frozen=True)
class CampaignsConfig:
    # Reminders per second over all chats (Telegram allows about 30 for broadcasts; the rest
    # is left for replies). One chat never gets two messages within a second.
    messages_per_second: int = 25
    # Frequency cap: nobody gets a reminder within this many days of the previous one.
    min_days_between: int = 30
    # Local hours when no reminder goes out (one started late waits for the morning).
    quiet_hours: str = "21:00-09:00"
    # A recipient's order within this many days of the reminder counts as its conversion.
    attribution_days: int = 14
    # Rendered examples shown by a preview.
    preview_samples: int = 5

    def settings(self) -> CampaignSettings:
        return CampaignSettings(
            min_gap=timedelta(days=self.min_days_between),
            quiet_hours=parse_quiet_hours(self.quiet_hours),
            attribution=timedelta(days=self.attribution_days),
            messages_per_second=self.messages_per_second,
            preview_samples=self.preview_samples,
        )


@dataclass(frozen=True)
class CatalogConfig:
    default_category: str = DEFAULT_CATEGORY
    categories: CategoryRules = field(default_factory=CategoryRules.defaults)

    @property
    def rules(self) -> CategoryRules:
        return dataclasses.replace(self.categories, default=self.default_category)


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig
    shop: ShopConfig
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    web: WebConfig = field(default_factory=WebConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)
    tickets: TicketsConfig = field(default_factory=TicketsConfig)
    surveys: SurveysConfig = field(default_factory=SurveysConfig)
    campaigns: CampaignsConfig = field(default_factory=CampaignsConfig)
    source: str = "<defaults>"

    @property
    def uses_sandbox(self) -> bool:
        """No token and no custom server: the bot can only talk to the local sandbox."""
        return not self.telegram.token

    def business_calendar(self) -> BusinessCalendar:
        """Support hours in the shop's timezone, minus the configured holidays."""
        return BusinessCalendar(
            self.shop.support_hours, ZoneInfo(self.shop.timezone), self.sla.holidays.days
        )

    def sla_policy(self) -> SlaPolicy:
        return SlaPolicy(
            self.business_calendar(),
            self.sla.first_response_targets,
            self.sla.resolution_targets,
        )

    def ticket_settings(self) -> TicketSettings:
        return TicketSettings(
            categories=self.tickets.categories, reopen_days=self.tickets.reopen_days
        )

    @property
    def staff_language(self) -> str:
        return self.staff.language or self.shop.default_language

    @property
    def web_server_needed(self) -> bool:
        return self.web.enabled or self.telegram.mode == "webhook" or self.api.enabled


_SECTIONS: dict[str, type] = {
    "telegram": TelegramConfig,
    "web": WebConfig,
    "database": DatabaseConfig,
    "staff": StaffConfig,
    "shop": ShopConfig,
    "links": LinksConfig,
    "api": ApiConfig,
    "catalog": CatalogConfig,
    "sla": SlaConfig,
    "tickets": TicketsConfig,
    "surveys": SurveysConfig,
    "campaigns": CampaignsConfig,
}


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read a TOML file, apply environment overrides, validate, and return a frozen Config."""
    file = Path(path)
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found (copy config.example.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return config_from_dict(raw, source=str(file), env=env)


def config_from_dict(
    raw: Mapping[str, Any], *, source: str = "<dict>", env: Mapping[str, str] | None = None
) -> Config:
    env = {} if env is None else env
    known = {ENV_CONFIG_FILE} | {
        f"{ENV_PREFIX}{section}_{f.name}".upper()
        for section, cls in _SECTIONS.items()
        for f in dataclasses.fields(cls)
    }
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known:
            raise ConfigError(f"{source}: unknown environment variable {name}")
    for section in raw:
        if section not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}]")
    built: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        built[section] = _build_section(section, cls, values, source, env)
    config = Config(source=source, **built)
    _check_cross_field_rules(config)
    return config


def _build_section(
    section: str, cls: type, values: Mapping[str, Any], source: str, env: Mapping[str, str]
) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"{source}: unknown key [{section}] {key}")
    kwargs: dict[str, Any] = {}
    for name, spec in fields.items():
        where = f"[{section}] {name}"
        env_name = f"{ENV_PREFIX}{section}_{name}".upper()
        if env.get(env_name):
            value = _from_env(env[env_name], hints[name])
            kwargs[name] = _coerce(value, hints[name], f"{env_name} (for {where})", source)
        elif name in values:
            kwargs[name] = _coerce(values[name], hints[name], where, source)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing key {where}")
    return cls(**kwargs)


def _from_env(text: str, hint: Any) -> Any:
    """Environment values are strings; turn them into what the TOML would have held."""
    if hint is bool:
        word = text.strip().lower()
        if word in {"1", "true", "yes", "on"}:
            return True
        if word in {"0", "false", "no", "off"}:
            return False
        return text  # not a boolean: reported by _coerce
    if hint is int or hint is float:
        try:
            return hint(text)
        except ValueError:
            return text
    if typing.get_origin(hint) is tuple:
        return [int(p) if p.strip().lstrip("-").isdigit() else p for p in text.split(",") if p]
    return text


# Config values with their own syntax: (TOML shape, example for the error, parser that
# raises ValueError with the reason).
_STRUCTURED: dict[Any, tuple[type, str, Callable[[Any], Any]]] = {
    WeeklyHours: (Mapping, 'a table like { mon = "09:00-18:00" }', parse_weekly_hours),
    CategoryRules: (
        Mapping,
        'a table like { kitchen = ["MUG", "TEA"] }',
        lambda v: parse_category_rules(v, DEFAULT_CATEGORY),
    ),
    Targets: (
        Mapping,
        'a table like { urgent = "1h", normal = "4h" }',
        lambda v: Targets(tuple(parse_targets(v, {}).items())),
    ),
    Holidays: (list, 'a list of dates like ["2026-12-25"]', lambda v: Holidays(parse_holidays(v))),
    CannedReplies: (
        Mapping,
        'a table like { thanks = "Thank you, {{ name }}!" }',
        lambda v: CannedReplies(parse_canned_replies(v)),
    ),
}


def _coerce(value: Any, hint: Any, where: str, source: str) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {where} must be {expected}, got {value!r}")

    origin = typing.get_origin(hint)
    if hint in _STRUCTURED:
        shape, example, parse = _STRUCTURED[hint]
        if not isinstance(value, shape):
            raise fail(example)
        try:
            return parse(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from None
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise fail(" or ".join(f'"{a}"' for a in allowed))
        return value
    if origin is tuple and typing.get_args(hint)[0] is str:
        if not isinstance(value, list) or not value or not all(_is_slug(v) for v in value):
            raise fail('a non-empty list of names like ["damaged", "late"]')
        return tuple(value)
    if origin is tuple:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise fail("a list of whole numbers (Telegram user ids)")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail("a whole number")
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise fail("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if origin in (types.UnionType, typing.Union):  # pragma: no cover - no optional keys yet
        return value
    raise TypeError(f"unsupported config type {hint!r} for {where}")


def _check_cross_field_rules(config: Config) -> None:
    source = config.source
    if not is_place_timezone(config.shop.timezone):
        raise ConfigError(
            f'{source}: [shop] timezone must be an IANA zone like "Europe/London", '
            f"got {config.shop.timezone!r}"
        )
    if config.shop.default_language not in SUPPORTED_LANGUAGES:
        raise ConfigError(
            f"{source}: [shop] default_language must be one of {', '.join(SUPPORTED_LANGUAGES)}, "
            f"got {config.shop.default_language!r}"
        )
    if not config.database.path:
        raise ConfigError(f"{source}: [database] path must not be empty")
    if config.telegram.mode == "webhook":
        url = urlparse(config.telegram.webhook_url)
        local = url.scheme == "http" and url.hostname in {"127.0.0.1", "localhost", "::1"}
        if not (url.scheme == "https" or local) or not url.hostname:
            raise ConfigError(
                f"{source}: [telegram] webhook_url must be an https:// URL in webhook mode "
                "(http:// only for a local Bot API server on 127.0.0.1)"
            )
        secret = config.telegram.webhook_secret
        allowed = all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        if not (MIN_WEBHOOK_SECRET <= len(secret) <= 256) or not allowed:
            raise ConfigError(
                f"{source}: [telegram] webhook_secret must be {MIN_WEBHOOK_SECRET}-256 characters "
                "of A-Z, a-z, 0-9, _ and - in webhook mode (e.g. `openssl rand -hex 16`; or set "
                "CAREBOT_TELEGRAM_WEBHOOK_SECRET)"
            )
    if not 0 <= config.telegram.max_retries <= 10:
        raise ConfigError(f"{source}: [telegram] max_retries must be between 0 and 10")
    if not 0.1 <= config.telegram.read_timeout <= 300:
        raise ConfigError(f"{source}: [telegram] read_timeout must be between 0.1 and 300 seconds")
    if not 1 <= config.web.port <= 65535 and config.web_server_needed:
        raise ConfigError(f"{source}: [web] port must be between 1 and 65535")
    public = urlparse(config.web.public_url)
    if config.web.public_url and (public.scheme not in {"http", "https"} or not public.hostname):
        raise ConfigError(
            f"{source}: [web] public_url must be an http(s):// address, "
            f"got {config.web.public_url!r}"
        )
    if not 1 <= config.web.session_hours <= 24 * 30:
        raise ConfigError(f"{source}: [web] session_hours must be between 1 and 720")
    if not 5 <= config.web.idle_minutes <= 24 * 60:
        raise ConfigError(f"{source}: [web] idle_minutes must be between 5 and 1440")
    if config.api.enabled and len(config.api.secret) < MIN_WEBHOOK_SECRET:
        raise ConfigError(
            f"{source}: [api] secret must be at least {MIN_WEBHOOK_SECRET} characters when the "
            "API is enabled (e.g. `openssl rand -hex 32`; or set CAREBOT_API_SECRET)"
        )
    if config.api.max_body_bytes < 1024:
        raise ConfigError(f"{source}: [api] max_body_bytes must be at least 1024")
    if config.staff.language and config.staff.language not in SUPPORTED_LANGUAGES:
        raise ConfigError(
            f"{source}: [staff] language must be one of {', '.join(SUPPORTED_LANGUAGES)}, "
            f"got {config.staff.language!r}"
        )
    if config.staff.chat_id > 0:
        raise ConfigError(
            f"{source}: [staff] chat_id must be a group id (negative, like -1001234567890), "
            f"got {config.staff.chat_id}"
        )
    for name, ranges in SECTION_RANGES.items():
        _check_ranges(source, name, getattr(config, name), ranges)
    if not re.fullmatch(r"[A-Z]{2}", config.shop.country):
        raise ConfigError(
            f'{source}: [shop] country must be a two-letter ISO code like "GB", '
            f"got {config.shop.country!r}"
        )
    shop_url = urlparse(config.shop.url)
    if config.shop.url and (shop_url.scheme not in {"http", "https"} or not shop_url.hostname):
        raise ConfigError(
            f"{source}: [shop] url must be an http(s):// address, got {config.shop.url!r}"
        )
    if not 1 <= config.tickets.reopen_days <= 365:
        raise ConfigError(f"{source}: [tickets] reopen_days must be between 1 and 365")
    if config.links.token_ttl_hours < 1:
        raise ConfigError(f"{source}: [links] token_ttl_hours must be at least 1")


# (key, lowest, highest) of each section with quiet hours and bounded numbers; shared by the
# loader and by settings saved on the dashboard (``override_section``).
SECTION_RANGES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "surveys": (
        ("delay_days", 0, 365),
        ("min_days_between", 0, 365),
        ("expire_days", 1, 90),
        ("followup_max_score", 0, 5),
        ("recovery_max_score", 0, 5),
        ("nps_percent", 0, 100),
    ),
    "campaigns": (
        ("messages_per_second", 1, 30),
        ("min_days_between", 0, 365),
        ("attribution_days", 1, 90),
        ("preview_samples", 1, 20),
    ),
}


def override_section(section: str, base: Any, values: Mapping[str, Any], *, source: str) -> Any:
    """``base`` (a section of a loaded Config) with ``values`` applied, checked exactly as the
    loader checks that section: known keys, types, ranges. Text is read the way environment
    values are ("5", "true"), so form fields can be passed as typed. Raises ConfigError."""
    cls = _SECTIONS[section]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key [{section}] {key}")
        raw = _from_env(value, hints[key]) if isinstance(value, str) else value
        changes[key] = _coerce(raw, hints[key], f"[{section}] {key}", source)
    updated = dataclasses.replace(base, **changes)
    if section in SECTION_RANGES:
        _check_ranges(source, section, updated, SECTION_RANGES[section])
    return updated


def _check_ranges(
    source: str, name: str, section: Any, ranges: tuple[tuple[str, int, int], ...]
) -> None:
    """A section's quiet hours parse and its numbers lie within their ranges."""
    try:
        parse_quiet_hours(section.quiet_hours)
    except ValueError as exc:
        raise ConfigError(f"{source}: [{name}] quiet_hours: {exc}") from None
    for key, low, high in ranges:
        if not low <= getattr(section, key) <= high:
            raise ConfigError(f"{source}: [{name}] {key} must be between {low} and {high}")


def _is_slug(value: object) -> bool:
    return isinstance(value, str) and _SLUG.fullmatch(value) is not None


_SLUG = re.compile(r"[a-z][a-z0-9_]{0,31}")


def parse_canned_replies(table: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``{thanks = "..."}``: names are lowercase words (what staff type after /canned)."""
    replies = []
    for name, text in table.items():
        if not _is_slug(name):
            raise ValueError(f"{name!r} must be a lowercase name like thanks or refund_sent")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name} must be a non-empty string")
        replies.append((name, text))
    return tuple(replies)


def is_place_timezone(name: str) -> bool:
    """An IANA zone for a place ("Europe/Paris") or UTC; not "localtime" or "Factory"."""
    if name != "UTC" and "/" not in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def resolve_database_path(config: Config) -> Path:
    """Relative database paths are taken relative to the config file, not the working dir."""
    path = Path(config.database.path)
    if path.is_absolute() or config.source.startswith("<"):
        return path
    return Path(config.source).resolve().parent / path
