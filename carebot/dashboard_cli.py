"""``carebot dashboard ...``: dashboard accounts from the command line (the first admin, a
forgotten password, a one-time login link)."""

from __future__ import annotations

import sys

import click

from bot.passwords import PasswordError, hash_password
from carebot.cli_common import clock, fail, load, repositories
from storage.dashboard import (
    ROLES,
    Account,
    AccountError,
    AccountRepository,
    DashboardStores,
    issue_login_link,
)


def _stores(ctx: click.Context) -> DashboardStores:
    return DashboardStores.over(repositories(load(ctx)).db)


def _account(accounts: AccountRepository, username: str) -> Account:
    account = accounts.by_username(username)
    if account is None:
        fail(f"no dashboard account called {username!r} (see `carebot dashboard users`)")
    return account


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a hidden prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        return hash_password(password)
    except PasswordError as exc:
        fail(str(exc))


@click.group()
def dashboard() -> None:
    """Dashboard accounts (the web pages at /admin)."""


@dashboard.command("add-user")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="staff", show_default=True)
@click.option("--name", "display_name", help="Name shown to colleagues (default: USERNAME).")
@click.option("--telegram-id", type=int, help="Their Telegram user id (for /login links).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def add_user(
    ctx: click.Context,
    username: str,
    role: str,
    display_name: str | None,
    telegram_id: int | None,
    password_stdin: bool,
) -> None:
    """Create an account (asks for its password)."""
    stores = _stores(ctx)
    password_hash = _read_password(password_stdin)
    try:
        account = stores.accounts.create(
            username,
            display_name=display_name or username,
            role="admin" if role == "admin" else "staff",
            password_hash=password_hash,
            telegram_user_id=telegram_id,
            now=clock(ctx).now(),
        )
    except AccountError as exc:
        fail(str(exc))
    click.echo(f"Created {account.role} account {account.username}.")


@dashboard.command("users")
@click.pass_context
def users(ctx: click.Context) -> None:
    """List the accounts."""
    accounts = _stores(ctx).accounts.all()
    if not accounts:
        click.echo("No dashboard accounts yet: `carebot dashboard add-user NAME --role admin`.")
    for account in accounts:
        state = "" if account.active else "  (disabled)"
        telegram = f"  telegram {account.telegram_user_id}" if account.telegram_user_id else ""
        click.echo(
            f"{account.username:<20} {account.role:<6} {account.display_name}{telegram}{state}"
        )


@dashboard.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def passwd(ctx: click.Context, username: str, password_stdin: bool) -> None:
    """Set an account's password (ends its open sessions)."""
    stores = _stores(ctx)
    account = _account(stores.accounts, username)
    stores.accounts.update(
        account.id, clock(ctx).now(), password_hash=_read_password(password_stdin)
    )
    click.echo(f"Password of {account.username} changed; its sessions have ended.")


@dashboard.command("disable")
@click.argument("username")
@click.pass_context
def disable(ctx: click.Context, username: str) -> None:
    """Disable an account (it can no longer log in; its sessions end)."""
    stores = _stores(ctx)
    account = _account(stores.accounts, username)
    stores.accounts.update(account.id, clock(ctx).now(), active=False)
    click.echo(f"Disabled {account.username}.")


@dashboard.command("link")
@click.argument("username")
@click.pass_context
def link(ctx: click.Context, username: str) -> None:
    """Print a one-time login link for an account (valid for 10 minutes)."""
    config = load(ctx)
    stores = DashboardStores.over(repositories(config).db)
    account = _account(stores.accounts, username)
    if not account.active:
        fail(f"{account.username} is disabled")
    url = issue_login_link(stores.links, account.id, config.web.base_url, clock(ctx).now())
    click.echo(url)
