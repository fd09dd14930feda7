"""Dashboard pages for reminder campaigns (admins only): the list, a form to create and edit
a draft with a live preview, the actions (schedule, pause, resume, cancel) and each
campaign's report.

Nothing here decides anything about campaigns: the form becomes the same table a campaign
TOML file gives (``raw_campaign``) and goes through ``check_campaign`` like ``carebot
campaign create``; the preview plans like ``carebot campaign preview``; actions go through
``apply_action`` like the CLI and /campaigns, and the running bot is told at once
(``follow_status``) instead of noticing at its next watch.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlite_utils import Database

from bot.campaign_service import Preview
from bot.campaign_templates import VARIABLE_FIELDS, TemplateProblem, TemplateRejected
from bot.campaigns import (
    AudienceRules,
    Campaign,
    CampaignError,
    CampaignSpec,
    CampaignStatus,
    parse_campaign,
)
from bot.config import SUPPORTED_LANGUAGES
from bot.occasions import BIRTHDAY, BUILTIN, OccasionCalendar, OccasionError
from bot.segments import RFM_SEGMENTS
from bot.telegram_html import parse_html
from carebot.campaign_cli import send_duration
from carebot.dashboard.app import (
    Dashboard,
    Form,
    Handler,
    Routes,
    account_of,
    dashboard_of,
    environment,
    flash,
    form_of,
    int_param,
    render_page,
    see_other,
    text_field,
)
from carebot.dashboard.charts import funnel_chart
from handlers.campaigns import allowed_actions, follow_status, suggestion_model
from storage.campaign_planning import (
    apply_action,
    calendar_of,
    check_campaign,
    planning_of_table,
)
from storage.campaigns import CampaignReport, DeliveryTotals, campaign_report, delivery_totals
from storage.dashboard_campaigns import FormChoices, form_choices
from storage.reports import customer_labels

logger = logging.getLogger("carebot.dashboard")

BASE = "/admin/campaigns"

# ------------------------------------------------------------------ the form's fields


@dataclass(frozen=True)
class RuleField:
    """One audience rule as a form field (``key``: its name under ``[audience]``)."""

    key: str
    label: str
    kind: Literal["number", "check", "categories", "segments", "codes"]
    hint: str = ""

    @property
    def name(self) -> str:
        return f"audience.{self.key}"

    def form_value(self, value: Any) -> list[str]:
        """The rule's value as the form field holds it (nothing when not set)."""
        if self.kind == "check":
            return ["on"] if value else []
        if self.kind == "codes":
            return [", ".join(value)] if value else []
        if self.kind == "number":
            return [] if value is None else [str(value)]
        return list(value)


AUDIENCE_FIELDS = (
    RuleField(
        "occasion_buyers_days",
        "Bought for this occasion: in the N days before it, in earlier years",
        "number",
        "e.g. 21; blank: no such rule",
    ),
    RuleField(
        "occasion_min_years",
        "…in at least this many different years",
        "number",
        "default 1; needs the rule above",
    ),
    RuleField("categories", "Bought from any of these product categories", "categories"),
    RuleField("segments", "RFM segment is one of", "segments"),
    RuleField("key_customers", "Key customers only (the top spenders, ~80% of revenue)", "check"),
    RuleField("last_purchase_within_days", "Last purchase within N days", "number"),
    RuleField(
        "last_purchase_not_within_days",
        "No purchase in the last N days (win-back)",
        "number",
    ),
    RuleField("min_orders", "At least N orders", "number"),
    RuleField("countries", "Customer country", "codes", "ISO codes, comma-separated: GB, IE"),
)
TEMPLATE_FIELDS = tuple(f"template.{language}" for language in SUPPORTED_LANGUAGES)
NUMBER_FIELDS = (
    "year",
    "days_before",
    *(f.name for f in AUDIENCE_FIELDS if f.kind == "number"),
    "suggestions.count",
    "suggestions.more",
)
TEXT_FIELDS = ("name", "occasion", "send_time")
FORM_FIELDS = frozenset(
    {*TEXT_FIELDS, *NUMBER_FIELDS, *(f.name for f in AUDIENCE_FIELDS), *TEMPLATE_FIELDS}
)
# The preview does not depend on the name; any valid one lets the rest be checked.
PREVIEW_NAME = "preview"

