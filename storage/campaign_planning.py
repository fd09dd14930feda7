"""Putting a campaign planner together from the database and the config.

Used by the bot (planning the ledger off the event loop, on a connection of its own), the
CLI and the admin commands: one place decides which calendar, model, templates and shop
details a campaign is planned with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from bot.campaign_service import (
    AudienceCount,
    CampaignPlanner,
    Preview,
    ShopInfo,
)
from bot.campaign_templates import (
    SAMPLE_VARIABLES,
    TemplateProblem,
    TemplateSet,
    validate,
)
from bot.campaigns import (
    Campaign,
    CampaignError,
    CampaignSpec,
    next_status,
    parse_campaign,
    window_opens,
)
from bot.config import SUPPORTED_LANGUAGES, Config
from bot.occasions import OccasionCalendar, OccasionError
from bot.suggestions import SuggestionModel
from storage.campaigns import (
    AudienceStore,
    CampaignRepository,
    CustomOccasionRepository,
    DeliveryLedger,
)
from storage.suggestions import load_model


def calendar_of(db: Database) -> OccasionCalendar:
    return OccasionCalendar(CustomOccasionRepository(db).all())


def shop_info(config: Config) -> ShopInfo:
    return ShopInfo(
        name=config.shop.name,
        url=config.shop.url,
        currency=config.shop.currency,
        country=config.shop.country,
        zone=ZoneInfo(config.shop.timezone),
        default_language=config.shop.default_language,
    )


def occasion_year(calendar: OccasionCalendar, spec: CampaignSpec, today: date, country: str) -> int:
    """The campaign's year: as given, else the next time the occasion comes round."""
    if spec.year is not None:
        return spec.year
    try:
        day = calendar.next_on_or_after(spec.occasion, today, country)
    except OccasionError as exc:
        raise CampaignError(f"occasion: {exc}") from None
    return day.year if day is not None else today.year


@dataclass
class Planning:
    """A planner for one campaign plus the storage it reads."""

    planner: CampaignPlanner
    source: AudienceStore

    def opens_at(self) -> datetime:
        spec, planner = self.planner.spec, self.planner
        season = planner.season()
        if season is None:
            raise CampaignError(f"occasion {spec.occasion} has no date in {planner.year}")
        return window_opens(season[0], spec)


def planning_for(
    db: Database,
    config: Config,
    spec: CampaignSpec,
    year: int,
    *,
    model: SuggestionModel | None = None,
) -> Planning:
    """``model``: a co-purchase model built earlier (the dashboard's live preview reuses one
    across keystrokes); by default it is built from the orders now."""
    calendar = calendar_of(db)
    if not calendar.has(spec.occasion):
        raise CampaignError(
            f"occasion {spec.occasion!r} is unknown (known: {', '.join(calendar.names())}); "
            "add your own with `carebot occasions add`"
        )
    templates = TemplateSet.compile(spec.templates, default_language=config.shop.default_language)
    planner = CampaignPlanner(
        spec,
        year,
        calendar=calendar,
        settings=config.campaigns.settings(),
        shop=shop_info(config),
        templates=templates,
        model=model if model is not None else load_model(db),
    )
    return Planning(planner, AudienceStore(db))


def preview(
    db: Database,
    config: Config,
    spec: CampaignSpec,
    year: int,
    now: datetime,
    *,
    model: SuggestionModel | None = None,
) -> Preview:
    planning = planning_for(db, config, spec, year, model=model)
    return planning.planner.preview(planning.source, now)


def check_templates(planning: Planning, config: Config, now: datetime) -> list[TemplateProblem]:
    """Every language variant rendered for real customers of the audience (or a complete
    made-up customer when nobody matches yet)."""
    planner = planning.planner
    samples: list[dict[str, Any]] = planner.sample_variables(planning.source, now)
    return validate(
        planner.spec.templates,
        samples or [SAMPLE_VARIABLES],
        default_language=config.shop.default_language,
    )


@dataclass(frozen=True)
class CheckedCampaign:
    """A campaign table that passed ``check_campaign`` (nothing saved yet)."""

    spec: CampaignSpec
    year: int
    # Template variants that fail for some real customer of the audience; empty when fine.
    problems: list[TemplateProblem]


def planning_of_table(
    db: Database,
    config: Config,
    raw: Mapping[str, Any],
    now: datetime,
    *,
    model: SuggestionModel | None = None,
) -> Planning:
    """A campaign's TOML table (a file, or the dashboard's form) parsed and made ready to
    plan: keys and values checked, the occasion known, its year decided, the templates
    compiled in the sandbox. Raises CampaignError or TemplateRejected (naming the key)."""
    spec = parse_campaign(raw, languages=SUPPORTED_LANGUAGES)
    year = occasion_year(calendar_of(db), spec, now.date(), config.shop.country)
    return planning_for(db, config, spec, year, model=model)


def check_campaign(
    db: Database,
    config: Config,
    raw: Mapping[str, Any],
    now: datetime,
    *,
    model: SuggestionModel | None = None,
) -> CheckedCampaign:
    """What ``campaign create`` and the dashboard check before saving: the table as
    ``planning_of_table`` checks it, then the templates rendered for real customers."""
    planning = planning_of_table(db, config, raw, now, model=model)
    planner = planning.planner
    return CheckedCampaign(planner.spec, planner.year, check_templates(planning, config, now))


def write_plan(
    db: Database,
    config: Config,
    campaign: Campaign,
    now: datetime,
    *,
    model: SuggestionModel | None = None,
) -> AudienceCount:
    """Plan every recipient into the ledger (idempotent: a re-run after a crash keeps what
    was written). ``model``: the bot's cached co-purchase model (see ``planning_for``)."""
    planning = planning_for(db, config, campaign.spec, campaign.year, model=model)
    ledger, count = DeliveryLedger(db), AudienceCount()
    for chunk in planning.planner.plan(planning.source, now, count):
        ledger.plan(campaign.id, chunk, now)
    return count


def apply_action(
    db: Database, config: Config, campaign: Campaign, action: str, now: datetime
) -> Campaign:
    """Start, pause, resume or cancel: the one implementation behind the CLI, ``/campaigns``
    and the dashboard. Starting checks the templates on real customers first."""
    repo = CampaignRepository(db)
    target = next_status(campaign, action, planned=repo.planned(campaign.id))
    fields: dict[str, Any] = {}
    if action == "start":
        planning = planning_for(db, config, campaign.spec, campaign.year)
        problems = check_templates(planning, config, now)
        if problems:
            raise CampaignError(
                "the template does not render:\n" + "\n".join(str(p) for p in problems)
            )
        season = planning.planner.season()
        last_day = season[1] if season else None
        if last_day is not None and last_day <= now.date():
            raise CampaignError(
                f"{campaign.spec.occasion} {campaign.year} is over (it was on {last_day}); "
                "set `year` for the next one"
            )
        fields["opens_at"] = planning.opens_at()
    if action == "cancel":
        fields["finished_at"] = now
    if not repo.move(campaign.id, campaign.status, target, now, **fields):
        raise CampaignError(f"campaign {campaign.name} changed meanwhile; look again")
    if action == "cancel":
        DeliveryLedger(db).cancel_pending(campaign.id)
    changed = repo.get(campaign.id)
    assert changed is not None
    return changed
