"""``carebot campaign ...``, ``carebot occasions ...`` and ``carebot eval suggestions``."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import click
from sqlite_utils import Database

from bot.campaign_service import Preview
from bot.campaign_templates import TemplateRejected
from bot.campaigns import Campaign, CampaignError
from bot.config import Config
from bot.occasions import BUILTIN, OccasionError, parse_custom_occasion
from carebot.cli_common import clock, fail, load, repositories
from carebot.suggestion_views import format_eval
from storage.campaign_planning import (
    apply_action,
    calendar_of,
    check_campaign,
    preview,
)
from storage.campaigns import (
    CampaignRepository,
    CustomOccasionRepository,
    DeliveryLedger,
    campaign_report,
)
from storage.suggestions import evaluate


def _db(config: Config) -> Database:
    return repositories(config).db


def _campaign(db: Database, name: str) -> Campaign:
    campaign = CampaignRepository(db).by_name(name)
    if campaign is None:
        names = ", ".join(c.name for c in CampaignRepository(db).all()) or "none yet"
        fail(f"no campaign called {name!r} (campaigns: {names})")
    return campaign


@click.group()
def campaign() -> None:
    """Reminder campaigns: create from a TOML file, preview, start, pause, report."""


@campaign.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Replace a draft of the same name.")
@click.pass_context
def campaign_create(ctx: click.Context, file: Path, replace: bool) -> None:
    """Save a campaign (a draft) after checking it, its templates on real customers included."""
    config, now = load(ctx), clock(ctx).now()
    db = _db(config)
    try:
        checked = check_campaign(db, config, tomllib.loads(file.read_text("utf-8")), now)
    except tomllib.TOMLDecodeError as exc:
        fail(f"{file}: not valid TOML: {exc}")
    except (CampaignError, TemplateRejected) as exc:
        fail(f"{file}: {exc}")
    spec, year, problems = checked.spec, checked.year, checked.problems
    if problems:
        fail(f"{file}: the template does not render:\n" + "\n".join(str(p) for p in problems))
    repo = CampaignRepository(db)
    existing = repo.by_name(spec.name)
    if existing is not None:
        if not replace:
            fail(f"a campaign called {spec.name} exists; use --replace to update the draft")
        if not repo.replace_spec(existing, spec, year, now):
            fail(f"campaign {spec.name} is {existing.status.value}: only drafts can be replaced")
        click.echo(f"Replaced draft {spec.name} ({spec.occasion} {year}).")
        return
    created = repo.create(spec, year, now)
    click.echo(
        f"Created draft {created.name} ({spec.occasion} {year}). "
        f"Next: carebot campaign preview {created.name}"
    )


@campaign.command("list")
@click.pass_context
def campaign_list(ctx: click.Context) -> None:
    """Campaigns, newest first, with status and delivery counts."""
    db = _db(load(ctx))
    campaigns = CampaignRepository(db).all()
    if not campaigns:
        click.echo("No campaigns yet: carebot campaign create FILE.toml")
    for c in campaigns:
        statuses = DeliveryLedger(db).counts(c.id)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "not planned yet"
        click.echo(f"{c.name}  {c.spec.occasion} {c.year}  {c.status.value}  ({counts})")


@campaign.command("preview")
@click.argument("name")
@click.pass_context
def campaign_preview(ctx: click.Context, name: str) -> None:
    """Dry run: audience size, who is excluded and why, timing, rendered examples."""
    config, now = load(ctx), clock(ctx).now()
    db = _db(config)
    found = _campaign(db, name)
    try:
        result = preview(db, config, found.spec, found.year, now)
    except (CampaignError, TemplateRejected) as exc:
        fail(str(exc))
    for line in preview_lines(found, result, config.campaigns.messages_per_second):
        click.echo(line)


def preview_lines(campaign: Campaign, result: Preview, rate: int) -> list[str]:
    lines = [
        f"Campaign {campaign.name}: {campaign.spec.occasion} {campaign.year}, "
        f"{campaign.spec.days_before} days before at {campaign.spec.send_time:%H:%M} local time",
        f"Audience: {result.eligible:,} recipients ({result.matched:,} match the rules)",
    ]
    for reason, count in sorted(result.excluded.items(), key=lambda item: -item[1]):
        lines.append(f"  excluded, {reason.replace('_', ' ')}: {count:,}")
    if result.first_due and result.last_due:
        lines.append(
            f"Sending between {result.first_due:%Y-%m-%d %H:%M} and "
            f"{result.last_due:%Y-%m-%d %H:%M} UTC"
        )
    lines.append(f"Estimated send time at {rate} messages/s: {send_duration(result.send_seconds)}")
    for n, sample in enumerate(result.samples, start=1):
        lines += ["", f"--- example {n} (customer {sample.customer_id}, {sample.language}, "
                  f"due {sample.due_at:%Y-%m-%d %H:%M} UTC) ---"]  # fmt: skip
        lines.append(sample.text if sample.text is not None else f"(fails: {sample.problem})")
    return lines


def send_duration(seconds: float) -> str:
    """How long sending takes, roughly: "1 s" (a few recipients: not "0 s"), "40 s", "12 min",
    "2.5 h"; the CLI's preview and the dashboard's say it alike."""
    if seconds < 60:
        return f"{math.ceil(seconds)} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _act(ctx: click.Context, name: str, action: str) -> None:
    config, now = load(ctx), clock(ctx).now()
    db = _db(config)
    found = _campaign(db, name)
    try:
        changed = apply_action(db, config, found, action, now)
    except (CampaignError, TemplateRejected) as exc:
        fail(str(exc))
    message = f"Campaign {changed.name} is {changed.status.value}"
    if changed.status.value == "scheduled" and changed.opens_at is not None:
        when = "now" if changed.opens_at <= now else f"{changed.opens_at:%Y-%m-%d %H:%M} UTC"
        message += f"; recipients are planned {when} and sent in their own send time"
    click.echo(message + ".")


ACTION_HELP = {
    "start": "Schedule a draft: the running bot plans and sends it when its window opens.",
    "pause": "Stop sending (what was sent stays sent; resume goes on from there).",
    "resume": "Go on with a paused campaign where it stopped.",
    "cancel": "Cancel for good: nothing more is sent.",
}


def _action_command(action: str) -> click.Command:
    @click.argument("name")
    @click.pass_context
    def command(ctx: click.Context, name: str) -> None:
        _act(ctx, name, action)

    return click.command(action, help=ACTION_HELP[action])(command)


for _action in ACTION_HELP:
    campaign.add_command(_action_command(_action))


@campaign.command("report")
@click.argument("name")
@click.pass_context
def campaign_report_command(ctx: click.Context, name: str) -> None:
    """Sent, failed, skipped (and why), clicks, opt-outs and attributed conversions."""
    config = load(ctx)
    db = _db(config)
    found = _campaign(db, name)
    days = config.campaigns.attribution_days
    r = campaign_report(db, found.id, config.campaigns.settings().attribution)
    sent = r.statuses.get("sent", 0)

    def share(n: int) -> str:
        return f"{n:,} ({100 * n / sent:.1f}% of sent)" if sent else f"{n:,}"

    click.echo(f"Campaign {found.name}: {found.spec.occasion} {found.year}, {found.status.value}")
    if found.audience_size is not None:
        click.echo(f"Planned for {found.audience_size:,} recipients")
    for status in ("sent", "pending", "sending", "failed", "skipped", "uncertain"):
        if r.statuses.get(status):
            click.echo(f"  {status}: {r.statuses[status]:,}")
    for title, reasons in (("failed", r.failed), ("skipped", r.skipped)):
        for reason, count in reasons.items():
            click.echo(f"    {title}, {reason}: {count:,}")
    click.echo(f'Clicked "Show me": {share(r.clicked)}, {r.clicks:,} clicks')
    click.echo(f"Not this year: {share(r.not_this_year)}")
    click.echo(f"Stopped reminders: {share(r.opted_out)}")
    click.echo(
        f"Converted (ordered within {days} days): {share(r.converted)}, "
        f"revenue {r.revenue:,.2f} {config.shop.currency}"
    )


# ------------------------------------------------------------------ occasions


@click.group()
def occasions() -> None:
    """The occasion calendar: built-in and your own occasions."""


@occasions.command("list")
@click.option("--year", type=int, help="Year to show dates for (default this year).")
@click.option("--country", default=None, help="ISO country code (default [shop] country).")
@click.pass_context
def occasions_list(ctx: click.Context, year: int | None, country: str | None) -> None:
    """Every occasion and its date in a year, for a country."""
    config = load(ctx)
    db = _db(config)
    calendar = calendar_of(db)
    year = year or clock(ctx).now().year
    code = (country or config.shop.country).upper()
    for name in calendar.names():
        try:
            day = calendar.date_of(name, year, code)
        except OccasionError as exc:
            fail(str(exc))
        where = "custom" if name not in BUILTIN else "built-in"
        when = (
            f"{day:%a %d %b %Y}"
            if day
            else "per customer (birthday)"
            if name == "birthday"
            else "-"
        )
        click.echo(f"{name:<20} {when:<24} {calendar.label(name)} ({where})")


@occasions.command("add")
@click.argument("name")
@click.argument("rule")
@click.option("--label", default="", help="How it is called in messages.")
@click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="XX=RULE",
    help="A different rule in one country, e.g. --country 'US=2nd sun of may'.",
)
@click.pass_context
def occasions_add(
    ctx: click.Context, name: str, rule: str, label: str, countries: tuple[str, ...]
) -> None:
    """Add (or change) a custom occasion: RULE is "MM-DD", "2nd sun of may", "easter+39"
    or "lunar 08-15"."""
    config = load(ctx)
    by_country = {}
    for item in countries:
        code, sep, country_rule = item.partition("=")
        if not sep:
            fail(f"--country {item!r}: expected XX=RULE")
        by_country[code.strip()] = country_rule.strip()
    try:
        occasion = parse_custom_occasion(name, rule, label=label, by_country=by_country)
    except OccasionError as exc:
        fail(str(exc))
    CustomOccasionRepository(_db(config)).save(occasion, clock(ctx).now())
    click.echo(f"Saved occasion {occasion.name}: {occasion.rule}")


@occasions.command("remove")
@click.argument("name")
@click.pass_context
def occasions_remove(ctx: click.Context, name: str) -> None:
    """Remove a custom occasion."""
    if not CustomOccasionRepository(_db(load(ctx))).remove(name):
        fail(f"no custom occasion called {name!r}")
    click.echo(f"Removed occasion {name}.")


# ------------------------------------------------------------------ evaluation


@click.group("eval")
def eval_group() -> None:
    """Offline evaluation on the stored purchase history."""


@eval_group.command("suggestions")
@click.option("--occasion", required=True, help="Occasion name, e.g. christmas.")
@click.option("--year", required=True, type=int, help="The year whose window is predicted.")
@click.option("--n", "count", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--window-days", default=21, show_default=True, type=click.IntRange(1, 120))
@click.option("--country", default=None, help="ISO country code (default [shop] country).")
@click.pass_context
def eval_suggestions(
    ctx: click.Context, occasion: str, year: int, count: int, window_days: int, country: str | None
) -> None:
    """Hit rate of gift suggestions against a most-popular baseline, on history: only data
    from before the occasion window of YEAR is used to predict purchases in that window."""
    config = load(ctx)
    db = _db(config)
    calendar = calendar_of(db)
    code = (country or config.shop.country).upper()

    def window(y: int) -> tuple[datetime, datetime] | None:
        try:
            day = calendar.date_of(occasion, y, code)
        except OccasionError as exc:
            fail(str(exc))
        if day is None:
            return None
        end = datetime.combine(day, time(0, 0), tzinfo=UTC)
        return end - timedelta(days=window_days), end

    target = window(year)
    if target is None:
        fail(f"{occasion} has no date in {year}")
    earlier = [w for w in (window(y) for y in range(year - 10, year)) if w is not None]
    result = evaluate(
        db,
        window_start=target[0],
        window_end=target[1],
        n=count,
        occasion_windows_before=earlier,
    )
    click.echo(
        f"{calendar.label(occasion)} {year} ({code}): window {target[0]:%Y-%m-%d} to "
        f"{target[1] - timedelta(days=1):%Y-%m-%d}, top {count}"
    )
    click.echo(format_eval(result))