EXAMPLE_TEMPLATES = {
    "en": (
        'Hi {{ customer.first_name or "there" }}! {{ occasion.label }} is on '
        '{{ occasion.date.strftime("%d %B") }}.\n'
        "{% if last_occasion_purchase %}Last time you chose "
        "{{ last_occasion_purchase.items[0]|title }}.{% endif %}\n\n"
        "{% for s in suggestions %}• {{ s.name|title }} {{ s.price_text }}\n{% endfor %}"
    ),
    "zh": "{{ customer.first_name }}，您好！{{ occasion.label }}就要到了。",
}


@dataclass(frozen=True)
class FormValues:
    """The form's values as typed (a posted form) or from a saved campaign: what the page
    shows again, and what ``raw_campaign`` reads."""

    fields: Mapping[str, Sequence[str]]

    def __getitem__(self, key: str) -> str:
        values = self.fields.get(key, ())
        return values[0] if values else ""

    def chosen(self, key: str) -> list[str]:
        return list(self.fields.get(key, ()))

    def with_value(self, key: str, value: str) -> FormValues:
        return FormValues({**self.fields, key: [value]})

    @classmethod
    def posted(cls, form: Form) -> FormValues:
        fields: dict[str, list[str]] = {}
        for key, value in form.items():
            if key in FORM_FIELDS and isinstance(value, str):
                fields.setdefault(key, []).append(value.replace("\r\n", "\n"))
        return cls(fields)

    @classmethod
    def of_spec(cls, spec: CampaignSpec) -> FormValues:
        rules = spec.audience

        def number(value: int | None) -> list[str]:
            return [] if value is None else [str(value)]

        fields: dict[str, list[str]] = {
            "name": [spec.name],
            "occasion": [spec.occasion],
            "year": number(spec.year),
            "days_before": number(spec.days_before),
            "send_time": [spec.send_time.strftime("%H:%M")],
            **{f.name: f.form_value(getattr(rules, f.key)) for f in AUDIENCE_FIELDS},
            "suggestions.count": number(spec.suggestions.count),
            "suggestions.more": number(spec.suggestions.more),
            **{f"template.{language}": [body] for language, body in spec.templates.items()},
        }
        if rules.occasion_buyers_days is None:  # alone it is an error: only with its rule
            fields["audience.occasion_min_years"] = []
        return cls(fields)

    @classmethod
    def new(cls, occasion: str) -> FormValues:
        """A new campaign's form: the defaults and example templates, for ``occasion``."""
        return cls({**DEFAULTS.fields, "name": [], "occasion": [occasion]})


# What a campaign file gets for the keys it leaves out (the parser's own defaults), with the
# example templates: a new campaign's form, and the placeholders of fields left blank.
DEFAULTS = FormValues.of_spec(
    parse_campaign(
        {"name": PREVIEW_NAME, "occasion": "-", "template": EXAMPLE_TEMPLATES},
        languages=SUPPORTED_LANGUAGES,
    )
)


def raw_campaign(values: FormValues) -> dict[str, Any]:
    """The table a campaign TOML file with these values would give: blank fields are left
    out (their defaults apply), numbers that are not numbers are passed on as typed so the
    parser names the field, exactly as for a file."""
    raw: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        table, _, name = key.rpartition(".")
        (raw.setdefault(table, {}) if table else raw)[name] = value

    for key in TEXT_FIELDS:
        if values[key].strip():
            put(key, values[key].strip())
    for key in NUMBER_FIELDS:
        text = values[key].strip()
        if text:
            put(key, int(text) if re.fullmatch(r"[+-]?\d{1,15}", text) else text)
    for rule in AUDIENCE_FIELDS:
        if rule.kind == "check" and values[rule.name]:
            put(rule.name, True)
        elif rule.kind in ("categories", "segments") and values.chosen(rule.name):
            put(rule.name, [v for v in values.chosen(rule.name) if v])
        elif rule.kind == "codes" and values[rule.name].strip():
            put(rule.name, [c for c in re.split(r"[\s,;]+", values[rule.name]) if c])
    for key in TEMPLATE_FIELDS:
        if values[key].strip():
            put(key, values[key])
    return raw


