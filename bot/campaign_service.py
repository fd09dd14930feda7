"""Planning a campaign: who gets it, when, with which suggestions and words.

The same pipeline serves the preview (count, a handful of rendered examples, nothing
written) and the real thing (every eligible customer gets a ledger row with the exact text
that will be sent). It streams customers in chunks, so a shop with a million customers is
planned in bounded memory: candidates -> audience rules -> exclusions -> due time ->
purchase history -> suggestions -> template.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.campaign_templates import TemplateRejected, TemplateSet
from bot.campaigns import (
    CampaignSettings,
    CampaignSpec,
    Candidate,
    Exclusion,
    customer_zone,
    exclusion,
    matches,
    plan_due,
)
from bot.countries import country_code
from bot.occasions import OccasionCalendar
from bot.suggestions import ProductInfo, PurchaseLine, SuggestionModel
from bot.suggestions import history_from_lines as history_of
from bot.texts import money

# At most this many earlier years are looked at for "bought before this occasion" (and for
# the categories a customer buys for it), from the first year with orders.
HISTORY_YEARS = 20
CHUNK = 2_000

Window = tuple[datetime, datetime]


@dataclass(frozen=True)
class OccasionWindows:
    """The occasion's windows in earlier years, per country group.

    ``windows[i]`` is one window; ``groups[code]`` lists the indices that apply to customers
    of that country (``None``: every other country).
    """

    windows: tuple[Window, ...]
    groups: Mapping[str | None, tuple[int, ...]]

    def for_country(self, code: str | None) -> tuple[int, ...]:
        return self.groups.get(code, self.groups.get(None, ()))


class AudienceSource(Protocol):
    """What planning reads from storage (one connection, usually off the event loop)."""

    def countries(self) -> list[str | None]: ...

    def first_order_year(self) -> int | None: ...

    def candidates(
        self, spec: CampaignSpec, windows: Sequence[Window], now: datetime
    ) -> Iterator[tuple[Candidate, frozenset[int]]]:
        """Customers passing the rules storage can check (with the indices of the windows
        they bought in); those not on Telegram too, so they are counted as excluded."""
        ...

    def said_not_this_year(self, occasion: str, year: int) -> set[int]: ...

    def purchase_lines(self, customer_ids: Sequence[int]) -> dict[int, list[PurchaseLine]]: ...


@dataclass(frozen=True)
class ShopInfo:
    name: str
    url: str
    currency: str
    country: str
    zone: ZoneInfo
    default_language: str


@dataclass(frozen=True)
class PlannedReminder:
    customer_id: int
    chat_id: int
    language: str
    occasion_date: date
    due_at: datetime
    text: str | None  # None: the template failed for this customer (see problem)
    suggested: tuple[int, ...]
    problem: str | None = None


@dataclass
class AudienceCount:
    eligible: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    first_due: datetime | None = None
    last_due: datetime | None = None

    def add(self, due: datetime) -> None:
        self.eligible += 1
        self.first_due = due if self.first_due is None else min(self.first_due, due)
        self.last_due = due if self.last_due is None else max(self.last_due, due)


@dataclass(frozen=True)
class Preview:
    eligible: int
    excluded: Mapping[str, int]
    samples: tuple[PlannedReminder, ...]
    first_due: datetime | None
    last_due: datetime | None
    send_seconds: float  # at the configured rate, if everyone were due at once

    @property
    def matched(self) -> int:
        return self.eligible + sum(self.excluded.values())


@dataclass(frozen=True)
class _Recipient:
    who: Candidate
    code: str | None
    occasion_day: date
    due: datetime
    windows: tuple[Window, ...]


class CampaignPlanner:
    """Plans one campaign for one occasion year."""

    def __init__(
        self,
        spec: CampaignSpec,
        year: int,
        *,
        calendar: OccasionCalendar,
        settings: CampaignSettings,
        shop: ShopInfo,
        templates: TemplateSet,
        model: SuggestionModel,
    ) -> None:
        self.spec, self.year = spec, year
        self.calendar, self.settings, self.shop = calendar, settings, shop
        self.templates, self.model = templates, model
        # The season this campaign is for: the occasion in its year where most recipients
        # live (the first country of the audience rule, else the shop's).
        self.reference_country = (spec.audience.countries or (shop.country,))[0]
        self._own_rule = calendar.countries_with_own_rule(spec.occasion)
        self._days: dict[tuple[str | None, int], date | None] = {}
        # Worked out once per value rather than per recipient (a plan may have a million):
        # due times per (day, zone), a zone's date now, and each suggested product's fields.
        self._due: dict[tuple[date, ZoneInfo, datetime], datetime | None] = {}
        self._today: dict[tuple[str | None, datetime], date] = {}
        self._suggestions: dict[int, dict[str, Any]] = {}

    def group_of(self, code: str | None) -> str | None:
        """The country whose rule dates this customer's occasion (None: the default rule).
        Customers of unknown country count as the shop's."""
        country = code or self.shop.country
        return country if country in self._own_rule else None

    def _season_day(self, group: str | None, year: int) -> date | None:
        """The group's date in the season of ``year``: of its dates around that year, the
        one nearest the reference country's (Orthodox Christmas on 7 January belongs to the
        December before it)."""
        key = (group, year)
        if key not in self._days:
            occasion = self.spec.occasion
            reference = self.calendar.date_of(occasion, year, self.reference_country)
            days = [
                d
                for d in (
                    self.calendar.date_of(occasion, y, group) for y in (year - 1, year, year + 1)
                )
                if d is not None
            ]
            self._days[key] = (
                min(days, key=lambda d: (abs((d - reference).days), -d.toordinal()))
                if days and reference is not None
                else None
            )
        return self._days[key]

    def occasion_day(self, code: str | None, birthday: date | None = None) -> date | None:
        """The recipient's own date in this campaign's season (birthdays: in its year)."""
        if self.spec.occasion == "birthday":
            return self.calendar.date_of("birthday", self.year, code, birthday=birthday)
        return self._season_day(self.group_of(code), self.year)

    def season(self) -> tuple[date, date] | None:
        """The first and last date the occasion falls on in this season, over all countries
        with their own rule (None when it has no date)."""
        if self.spec.occasion == "birthday":
            return date(self.year, 1, 1), date(self.year, 12, 31)
        groups = [None, *sorted(self._own_rule)]
        days = [d for d in (self._season_day(g, self.year) for g in groups) if d is not None]
        return (min(days), max(days)) if days else None

    # ------------------------------------------------------------ occasion windows

    def windows(self, countries: Iterable[str | None], first_year: int | None) -> OccasionWindows:
        """Earlier seasons' windows of ``occasion_buyers_days`` before the occasion (or, with
        no such rule, three weeks: the categories bought for it feed the suggestions), per
        group of countries sharing a date rule."""
        days = self.spec.audience.occasion_buyers_days or 21
        groups_present = {self.group_of(country_code(x)) for x in countries}
        windows: list[Window] = []
        groups: dict[str | None, tuple[int, ...]] = {}
        for group in sorted(groups_present, key=lambda g: g or ""):
            indices = []
            for year in range(max(first_year or self.year, self.year - HISTORY_YEARS), self.year):
                day = (
                    self._season_day(group, year)
                    if self.spec.occasion != "birthday"
                    else None  # a birthday's window is each customer's own; not tracked
                )
                if day is None:
                    continue
                end = datetime.combine(day, time(0, 0), tzinfo=UTC)
                windows.append((end - timedelta(days=days), end))
                indices.append(len(windows) - 1)
            groups[group] = tuple(indices)
        return OccasionWindows(tuple(windows), groups)

    # ------------------------------------------------------------ selection

    def _recipients(
        self, source: AudienceSource, now: datetime, count: AudienceCount
    ) -> Iterator[_Recipient]:
        """Eligible customers in the rules' order, counting who is excluded and why."""
        occasion_windows = self.windows(source.countries(), source.first_order_year())
        windows = occasion_windows.windows
        not_this_year = source.said_not_this_year(self.spec.occasion, self.year)
        rules = self.spec.audience
        for who, hits in source.candidates(self.spec, windows, now):
            code = country_code(who.country)
            own = occasion_windows.for_country(self.group_of(code))
            if not matches(
                rules,
                who,
                now,
                country=code,
                occasion_years=len(hits.intersection(own)),
                bought_categories=True,  # storage applies the category rule
            ):
                continue
            reason = exclusion(who, now, self.settings, who.customer_id in not_this_year)
            if reason is not None:
                count.excluded[reason] += 1
                continue
            day = self.occasion_day(code, who.birthday)
            if day is None:
                count.excluded[Exclusion.NO_DATE] += 1
                continue
            due = self._due_at(day, customer_zone(who.timezone, self.shop.zone), now)
            if due is None:
                count.excluded[Exclusion.OCCASION_PASSED] += 1
                continue
            count.add(due)
            yield _Recipient(who, code, day, due, tuple(windows[i] for i in own))

    def _due_at(self, day: date, zone: ZoneInfo, now: datetime) -> datetime | None:
        key = (day, zone, now)
        if key not in self._due:
            self._due[key] = plan_due(day, self.spec, zone, now, self.settings.quiet_hours)
        return self._due[key]

    def _local_today(self, timezone: str | None, now: datetime) -> date:
        key = (timezone, now)
        if key not in self._today:
            self._today[key] = now.astimezone(customer_zone(timezone, self.shop.zone)).date()
        return self._today[key]

    def plan(
        self, source: AudienceSource, now: datetime, count: AudienceCount | None = None
    ) -> Iterator[list[PlannedReminder]]:
        """Every eligible customer's reminder, rendered, in chunks (for the ledger)."""
        count = count if count is not None else AudienceCount()
        chunk: list[_Recipient] = []
        for recipient in self._recipients(source, now, count):
            chunk.append(recipient)
            if len(chunk) >= CHUNK:
                yield self._render_chunk(source, chunk, now)
                chunk = []
        if chunk:
            yield self._render_chunk(source, chunk, now)

    def preview(self, source: AudienceSource, now: datetime) -> Preview:
        """Counts and a few fully rendered reminders for real customers; nothing written."""
        count = AudienceCount()
        picked: list[_Recipient] = []
        for recipient in self._recipients(source, now, count):
            if len(picked) < self.settings.preview_samples:
                picked.append(recipient)
        samples = self._render_chunk(source, picked, now)
        return Preview(
            eligible=count.eligible,
            excluded=dict(count.excluded),
            samples=tuple(samples),
            first_due=count.first_due,
            last_due=count.last_due,
            send_seconds=count.eligible / self.settings.messages_per_second,
        )

    def sample_variables(self, source: AudienceSource, now: datetime) -> list[dict[str, Any]]:
        """Template variables of the first few eligible customers (to validate templates)."""
        picked = itertools.islice(
            self._recipients(source, now, AudienceCount()), self.settings.preview_samples
        )
        return [variables for _, variables, _ in self._personalize(source, list(picked), now)]

    # ------------------------------------------------------------ personalization

    def _personalize(
        self, source: AudienceSource, chunk: Sequence[_Recipient], now: datetime
    ) -> Iterator[tuple[_Recipient, dict[str, Any], tuple[int, ...]]]:
        """Each recipient's template variables and suggested products (one read of their
        purchase history for the whole chunk)."""
        lines = source.purchase_lines([r.who.customer_id for r in chunk]) if chunk else {}
        for recipient in chunk:
            own_lines = lines.get(recipient.who.customer_id, [])
            history = history_of(own_lines, recipient.windows)
            picks = self.model.suggest(history, self.spec.suggestions.count)
            variables = self.variables(recipient, own_lines, picks, now)
            yield recipient, variables, tuple(p.id for p in picks)

    def _render_chunk(
        self, source: AudienceSource, chunk: Sequence[_Recipient], now: datetime
    ) -> list[PlannedReminder]:
        planned = []
        for recipient, variables, suggested in self._personalize(source, chunk, now):
            language = self._language(recipient.who)
            text: str | None
            try:
                text, problem = self.templates.render(language, variables), None
            except TemplateRejected as exc:
                text, problem = None, str(exc)
            assert recipient.who.chat_id is not None  # excluded otherwise
            planned.append(
                PlannedReminder(
                    customer_id=recipient.who.customer_id,
                    chat_id=recipient.who.chat_id,
                    language=language,
                    occasion_date=recipient.occasion_day,
                    due_at=recipient.due,
                    text=text,
                    suggested=suggested,
                    problem=problem,
                )
            )
        return planned

    def _language(self, who: Candidate) -> str:
        return who.language or self.shop.default_language

    def variables(
        self,
        recipient: _Recipient,
        lines: Sequence[PurchaseLine],
        picks: Sequence[ProductInfo],
        now: datetime,
    ) -> dict[str, Any]:
        """What an admin's template can use (documented in bot/campaign_templates.py)."""
        who = recipient.who
        local_today = self._local_today(who.timezone, now)
        return {
            "customer": {
                "first_name": who.first_name,
                "last_name": who.last_name or "",
                "name": " ".join(p for p in (who.first_name, who.last_name) if p),
                "language": self._language(who),
                "country": recipient.code or "",
                "segment": who.segment or "",
                "key_customer": who.key_customer,
                "orders": who.orders,
                "last_purchase": who.last_purchase.date() if who.last_purchase else None,
            },
            "occasion": {
                "name": self.spec.occasion,
                "label": self.calendar.label(self.spec.occasion),
                "date": recipient.occasion_day,
                "days_left": (recipient.occasion_day - local_today).days,
                "year": self.year,
            },
            "last_occasion_purchase": self._last_occasion_purchase(lines, recipient.windows),
            "suggestions": [self.suggestion(p) for p in picks],
            "shop": {"name": self.shop.name, "url": self.shop.url, "currency": self.shop.currency},
        }

    def suggestion(self, product: ProductInfo) -> dict[str, Any]:
        """A suggested product's template fields, made once per product (the sandbox keeps
        templates from changing them)."""
        if product.id not in self._suggestions:
            self._suggestions[product.id] = {
                "name": product.name,
                "price": product.price if product.price is not None else math.nan,
                "price_text": money_text(product.price, self.shop.currency),
                "category": product.category or "",
                "url": self.shop.url,
            }
        return self._suggestions[product.id]

    def _last_occasion_purchase(
        self, lines: Sequence[PurchaseLine], windows: Sequence[Window]
    ) -> dict[str, Any] | None:
        """The latest earlier-year occasion window they bought in: when, what, how much."""
        for start, end in sorted(windows, reverse=True):
            bought = [line for line in lines if start <= line.placed_at < end]
            if not bought:
                continue
            names: list[str] = []
            for line in sorted(bought, key=lambda line: line.placed_at):
                product = self.model.product(line.product_id)
                name = product.name if product else ""
                if name and name not in names:
                    names.append(name)
            return {
                "date": max(line.placed_at for line in bought).date(),
                "year": end.year,
                "items": names,
                "total": round(sum(line.unit_price * line.quantity for line in bought), 2),
            }
        return None


def money_text(amount: float | None, currency: str) -> str:
    return "" if amount is None else money(amount, currency)
