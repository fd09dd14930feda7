"""The ``carebot`` command."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import logging
import secrets
import signal
import socket
import sqlite3
import sys
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.clock import SystemClock
from bot.config import Config, DatabaseConfig, resolve_database_path
from bot.importing import (
    RETAIL_PROFILE,
    ImportSummary,
    Problem,
    parse_column_map,
    with_date_format,
)
from bot.passwords import hash_password
from bot.reports import build_report
from bot.segments import SegmentSummary
from bot.survey_report import GroupBy, build_survey_report
from bot.surveys import SurveyKind
from bot.tickets import ACTIVE_STATUSES, TicketStatus
from carebot.campaign_cli import campaign, eval_group, occasions
from carebot.cli_common import (
    DEMO_DATABASE,
    CarebotGroup,
    clock,
    fail,
    load,
    repositories,
)
from carebot.dashboard_cli import dashboard
from carebot.importer import ImportFileError, run_order_import, run_product_import
from carebot.loading import import_faq, load_demo_shop
from carebot.runtime import build_application, services_over
from carebot.survey_views import survey_csv_rows, survey_report_lines
from carebot.ticket_views import period_label, report_lines, ticket_details, ticket_lines
from storage.dashboard import DashboardStores, issue_login_link
from storage.database import (
    StorageError,
    applied_migrations,
    database_problem,
    open_database,
    pending_migrations,
)
from storage.imports import BATCH_INVOICES, ImportRunLog
from storage.reports import customer_labels, order_external_id, tickets_created
from storage.segments import SegmentRepository, compute_segments, recompute_segments
from storage.survey_report import surveys_sent
from storage.tickets import RelayMap, TicketRepository


@click.group(cls=CarebotGroup)
@click.option(
    "--config", "-c", "config", metavar="PATH", help="Config file (default carebot.toml)."
)
@click.option("--verbose", "-v", is_flag=True, help="Log debug details.")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: bool) -> None:
    """carebot: a self-hosted Telegram customer-care bot for online shops."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, and Bot API URLs contain the token: never log secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Start the bot on Telegram (polling or webhook, as configured)."""
    config = load(ctx)
    if config.uses_sandbox:
        fail(
            f"{config.source}: [telegram] token is empty: set it or CAREBOT_TELEGRAM_TOKEN "
            "(or try the bot in the terminal with `carebot shell`)"
        )
    serve(config)