# ------------------------------------------------------------------ errors beside their field


@dataclass
class FormErrors:
    """Problems found in the form, each beside the field it names (else above the form)."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, message: str, key: str | None) -> None:
        if key is None:
            self.general.append(message)
        else:
            self.fields.setdefault(key, []).append(message)

    def of(self, key: str) -> list[str]:
        return self.fields.get(key, [])

    def messages(self) -> list[str]:
        return [*self.general, *(m for messages in self.fields.values() for m in messages)]

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


_LEADING_KEY = re.compile(r"^(?:unknown key )?\[?([a-z_]+(?:\.[a-z_]+)?)")


def field_of(message: str, default_language: str) -> str | None:
    """The form field a campaign error is about: the parser's messages start with the key."""
    found = _LEADING_KEY.match(message)
    key = found.group(1) if found else ""
    if key in FORM_FIELDS:
        return key
    if key == "template":  # "[template] must be a table": nothing written yet
        return f"template.{default_language}"
    return None


def template_field(language: str, default_language: str) -> str:
    key = f"template.{language.strip()}"
    return key if key in FORM_FIELDS else f"template.{default_language}"


def errors_of(exc: CampaignError | TemplateRejected, default_language: str) -> FormErrors:
    errors = FormErrors()
    if isinstance(exc, TemplateRejected):
        for problem in exc.problems:  # "en: line 2: ..." or about the default language
            language, sep, _ = problem.partition(":")
            errors.add(problem, template_field(language if sep else "", default_language))
    else:
        errors.add(str(exc), field_of(str(exc), default_language))
    return errors


def template_errors(problems: Sequence[TemplateProblem], default_language: str) -> FormErrors:
    errors = FormErrors()
    for problem in problems:
        errors.add(
            f"Does not render: {problem}", template_field(problem.language, default_language)
        )
    return errors


# ------------------------------------------------------------------ the live preview


@dataclass(frozen=True)
class Sample:
    customer_id: int
    name: str
    language: str
    due_at: datetime
    text: str | None  # as the customer reads it (formatting left out)
    problem: str | None


@dataclass(frozen=True)
class PreviewView:
    errors: FormErrors
    result: Preview | None = None
    occasion: str = ""
    year: int | None = None
    season: tuple[date, date] | None = None
    opens_at: datetime | None = None
    samples: tuple[Sample, ...] = ()
    rate: int = 0


async def preview_of(dashboard: Dashboard, values: FormValues) -> PreviewView:
    """Audience count and examples for the rules and templates as typed, on real customers;
    planned in a worker thread with the bot's cached suggestion model."""
    config, now = dashboard.config, dashboard.now()
    raw = {**raw_campaign(values), "name": PREVIEW_NAME}
    started = time.perf_counter()
    model = await suggestion_model(dashboard.application)

    def plan(db: Database) -> PreviewView:
        planning = planning_of_table(db, config, raw, now, model=model)
        planner = planning.planner
        result = planner.preview(planning.source, now)
        names = customer_labels(db, [s.customer_id for s in result.samples])
        try:
            opens_at: datetime | None = planning.opens_at()
        except CampaignError:
            opens_at = None
        samples = tuple(
            Sample(
                s.customer_id,
                str(names.get(s.customer_id) or f"customer {s.customer_id}"),
                s.language,
                s.due_at,
                parse_html(s.text).text if s.text is not None else None,
                s.problem,
            )
            for s in result.samples
        )
        return PreviewView(
            FormErrors(),
            result,
            occasion=planner.calendar.label(planner.spec.occasion),
            year=planner.year,
            season=planner.season(),
            opens_at=opens_at,
            samples=samples,
            rate=config.campaigns.messages_per_second,
        )

    try:
        view = await dashboard.off_loop(plan)
    except (CampaignError, TemplateRejected) as exc:
        view = PreviewView(errors_of(exc, config.shop.default_language))
    logger.debug("campaign preview in %.3f s", time.perf_counter() - started)
    return view


