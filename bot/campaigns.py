"""Reminder campaigns: what an admin configures, who receives it, and when.

A campaign names an occasion (``mothers-day``, ``christmas``, a custom one...), how many days
before it to send, a local send time, message templates per language, suggestion settings and
audience rules. Its life::

    draft --start--> scheduled --(send window opens)--> running --(all sent)--> done
                 \\____________ pause/resume ____________/     cancel from any live state

Each recipient's reminder is one row of the delivery ledger, planned when the send window
opens: their occasion date (per country: Mothering Sunday in the UK is not Mother's Day in the
US), minus ``days_before``, at ``send_time`` in their own timezone (else the shop's).

Audience rules combine (all given rules must hold):

    occasion_buyers_days    bought in the N days before the occasion in earlier years
    occasion_min_years      ... in at least this many different earlier years (default 1)
    categories              bought from any of these product categories
    segments                RFM segment is one of these
    key_customers           only key customers (the top spenders making 80% of revenue)
    last_purchase_within_days / last_purchase_not_within_days   recency, e.g. win-back
    min_orders              at least this many orders
    countries               customer country is one of these (ISO codes)

Always excluded, whatever the rules (checked when planned and again just before sending):
not on Telegram, opted out of reminders, blocked the bot, banned, an open complaint, a
reminder within the frequency cap, or "Not this year" already said for this occasion and year.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.surveys import QuietHours


class CampaignError(ValueError):
    """A campaign file or action problem, phrased for the admin (names the key)."""


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed; a crash here leaves it "uncertain", never sent twice
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCERTAIN = "uncertain"


class Exclusion(StrEnum):
    """Why someone matching the rules gets no reminder (counted in previews and reports)."""

    NOT_ON_TELEGRAM = "not_on_telegram"
    OPTED_OUT = "opted_out"
    BLOCKED = "blocked"
    BANNED = "banned"
    OPEN_COMPLAINT = "open_complaint"
    FREQUENCY_CAP = "frequency_cap"
    NOT_THIS_YEAR = "not_this_year"
    OCCASION_PASSED = "occasion_passed"
    NO_DATE = "no_date"  # e.g. a birthday campaign and no birthday known


@dataclass(frozen=True)
class CampaignSettings:
    """Shop-wide campaign rules from ``[campaigns]``."""

    min_gap: timedelta = timedelta(days=30)
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    attribution: timedelta = timedelta(days=14)
    messages_per_second: int = 25
    preview_samples: int = 5


@dataclass(frozen=True)
class AudienceRules:
    occasion_buyers_days: int | None = None
    occasion_min_years: int = 1
    categories: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    key_customers: bool = False
    last_purchase_within_days: int | None = None
    last_purchase_not_within_days: int | None = None
    min_orders: int | None = None
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuggestionSettings:
    count: int = 3
    # Shown by "Show me": the next suggestions, then the shop link.
    more: int = 3


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    occasion: str
    days_before: int
    send_time: time
    templates: Mapping[str, str]
    audience: AudienceRules = field(default_factory=AudienceRules)
    suggestions: SuggestionSettings = field(default_factory=SuggestionSettings)
    year: int | None = None

    def to_json(self) -> str:
        raw = asdict(self)
        raw["send_time"] = self.send_time.strftime("%H:%M")
        raw["templates"] = dict(self.templates)
        return json.dumps(raw, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        raw = json.loads(text)
        audience = raw["audience"]
        return cls(
            name=raw["name"],
            occasion=raw["occasion"],
            days_before=raw["days_before"],
            send_time=_parse_time(raw["send_time"], "send_time"),
            templates=dict(raw["templates"]),
            audience=AudienceRules(
                **{
                    **audience,
                    "categories": tuple(audience["categories"]),
                    "segments": tuple(audience["segments"]),
                    "countries": tuple(audience["countries"]),
                }
            ),
            suggestions=SuggestionSettings(**raw["suggestions"]),
            year=raw["year"],
        )


@dataclass(frozen=True)
class Campaign:
    """A stored campaign: its spec plus where it is in its life."""

    id: int
    spec: CampaignSpec
    year: int
    status: CampaignStatus
    created_at: datetime
    opens_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    audience_size: int | None = None
    excluded: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Candidate:
    """A customer as the audience rules and exclusions see them."""

    customer_id: int
    chat_id: int | None
    first_name: str
    last_name: str | None
    language: str | None
    timezone: str | None
    country: str | None
    birthday: date | None
    opted_out: bool
    blocked: bool
    banned: bool
    open_complaint: bool
    last_reminder_at: datetime | None
    segment: str | None
    key_customer: bool
    orders: int
    spend: float
    last_purchase: datetime | None


@dataclass(frozen=True)
class Delivery:
    """One ledger row: a reminder for one customer in one campaign."""

    id: int
    campaign_id: int
    customer_id: int
    chat_id: int
    language: str
    occasion_date: date
    due_at: datetime
    text: str
    suggested: tuple[int, ...]
    status: DeliveryStatus
    reason: str | None = None
    message_id: int | None = None
    sent_at: datetime | None = None
    response: str | None = None
    attempts: int = 0


# ---------------------------------------------------------------- campaign files

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_TOP_KEYS = {"name", "occasion", "days_before", "send_time", "year", "template", "audience",
             "suggestions"}  # fmt: skip


def parse_campaign(raw: Mapping[str, Any], *, languages: tuple[str, ...]) -> CampaignSpec:
    """A campaign from its TOML table; errors name the key (templates are checked later,
    by the template sandbox, against real customers)."""
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise CampaignError(f"unknown key {unknown[0]} (known: {', '.join(sorted(_TOP_KEYS))})")
    name = _text(raw, "name")
    if not _NAME.match(name):
        raise CampaignError(
            f"name must be lowercase letters, digits and dashes (like mothers-day-2027), "
            f"got {name!r}"
        )
    templates = raw.get("template")
    if not isinstance(templates, Mapping) or not templates:
        raise CampaignError('[template] must be a table of languages, like en = """Hi..."""')
    for lang, body in templates.items():
        if lang not in languages:
            raise CampaignError(f"template.{lang}: language must be one of {', '.join(languages)}")
        if not isinstance(body, str) or not body.strip():
            raise CampaignError(f"template.{lang} must be non-empty text")
    year = raw.get("year")
    if year is not None and (not _is_int(year) or not 2000 <= year <= 2100):
        raise CampaignError(f"year must be a year like 2027, got {year!r}")
    return CampaignSpec(
        name=name,
        occasion=_text(raw, "occasion"),
        days_before=_int(raw, "days_before", 0, 60, default=5),
        send_time=_parse_time(raw.get("send_time", "10:00"), "send_time"),
        templates=dict(templates),
        audience=_audience(_table(raw, "audience")),
        suggestions=_suggestions(_table(raw, "suggestions")),
        year=year,
    )


def _audience(raw: Mapping[str, Any]) -> AudienceRules:
    known = {f for f in AudienceRules.__dataclass_fields__}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CampaignError(
            f"unknown key audience.{unknown[0]} (known: {', '.join(sorted(known))})"
        )
    key_customers = raw.get("key_customers", False)
    if not isinstance(key_customers, bool):
        raise CampaignError("audience.key_customers must be true or false")
    countries = _names(raw, "countries")
    if any(not re.fullmatch(r"[A-Z]{2}", c) for c in countries):
        raise CampaignError('audience.countries must be ISO codes like ["GB", "IE"]')
    rules = AudienceRules(
        occasion_buyers_days=_int(raw, "occasion_buyers_days", 1, 366, where="audience."),
        occasion_min_years=_int(raw, "occasion_min_years", 1, 50, default=1, where="audience."),
        categories=_names(raw, "categories"),
        segments=_names(raw, "segments"),
        key_customers=key_customers,
        last_purchase_within_days=_int(
            raw, "last_purchase_within_days", 1, 10_000, where="audience."
        ),
        last_purchase_not_within_days=_int(
            raw, "last_purchase_not_within_days", 1, 10_000, where="audience."
        ),
        min_orders=_int(raw, "min_orders", 1, 1_000_000, where="audience."),
        countries=countries,
    )
    if "occasion_min_years" in raw and rules.occasion_buyers_days is None:
        raise CampaignError("audience.occasion_min_years needs audience.occasion_buyers_days")
    return rules


def _suggestions(raw: Mapping[str, Any]) -> SuggestionSettings:
    unknown = sorted(set(raw) - {"count", "more"})
    if unknown:
        raise CampaignError(f"unknown key suggestions.{unknown[0]} (known: count, more)")
    return SuggestionSettings(
        count=_int(raw, "count", 0, 10, default=3, where="suggestions."),
        more=_int(raw, "more", 0, 10, default=3, where="suggestions."),
    )


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise CampaignError(f"[{key}] must be a table")
    return value


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{key} is required (text)")
    return value.strip()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(
    raw: Mapping[str, Any],
    key: str,
    low: int,
    high: int,
    *,
    default: int | None = None,
    where: str = "",
) -> Any:
    value = raw.get(key, default)
    if value is None:
        return None
    if not _is_int(value) or not low <= value <= high:
        raise CampaignError(
            f"{where}{key} must be a whole number from {low} to {high}, got {value!r}"
        )
    return value


def _names(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CampaignError(f'audience.{key} must be a list of names like ["a", "b"]')
    return tuple(value)


def _parse_time(value: object, key: str) -> time:
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise CampaignError(f'{key} must be a local time like "10:00", got {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


# ---------------------------------------------------------------- life cycle

# action -> (statuses it applies to, resulting status; None: decided by the send window)
_ACTIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus | None]] = {
    "start": (frozenset({CampaignStatus.DRAFT}), None),
    "pause": (frozenset({CampaignStatus.SCHEDULED, CampaignStatus.RUNNING}), CampaignStatus.PAUSED),
    "resume": (frozenset({CampaignStatus.PAUSED}), None),
    "cancel": (
        frozenset(
            {
                CampaignStatus.DRAFT,
                CampaignStatus.SCHEDULED,
                CampaignStatus.RUNNING,
                CampaignStatus.PAUSED,
            }
        ),
        CampaignStatus.CANCELLED,
    ),
}
ACTIONS = tuple(_ACTIONS)


def next_status(campaign: Campaign, action: str, *, planned: bool) -> CampaignStatus:
    """The status after ``action``; ``planned``: the ledger exists (the send window opened).

    Raises :class:`CampaignError` when the action does not apply, saying why.
    """
    if action not in _ACTIONS:
        raise CampaignError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    allowed, to = _ACTIONS[action]
    if campaign.status not in allowed:
        raise CampaignError(f"campaign {campaign.name} is {campaign.status.value}: cannot {action}")
    if to is not None:
        return to
    return CampaignStatus.RUNNING if planned else CampaignStatus.SCHEDULED


def customer_zone(timezone: str | None, shop_zone: ZoneInfo) -> ZoneInfo:
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (KeyError, ValueError):
            pass
    return shop_zone


def plan_due(
    occasion_day: date,
    spec: CampaignSpec,
    zone: ZoneInfo,
    now: datetime,
    quiet: QuietHours,
) -> datetime | None:
    """When this recipient's reminder goes out; None when it is too late to be of use.

    Planned: ``days_before`` the occasion at ``send_time`` local. Started late (that moment
    passed): as soon as possible, but not in the recipient's quiet hours, and never on or
    after the occasion day itself (after its end with ``days_before = 0``).
    """
    send_day = occasion_day - timedelta(days=spec.days_before)
    due = datetime.combine(send_day, spec.send_time, tzinfo=zone).astimezone(UTC)
    if due < now:
        due = quiet.next_allowed(now, zone).astimezone(UTC)
    # Useless once the day has come; a campaign for the day itself (days_before = 0) has
    # until that day's end.
    last_day = occasion_day + timedelta(days=1 if spec.days_before == 0 else 0)
    deadline = datetime.combine(last_day, time(0, 0), tzinfo=zone).astimezone(UTC)
    return due if due < deadline else None


def window_opens(first_day: date, spec: CampaignSpec) -> datetime:
    """The earliest moment any recipient's reminder can be due (UTC+14 is first to the day),
    when the ledger is planned: late enough that the audience is fresh."""
    send_day = first_day - timedelta(days=spec.days_before)
    return datetime.combine(send_day, spec.send_time, tzinfo=UTC) - timedelta(hours=14)


def exclusion(
    who: Candidate,
    now: datetime,
    settings: CampaignSettings,
    said_not_this_year: bool,
) -> Exclusion | None:
    """Why this customer gets no reminder now; None if they may get one."""
    if who.chat_id is None:
        return Exclusion.NOT_ON_TELEGRAM
    if who.opted_out:
        return Exclusion.OPTED_OUT
    if who.blocked:
        return Exclusion.BLOCKED
    if who.banned:
        return Exclusion.BANNED
    if who.open_complaint:
        return Exclusion.OPEN_COMPLAINT
    if said_not_this_year:
        return Exclusion.NOT_THIS_YEAR
    if who.last_reminder_at is not None and now - who.last_reminder_at < settings.min_gap:
        return Exclusion.FREQUENCY_CAP
    return None


def matches(
    rules: AudienceRules,
    who: Candidate,
    now: datetime,
    *,
    country: str | None,
    occasion_years: int,
    bought_categories: bool,
) -> bool:
    """Whether the audience rules select this customer (exclusions are separate).

    ``country``: their ISO code (stored countries are names like "France");
    ``occasion_years``: in how many earlier years they bought in the occasion window;
    ``bought_categories``: they bought from one of ``rules.categories``.
    """
    if rules.occasion_buyers_days is not None and occasion_years < rules.occasion_min_years:
        return False
    if rules.categories and not bought_categories:
        return False
    if rules.segments and who.segment not in rules.segments:
        return False
    if rules.key_customers and not who.key_customer:
        return False
    if rules.min_orders is not None and who.orders < rules.min_orders:
        return False
    if rules.countries and (country or "") not in rules.countries:
        return False
    since = None if who.last_purchase is None else now - who.last_purchase
    if rules.last_purchase_within_days is not None and (
        since is None or since > timedelta(days=rules.last_purchase_within_days)
    ):
        return False
    return not (
        rules.last_purchase_not_within_days is not None
        and since is not None
        and since <= timedelta(days=rules.last_purchase_not_within_days)
    )