class RedactSecrets(logging.Filter):
    """Blank out the token and webhook secret wherever a library logs them (e.g. in URLs)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


def redact_secrets_in_logs(config: Config) -> None:
    redactor = RedactSecrets([config.telegram.token, config.telegram.webhook_secret])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)


def serve(config: Config) -> None:
    redact_secrets_in_logs(config)

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with build_application(config).running():
            await stop.wait()

    try:
        asyncio.run(main_loop())
    except StorageError as exc:
        fail(str(exc))
    except (InvalidToken, TelegramError) as exc:
        fail(telegram_failure(config, exc))


def telegram_failure(config: Config, exc: TelegramError) -> str:
    """One line for a start-up failure at the Bot API, never echoing the token."""
    if isinstance(exc, InvalidToken):
        return (
            f"{config.source}: [telegram] token was rejected by the Bot API "
            "(check it with @BotFather)"
        )
    if isinstance(exc, NetworkError):
        server = config.telegram.base_url or "https://api.telegram.org"
        return f"{config.source}: [telegram] cannot reach the Bot API at {server}: {exc.message}"
    return f"{config.source}: the Bot API refused to start the bot: {exc.message}"


@main.command()
@click.option("--as", "as_user", type=int, default=None, help="Sandbox Telegram user id.")
@click.pass_context
def shell(ctx: click.Context, as_user: int | None) -> None:
    """Chat with the bot in the terminal through the local Bot API sandbox."""
    config = load(ctx, allow_example=True)
    start_shell(config, as_user)


def start_shell(
    config: Config,
    as_user: int | None,
    users: dict[int, str] | None = None,
    *,
    with_web: bool = False,
) -> None:
    """The terminal sandbox; ``with_web`` keeps the web server (the demo's dashboard) on."""
    from carebot.shell import run_shell  # the sandbox is only needed here

    # The conversation is the output here; keep routine log lines out of it.
    logging.getLogger().setLevel(logging.WARNING)

    polling = dataclasses.replace(
        config,
        telegram=dataclasses.replace(config.telegram, mode="polling"),
        web=dataclasses.replace(config.web, enabled=with_web),
    )
    try:
        asyncio.run(run_shell(polling, user_id=as_user, known_users=users or {}))
    except StorageError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


@main.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Load the demo shop into var/demo.db and start it (Telegram if a token is set, else shell)."""
    base = load(ctx, allow_example=True)
    config = dataclasses.replace(
        base, database=DatabaseConfig(path=str(Path(DEMO_DATABASE).resolve()))
    )
    repos = repositories(config)
    shop = load_demo_shop(repos, config, SystemClock())
    repos.db.close()
    click.echo(
        f"Demo shop loaded: {shop.customers} customers, {shop.orders} orders, "
        f"{shop.faq_entries} FAQ entries ({DEMO_DATABASE})."
    )
    if config.uses_sandbox:
        with_web = port_is_free(config.web.host, config.web.port)
        if with_web:
            click.echo(demo_dashboard_access(config))
        else:
            click.echo(f"Port {config.web.port} is busy: the demo runs without its dashboard.")
        click.echo("No Telegram token configured: starting the terminal sandbox.\n")
        start_shell(config, None, shop.telegram_users, with_web=with_web)
    else:
        click.echo("Starting on Telegram; press Ctrl+C to stop.")
        serve(config)


def port_is_free(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket()) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def demo_dashboard_access(config: Config) -> str:
    """A "demo" admin account with a fresh random password (and a one-time link) per start."""
    db = repositories(config).db
    stores = DashboardStores.over(db)
    now, password = SystemClock().now(), secrets.token_urlsafe(12)
    try:
        account = stores.accounts.by_username("demo")
        if account is None:
            account = stores.accounts.create(
                "demo",
                display_name="Demo admin",
                role="admin",
                password_hash=hash_password(password),
                telegram_user_id=None,
                now=now,
            )
        else:
            stores.accounts.update(account.id, now, password_hash=hash_password(password))
        link = issue_login_link(stores.links, account.id, config.web.base_url, now)
    finally:
        db.close()
    return (
        f"Dashboard: {config.web.base_url}/admin (user demo, password {password})\n"
        f"  or open this one-time link: {link}"
    )


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply pending schema migrations (safe to run again)."""
    config = load(ctx)
    path = resolve_database_path(config)
    try:
        database = open_database(path, migrate=False)
        pending = pending_migrations(database)
        database.close()
        database = open_database(path)
    except StorageError as exc:
        fail(str(exc))
    click.echo(
        f"{path}: applied {len(pending)} migration(s); "
        f"{len(applied_migrations(database))} in total, none pending."
    )


@main.group()
def faq() -> None:
    """FAQ entries."""


@faq.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def faq_import(ctx: click.Context, file: Path) -> None:
    """Load FAQ entries from a TOML file; bad entries are reported, good ones kept."""
    repos = repositories(load(ctx))
    result = import_faq(repos, file, SystemClock())
    for problem in result.problems:
        click.echo(f"skipped: {problem}", err=True)
    click.echo(f"{result.loaded} FAQ entries loaded, {len(result.problems)} problem(s).")
    if result.problems and not result.loaded:
        sys.exit(1)


@main.group()
def customers() -> None:
    """Customers."""


@customers.command()
@click.argument("external_id")
@click.pass_context
def link(ctx: click.Context, external_id: str) -> None:
    """Print a one-time t.me deep link that binds a Telegram user to this shop customer."""
    config = load(ctx)
    repos = repositories(config)
    customer = repos.customers.by_external_id(external_id)
    if customer is None:
        fail(f"no customer with external id {external_id!r}")
    username = config.telegram.username or asyncio.run(_bot_username(config))
    services = services_over(config, repos, SystemClock())
    token, expires = services.links.issue(customer.id)
    click.echo(f"https://t.me/{username}?start={token}")
    click.echo(f"(single use, expires {expires:%Y-%m-%d %H:%M} UTC)", err=True)


async def _bot_username(config: Config) -> str:
    if config.uses_sandbox:
        fail(f"{config.source}: [telegram] username is needed to print a link without a token")
    from telegram import Bot

    base_url = config.telegram.base_url or "https://api.telegram.org/bot"
    try:
        async with Bot(config.telegram.token, base_url=base_url) as bot:
            return bot.username
    except (InvalidToken, TelegramError) as exc:
        fail(telegram_failure(config, exc))


@customers.command()
@click.argument("external_id")
@click.pass_context
def show(ctx: click.Context, external_id: str) -> None:
    """Show a customer: contact and opt-outs, purchases, RFM scores, segment, last orders."""
    config = load(ctx)
    store = SegmentRepository(repositories(config).db)
    who = store.profile(external_id)
    if who is None:
        fail(f"no customer with external id {external_id!r}")
    telegram = f"linked (user {who.telegram_user_id})" if who.telegram_user_id else "not linked"
    flags = [text for text, on in (("blocked the bot", who.blocked), ("banned", who.banned)) if on]
    opted_out = (
        ("reminders", who.reminders_opt_out),
        ("surveys", who.surveys_opt_out),
        ("order updates", who.order_updates_opt_out),
    )
    click.echo(f"{who.name or '(no name)'} (external id {external_id})")
    click.echo(
        f"  country: {who.country or '-'}, language: {who.language or '-'}, "
        f"Telegram: {', '.join([telegram, *flags])}"
    )
    click.echo(f"  opted out of: {', '.join(n for n, on in opted_out if on) or 'nothing'}")
    totals = store.purchase_totals(who.id)
    if not totals:
        click.echo("  no orders or returns")
        return
    t = totals[0]
    first, last = (f"{d:%Y-%m-%d}" if d else "-" for d in (t.first_purchase, t.last_purchase))
    click.echo(
        f"  orders {t.orders}, returns {t.returns}, net spend {t.spend:,.2f} "
        f"{config.shop.currency}; first purchase {first}, last purchase {last}"
    )
    stored = store.stats_for(who.id)
    if stored is None:
        click.echo("  RFM: not computed yet (`carebot customers segments --recompute`)")
    else:
        s = stored.stats
        scores = f"R{s.recency} F{s.frequency} M{s.monetary}, " if s.scored else ""
        click.echo(
            f"  RFM: {scores}segment: {s.segment.label}, "
            f"key customer: {'yes' if s.key_customer else 'no'} "
            f"(computed {stored.computed_at:%Y-%m-%d %H:%M} UTC)"
        )
    click.echo("Last orders:")
    for o in store.recent_orders(who.id, limit=5):
        click.echo(
            f"  {o.placed_at:%Y-%m-%d}  {o.external_id:<12} {o.kind:<6} {o.status:<9} "
            f"{o.total:>12,.2f} {o.currency}"
        )


@customers.command()
@click.option(
    "--as-of",
    "as_of",
    metavar="DATE",
    help="Look from this day (YYYY-MM-DD): only purchases before it count. Without "
    "--recompute this is a preview and nothing is stored.",
)
@click.option("--recompute", is_flag=True, help="Recompute from the orders and store the result.")
@click.pass_context
def segments(ctx: click.Context, as_of: str | None, recompute: bool) -> None:
    """Customers and revenue per RFM segment, key customers, the top 20%'s revenue share."""
    config = load(ctx)
    day = None
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of must be a date like 2011-12-31, got {as_of!r}")
    db = repositories(config).db
    if recompute:
        summary: SegmentSummary | None = recompute_segments(db, SystemClock().now(), day)
    elif day is not None:
        summary = compute_segments(db, day).summary
    else:
        summary = SegmentRepository(db).summary()
    if summary is None:
        click.echo("No segments computed yet: run `carebot customers segments --recompute`.")
        return
    for line in describe_segments(summary, config.shop.currency):
        click.echo(line)


def describe_segments(summary: SegmentSummary, currency: str) -> list[str]:
    when = [f"as of {summary.as_of}"] if summary.as_of else []
    if summary.computed_at:
        when.append(f"computed {summary.computed_at:%Y-%m-%d %H:%M} UTC")
    else:
        when.append("preview, not stored")
    lines = [
        f"Segments {', '.join(when)}: {summary.customers:,} customers with orders",
        f"{'segment':<12} {'customers':>10} {'share':>7} {'revenue':>16} {'share':>7}",
    ]
    rows = [
        (
            r.segment.label,
            r.customers,
            summary.customer_share(r),
            r.revenue_cents,
            summary.revenue_share(r),
        )
        for r in summary.rows
    ]
    rows.append(("total", summary.customers, 1.0, summary.revenue_cents, 1.0))
    for label, count, share, revenue, revenue_share in rows:
        lines.append(
            f"{label:<12} {count:>10,} {share:>7.1%} {revenue / 100:>16,.2f} {revenue_share:>7.1%}"
        )
    lines.append(f"(revenue in {currency}: net spend of customers whose net spend is positive)")
    if summary.returns_only:
        plural = "s" if summary.returns_only != 1 else ""
        lines.append(
            f"{summary.returns_only:,} customer{plural} with returns only (not segmented)."
        )
    lines.append(
        f"Key customers: {summary.key_customers:,} ({summary.key_customer_share:.1%} of "
        f"customers) bring {summary.key_revenue_share:.1%} of revenue."
    )
    lines.append(
        f"Top 20% of customers ({summary.top_fifth_customers:,}) bring "
        f"{summary.top_fifth_revenue_share:.1%} of revenue."
    )
    return lines


STATUS_FILTERS: dict[str, tuple[TicketStatus, ...]] = {
    "active": ACTIVE_STATUSES,
    **{s.value: (s,) for s in TicketStatus},
    "all": (),
}


@main.group()
def tickets() -> None:
    """Support tickets: complaints and inquiries handed to staff."""


@tickets.command("list")
@click.option(
    "--status",
    type=click.Choice(list(STATUS_FILTERS)),
    default="active",
    show_default=True,
    help="active: open, answered and reopened.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.pass_context
def tickets_list(ctx: click.Context, status: str, limit: int) -> None:
    """Tickets, newest first: status, priority, customer, created, assignee, SLA state."""
    config = load(ctx)
    db = repositories(config).db
    statuses = [s.value for s in STATUS_FILTERS[status]]
    found = TicketRepository(db).listing(statuses=statuses, limit=limit)
    if not found:
        click.echo(f"No {status} tickets." if status != "all" else "No tickets.")
        return
    names = customer_labels(db, (t.customer_id for t in found))
    tz = config.business_calendar().tz
    for line in ticket_lines(found, names, tz, clock(ctx).now()):
        click.echo(line)


@tickets.command("show")
@click.argument("ticket_id", metavar="ID", type=int)
@click.pass_context
def tickets_show(ctx: click.Context, ticket_id: int) -> None:
    """One ticket: its details and SLA targets, event timeline and conversation."""
    config = load(ctx)
    db = repositories(config).db
    ticket = TicketRepository(db).get(ticket_id)
    if ticket is None:
        fail(f"no ticket #{ticket_id}")
    customer = customer_labels(db, [ticket.customer_id]).get(ticket.customer_id)
    order = order_external_id(db, ticket.order_id) if ticket.order_id is not None else None
    events = TicketRepository(db).events(ticket_id)
    messages = RelayMap(db).for_ticket(ticket_id)
    tz = config.business_calendar().tz
    for line in ticket_details(ticket, customer, order, events, messages, tz):
        click.echo(line)


@main.group("report")
def report_group() -> None:
    """Reports."""


SINCE = click.option(
    "--since",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day (YYYY-MM-DD, in the shop's timezone).",
)
UNTIL = click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    help="End day, not included (YYYY-MM-DD); default: no end.",
)


def report_period(
    since: datetime, until: datetime | None, tz: ZoneInfo
) -> tuple[datetime, datetime | None, str]:
    """The days [since, until) as times in the shop's timezone, and how to say them."""
    if until is not None and until <= since:
        raise click.BadParameter("must be a later day than --since", param_hint="'--until'")
    end = until.replace(tzinfo=tz) if until is not None else None
    label = period_label(since.date(), until.date() if until is not None else None)
    return since.replace(tzinfo=tz), end, label


@report_group.command("tickets")
@SINCE
@UNTIL
@click.pass_context
def report_tickets(ctx: click.Context, since: datetime, until: datetime | None) -> None:
    """Tickets created in a period: counts, first response and resolution times, SLA
    breaches, per staff member."""
    config = load(ctx)
    calendar = config.business_calendar()
    start, end, period = report_period(since, until, calendar.tz)
    records = tickets_created(repositories(config).db, start, end)
    for line in report_lines(build_report(records, calendar), period, calendar.tz):
        click.echo(line)


@report_group.command("surveys")
@SINCE
@UNTIL
@click.option(
    "--by",
    type=click.Choice([g.value for g in GroupBy]),
    help="Also per ISO week or calendar month (in the shop's timezone), product or ticket "
    "category, or staff member.",
)
@click.option(
    "--kind",
    type=click.Choice([*(k.value for k in SurveyKind), "all"]),
    default="all",
    show_default=True,
    help="purchase: after an order; support: after a ticket.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the figures (one row per group and the total) to this CSV file.",
)
@click.pass_context
def report_surveys(
    ctx: click.Context,
    since: datetime,
    until: datetime | None,
    by: str | None,
    kind: str,
    csv_file: Path | None,
) -> None:
    """Satisfaction surveys sent in a period: response rate, average score, CSAT, scores
    1-5 and NPS, overall and per week, category or staff member."""
    config = load(ctx)
    tz = ZoneInfo(config.shop.timezone)
    start, end, period = report_period(since, until, tz)
    only = SurveyKind(kind) if kind != "all" else None
    records = surveys_sent(repositories(config).db, start, end, only)
    report = build_survey_report(records, GroupBy(by) if by else None, tz)
    for line in survey_report_lines(report, period, tz, only):
        click.echo(line)
    if csv_file is not None:
        write_csv(csv_file, survey_csv_rows(report))
        click.echo(f"Written to {csv_file}.")


def write_csv(path: Path, rows: list[list[str]]) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(rows)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


@main.group("import")
def import_group() -> None:
    """Purchase history and catalog imports."""


@import_group.command("orders")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--profile",
    type=click.Choice(["retail", "generic"]),
    default="retail",
    show_default=True,
    help="retail: Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, "
    "Country. generic: the same fields from the columns given with --map.",
)
@click.option(
    "--map",
    "mapping",
    default="",
    metavar="FIELD=COLUMN,...",
    help="Column names for the generic profile, e.g. invoice=OrderNo,customer=Email.",
)
@click.option(
    "--date-format",
    default=None,
    metavar="FORMAT",
    help='strptime format of the dates, e.g. "%d/%m/%Y %H:%M" for day-first exports '
    "(default: ISO-8601 and the retail export's forms).",
)
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write every problem line (line number and reason) to this CSV file.",
)
@click.pass_context
def import_orders(
    ctx: click.Context,
    file: Path,
    profile: str,
    mapping: str,
    date_format: str | None,
    errors_file: Path | None,
) -> None:
    """Import order lines (CSV or JSON Lines, .gz too); bad lines are reported, good ones kept."""
    config = load(ctx)
    if profile == "generic" and not mapping:
        fail("--profile generic needs --map, e.g. --map invoice=OrderNo,sku=SKU,customer=Email")
    try:
        cols = with_date_format(
            parse_column_map(mapping) if mapping else RETAIL_PROFILE, date_format
        )
    except ValueError as exc:
        fail(str(exc))
    repos = repositories(config)
    for started_at in ImportRunLog(repos.db).unfinished(str(file)):
        click.echo(
            f"An import of {file} started {started_at} did not finish (stopped, or still "
            "running): the batches it committed are kept, and this run completes it."
        )
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            click.progressbar(
                length=file.stat().st_size, label=f"Importing {file.name}", file=sys.stderr
            )
        )
        on_problem = None
        if errors_file is not None:
            problems = csv.writer(stack.enter_context(errors_file.open("w", newline="")))
            problems.writerow(["line", "problem"])

            def on_problem(problem: Problem) -> None:
                problems.writerow([problem.line, problem.reason])

        try:
            summary, _ = run_order_import(
                repos,
                file,
                config=config,
                cols=cols,
                profile=profile,
                clock=SystemClock(),
                on_progress=bar.update,
                on_problem=on_problem,
            )
        except ImportFileError as exc:
            fail(f"{file}: {exc}")
        except sqlite3.Error as exc:
            fail(
                f"{file}: import stopped: {database_problem(resolve_database_path(config), exc)}"
                f". Invoices are committed {BATCH_INVOICES} at a time: the batches before "
                "were kept, nothing of the unfinished one was; run it again to complete"
            )
    elapsed = time.monotonic() - started
    for line in describe_import(file, summary, elapsed):
        click.echo(line)
    if summary.invoices:
        segments = recompute_segments(repos.db, SystemClock().now())
        click.echo(
            f"  segments   recomputed for {segments.customers:,} customers; "
            f"{segments.key_customers:,} key customers bring "
            f"{segments.key_revenue_share:.0%} of revenue (`carebot customers segments`)"
        )
    if errors_file is not None:
        click.echo(f"All problems (bad and duplicate lines) written to {errors_file}.")