def render_fragment(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)


async def preview(request: web.Request) -> web.StreamResponse:
    """The preview fragment for the form as typed (posted by campaigns.js as the admin types)."""
    dashboard = dashboard_of(request)
    view = await preview_of(dashboard, FormValues.posted(await form_of(request)))
    html = render_fragment("campaigns/preview.html", view=view, **_display(dashboard))
    return web.Response(text=html, content_type="text/html")


# ------------------------------------------------------------------ list, form, save


def _display(dashboard: Dashboard) -> dict[str, Any]:
    """What every campaign template uses to show times and durations."""
    return {"zone": ZoneInfo(dashboard.config.shop.timezone), "duration": send_duration}


def _label(calendar: OccasionCalendar, occasion: str) -> str:
    return calendar.label(occasion) if calendar.has(occasion) else occasion


def _campaign(request: web.Request) -> Campaign:
    campaign = dashboard_of(request).deps.campaigns.campaigns.get(int_param(request, "campaign_id"))
    if campaign is None:
        raise web.HTTPNotFound(text="No such campaign.")
    return campaign


async def campaign_list(request: web.Request) -> web.StreamResponse:
    """Every campaign, newest first, with its status and delivery counts."""
    dashboard = dashboard_of(request)
    campaigns = dashboard.deps.campaigns.campaigns.all()
    totals = await dashboard.off_loop(delivery_totals)
    calendar = calendar_of(dashboard.repos.db)
    return render_page(
        request,
        "campaigns/list.html",
        campaigns=campaigns,
        totals={c.id: totals.get(c.id, DeliveryTotals()) for c in campaigns},
        labels={c.id: _label(calendar, c.spec.occasion) for c in campaigns},
        **_display(dashboard),
    )


def _next_occasion(calendar: OccasionCalendar, today: date, country: str) -> str:
    """The occasion coming round next (a sensible first choice for a new campaign)."""
    upcoming: list[tuple[date, str]] = []
    for name in calendar.names():
        if name == BIRTHDAY:  # every day is someone's
            continue
        try:
            day = calendar.next_on_or_after(name, today, country)
        except OccasionError:
            continue
        if day is not None:
            upcoming.append((day, name))
    return min(upcoming)[1] if upcoming else ""


async def _form_page(
    request: web.Request,
    values: FormValues,
    *,
    campaign: Campaign | None = None,
    errors: FormErrors | None = None,
    preview_view: PreviewView | None = None,
    status: int = 200,
) -> web.Response:
    dashboard = dashboard_of(request)
    found: FormChoices = await dashboard.off_loop(form_choices)
    calendar = calendar_of(dashboard.repos.db)
    occasions = [(name, calendar.label(name)) for name in calendar.names()]
    if values["occasion"] and not calendar.has(values["occasion"]):
        occasions.append((values["occasion"], values["occasion"]))  # kept as typed
    return render_page(
        request,
        "campaigns/edit.html",
        status=status,
        campaign=campaign,
        action=f"{BASE}/{campaign.id}/edit" if campaign else f"{BASE}/new",
        values=values,
        errors=errors or FormErrors(),
        preview=preview_view,
        occasions=occasions,
        custom={name for name in calendar.names() if name not in BUILTIN},
        audience_fields=AUDIENCE_FIELDS,
        choices={
            "categories": [
                (c, c) for c in sorted({*found.categories, *values.chosen("audience.categories")})
            ],
            "segments": [(s.value, s.label) for s in RFM_SEGMENTS],
        },
        countries=found.countries,
        languages=SUPPORTED_LANGUAGES,
        variables=VARIABLE_FIELDS,
        defaults=DEFAULTS,
        **_display(dashboard),
    )


async def new_form(request: web.Request) -> web.StreamResponse:
    """An empty campaign form (with example templates and the next occasion chosen)."""
    dashboard = dashboard_of(request)
    calendar = calendar_of(dashboard.repos.db)
    today = dashboard.now().astimezone(ZoneInfo(dashboard.config.shop.timezone)).date()
    occasion = _next_occasion(calendar, today, dashboard.config.shop.country)
    return await _form_page(request, FormValues.new(occasion))


def _draft(request: web.Request) -> Campaign:
    campaign = _campaign(request)
    if campaign.status != CampaignStatus.DRAFT:
        raise web.HTTPConflict(
            text=f"Campaign {campaign.name} is {campaign.status.value}: only drafts can be "
            "edited (a started campaign keeps what it was started with)."
        )
    return campaign


async def edit_form(request: web.Request) -> web.StreamResponse:
    """A draft's form, filled in."""
    campaign = _draft(request)
    return await _form_page(request, FormValues.of_spec(campaign.spec), campaign=campaign)


async def save_new(request: web.Request) -> web.StreamResponse:
    """Create a draft (or, with the Preview button, show the preview without saving)."""
    return await _save(request, None)


async def save_edit(request: web.Request) -> web.StreamResponse:
    """Replace a draft's settings (or preview them)."""
    return await _save(request, _draft(request))


async def _save(request: web.Request, existing: Campaign | None) -> web.StreamResponse:
    dashboard = dashboard_of(request)
    form = await form_of(request)
    values = FormValues.posted(form)
    if existing is not None:  # the name is what identifies it (as for `create --replace`)
        values = values.with_value("name", existing.name)
    if text_field(form, "intent") == "preview":  # the no-JavaScript preview
        shown = await preview_of(dashboard, values)
        return await _form_page(request, values, campaign=existing, preview_view=shown)
    config, now = dashboard.config, dashboard.now()
    default_language = config.shop.default_language
    model = await suggestion_model(dashboard.application)
    raw = raw_campaign(values)
    try:
        checked = await dashboard.off_loop(
            lambda db: check_campaign(db, config, raw, now, model=model)
        )
    except (CampaignError, TemplateRejected) as exc:
        errors = errors_of(exc, default_language)
        return await _form_page(request, values, campaign=existing, errors=errors, status=400)
    errors = template_errors(checked.problems, default_language)
    if errors:
        return await _form_page(request, values, campaign=existing, errors=errors, status=400)
    repo, spec, year = dashboard.deps.campaigns.campaigns, checked.spec, checked.year
    if existing is None:
        try:
            saved = repo.create(spec, year, now)
        except CampaignError as exc:  # the name is taken
            errors.add(str(exc), "name")
            return await _form_page(request, values, errors=errors, status=400)
    elif repo.replace_spec(existing, spec, year, now):
        saved = existing
    else:
        errors.add(
            f"campaign {existing.name} was started meanwhile: only drafts can be edited", None
        )
        return await _form_page(request, values, campaign=existing, errors=errors, status=409)
    what = "create" if existing is None else "edit"
    dashboard.audit(request, f"campaign.{what}", f"{spec.name} ({spec.occasion} {year})")
    flash(request, f"Saved draft {spec.name} ({spec.occasion} {year}).")
    raise see_other(f"{BASE}/{saved.id}")


# ------------------------------------------------------------------ actions and the report

# Starting a draft schedules it: the bot plans it when its window opens.
ACTION_LABELS = {"start": "Schedule", "pause": "Pause", "resume": "Resume", "cancel": "Cancel"}
ACTION_URLS = {"start": "schedule", "pause": "pause", "resume": "resume", "cancel": "cancel"}


def rule_lines(rules: AudienceRules) -> list[tuple[str, str]]:
    """The rules a campaign sets (those not left at their default), as the form labels them."""
    defaults, lines = AudienceRules(), []
    for rule in AUDIENCE_FIELDS:
        value = getattr(rules, rule.key)
        if value == getattr(defaults, rule.key):
            continue
        if isinstance(value, tuple):
            value = ", ".join(value)
        lines.append((rule.label, "yes" if value is True else str(value)))
    return lines