def describe_import(file: Path, s: ImportSummary, elapsed: float) -> list[str]:
    rate = s.lines / elapsed if elapsed > 0 else 0.0
    lines = [
        f"Imported {file.name}: {s.lines:,} lines in {elapsed:.1f} s ({rate:,.0f} lines/s)",
        f"  orders     {s.orders_created:,} new, {s.orders_changed:,} changed, "
        f"{s.orders_unchanged:,} unchanged; {s.returns:,} of them returns/cancellations",
        f"  customers  {s.customers_created:,} new",
        f"  products   {s.products_created:,} new",
        f"  skipped    {s.skipped_no_customer:,} lines without a customer id, "
        f"{s.duplicates:,} duplicate lines",
        f"  fees       {s.fee_lines:,} postage/fee/adjustment lines (kept on orders, not products)",
        f"  bad lines  {s.bad:,}",
    ]
    if s.parts_merged:
        lines.insert(
            2,
            f"             {s.parts_merged:,} invoice(s) continued further down the "
            "file, merged into their order",
        )
    shown = [p for p in s.problems if "duplicate" not in p.reason][:10] or s.problems[:10]
    if shown:
        lines.append("  first problems:")
        lines += [f"    {p}" for p in shown]
    return lines


@import_group.command("products")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_products(ctx: click.Context, file: Path) -> None:
    """Load a product catalog (CSV: sku, name, category, price) to set real categories."""
    config = load(ctx)
    repos = repositories(config)
    try:
        result = run_product_import(repos, file, SystemClock())
    except ImportFileError as exc:
        fail(f"{file}: {exc}")
    except sqlite3.Error as exc:  # one transaction: all or nothing
        path = resolve_database_path(config)
        fail(f"{file}: nothing imported: {database_problem(path, exc)}")
    click.echo(f"{result.created:,} products created, {result.updated:,} updated.")
    for problem in result.problems[:20]:
        click.echo(f"skipped: {problem}", err=True)
    if len(result.problems) > 20:
        click.echo(f"... and {len(result.problems) - 20} more problems", err=True)


@main.group("config")
def config_group() -> None:
    """Configuration."""


@config_group.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration file and say what it will do."""
    config = load(ctx)
    click.echo(f"{config.source}: OK")
    click.echo(
        f"  shop: {config.shop.name} ({config.shop.timezone}, {config.shop.default_language})"
    )
    click.echo(
        f"  telegram: {'token set' if config.telegram.token else 'no token (sandbox only)'}, "
        f"{config.telegram.mode} mode"
    )
    click.echo(f"  database: {resolve_database_path(config)}")
    staff = config.staff
    if staff.chat_id:
        who = f"{len(staff.members)} listed members" if staff.members else "everyone in it"
        click.echo(f"  staff chat: {staff.chat_id} ({who}; {len(staff.admins)} admins)")
    else:
        click.echo("  staff chat: none yet (tickets are kept and posted once it is set)")


main.add_command(campaign)
main.add_command(occasions)
main.add_command(eval_group)
main.add_command(dashboard)