async def _report_page(
    request: web.Request, campaign: Campaign, *, error: str = "", status: int = 200
) -> web.Response:
    dashboard = dashboard_of(request)
    attribution = dashboard.config.campaigns.settings().attribution
    report: CampaignReport = await dashboard.off_loop(
        lambda db: campaign_report(db, campaign.id, attribution)
    )
    sent = report.statuses.get("sent", 0)
    planned = (
        campaign.audience_size
        if campaign.audience_size is not None
        else sum(report.statuses.values())
    )
    funnel = funnel_chart(
        f"Campaign {campaign.name}: planned, sent, clicked, converted",
        [
            ("Planned", planned),
            ("Sent", sent),
            ("Clicked “Show me”", report.clicked),
            ("Converted", report.converted),
        ],
    )
    return render_page(
        request,
        "campaigns/show.html",
        status=status,
        campaign=campaign,
        occasion=_label(calendar_of(dashboard.repos.db), campaign.spec.occasion),
        report=report,
        planned=planned,
        sent=sent,
        funnel=funnel,
        error=error,
        actions=allowed_actions(campaign),
        action_labels=ACTION_LABELS,
        action_urls=ACTION_URLS,
        rule_lines=rule_lines(campaign.spec.audience),
        attribution_days=dashboard.config.campaigns.attribution_days,
        currency=dashboard.config.shop.currency,
        **_display(dashboard),
    )


async def campaign_page(request: web.Request) -> web.StreamResponse:
    """One campaign: settings, actions and its report with the funnel."""
    return await _report_page(request, _campaign(request))


def _action(action: str) -> Handler:
    async def act(request: web.Request) -> web.StreamResponse:
        """Schedule, pause, resume or cancel, as the CLI does; the bot follows at once."""
        dashboard = dashboard_of(request)
        campaign, config, now = _campaign(request), dashboard.config, dashboard.now()
        try:  # starting renders the templates for real customers: off the loop
            changed = await dashboard.off_loop(
                lambda db: apply_action(db, config, campaign, action, now)
            )
        except (CampaignError, TemplateRejected) as exc:
            fresh = dashboard.deps.campaigns.campaigns.get(campaign.id) or campaign
            return await _report_page(request, fresh, error=str(exc), status=409)
        follow_status(dashboard.application, changed)
        dashboard.audit(
            request,
            f"campaign.{action}",
            f"{changed.name}: {campaign.status.value} -> {changed.status.value}",
        )
        message = f"Campaign {changed.name} is {changed.status.value}"
        if changed.status == CampaignStatus.SCHEDULED and changed.opens_at is not None:
            zone = ZoneInfo(config.shop.timezone)
            when = (
                "now"
                if changed.opens_at <= now
                else f"on {changed.opens_at.astimezone(zone):%Y-%m-%d %H:%M} (shop time)"
            )
            message += f"; recipients are planned {when} and each gets it at their send time"
        flash(request, message + ".")
        logger.info("%s: campaign %s %s", account_of(request).username, changed.name, action)
        raise see_other(f"{BASE}/{changed.id}")

    return act


def register(routes: Routes) -> None:
    routes.get("/campaigns", campaign_list, access="admin")
    routes.get("/campaigns/new", new_form, access="admin")
    routes.post("/campaigns/new", save_new, access="admin")
    routes.post("/campaigns/preview", preview, access="admin")
    routes.get(r"/campaigns/{campaign_id:\d+}", campaign_page, access="admin")
    routes.get(r"/campaigns/{campaign_id:\d+}/edit", edit_form, access="admin")
    routes.post(r"/campaigns/{campaign_id:\d+}/edit", save_edit, access="admin")
    for action, path in ACTION_URLS.items():
        routes.post(rf"/campaigns/{{campaign_id:\d+}}/{path}", _action(action), access="admin")
    # The CLI's word for scheduling works too.
    routes.post(r"/campaigns/{campaign_id:\d+}/start", _action("start"), access="admin")
