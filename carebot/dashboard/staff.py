"""Staff management (admins): dashboard accounts, their roles, passwords and Telegram ids;
the Telegram staff setup from config.toml (read-only); the audit log. And "My account"
(everyone): changing one's own password, which needs the current one.

Guards: nobody disables, demotes or resets the password of their own account here (their
own password is changed on /admin/account, with the current one), and the last active admin
can never be disabled or demoted (checked in the same transaction as the change). A
disabled or demoted account, or one with a new password, loses its open sessions at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.passwords import PasswordError, check_password_rules, hash_password, verify_password
from carebot.dashboard.app import (
    Form,
    Routes,
    account_of,
    dashboard_of,
    flash,
    form_of,
    int_param,
    render_page,
    see_other,
    text_field,
)
from carebot.dashboard.auth import THROTTLE, start_session
from storage.dashboard import ROLES, Account, AccountError, Role

MAX_DISPLAY_NAME = 100
AUDIT_SHOWN = 50


class FieldError(ValueError):
    """Input that cannot be used, naming the form field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


@dataclass
class NewAccount:
    """The add-account form as typed (the password is never sent back)."""

    username: str = ""
    display_name: str = ""
    role: str = "staff"
    telegram_user_id: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def telegram_id_of(raw: str) -> int | None:
    """A Telegram user id from a form (empty: none)."""
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 15 or int(raw) == 0:
        raise FieldError("telegram_user_id", "a Telegram user id is a positive number")
    return int(raw)


def role_of(raw: str) -> Role:
    if raw == "admin":
        return "admin"
    if raw == "staff":
        return "staff"
    raise FieldError("role", f"the role must be one of {', '.join(ROLES)}")


def display_name_of(raw: str, username: str) -> str:
    name = raw or username
    if len(name) > MAX_DISPLAY_NAME:
        raise FieldError("display_name", f"at most {MAX_DISPLAY_NAME} characters")
    return name


async def new_password_hash(form: Form, name: str = "password") -> str:
    """The hash of a new password typed twice (``name`` and ``name``_again)."""
    password = str(form.get(name, ""))
    if password != str(form.get(f"{name}_again", "")):
        raise FieldError(name, "the two passwords differ")
    try:
        check_password_rules(password)
    except PasswordError as exc:
        raise FieldError(name, str(exc)) from None
    return await asyncio.to_thread(hash_password, password)


# ------------------------------------------------------------------ the staff page


def _staff_page(
    request: web.Request,
    *,
    new: NewAccount | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> web.Response:
    dashboard = dashboard_of(request)
    staff = dashboard.config.staff
    return render_page(
        request,
        "staff/list.html",
        status=status,
        accounts=dashboard.stores.accounts.all(),
        new=new or NewAccount(),
        refusal=refusal,
        roles=ROLES,
        staff=staff,
        audit=dashboard.stores.audit.recent(AUDIT_SHOWN),
        zone=ZoneInfo(dashboard.config.shop.timezone),
    )


async def staff_list(request: web.Request) -> web.StreamResponse:
    """Accounts, the Telegram staff setup and the recent audit log."""
    return _staff_page(request)


async def add_account(request: web.Request) -> web.StreamResponse:
    """Create an account with a first password (checked by the password rules, hashed)."""
    dashboard, form = dashboard_of(request), await form_of(request)
    new = NewAccount(
        username=text_field(form, "username")[:100],
        display_name=text_field(form, "display_name")[:200],
        role=text_field(form, "role"),
        telegram_user_id=text_field(form, "telegram_user_id")[:30],
    )
    try:
        role = role_of(new.role)
        telegram_id = telegram_id_of(new.telegram_user_id)
        display_name = display_name_of(new.display_name, new.username)
        password_hash = await new_password_hash(form)
        account = dashboard.stores.accounts.create(
            new.username,
            display_name=display_name,
            role=role,
            password_hash=password_hash,
            telegram_user_id=telegram_id,
            now=dashboard.now(),
        )
    except FieldError as exc:
        new.errors[exc.field_name] = str(exc)
        return _staff_page(request, new=new, status=400)
    except AccountError as exc:
        new.errors[exc.field or "username"] = str(exc)
        return _staff_page(request, new=new, status=400)
    dashboard.audit(request, "account added", f"{account.username} ({account.role})")
    flash(request, f"Account {account.username} ({account.role}) added.")
    raise see_other("/admin/staff")


def _target(request: web.Request) -> Account:
    account = dashboard_of(request).stores.accounts.get(int_param(request, "account_id"))
    if account is None:
        raise web.HTTPNotFound(text="No such account.")
    return account


def _refused(request: web.Request, target: Account, message: str) -> web.Response:
    return _staff_page(request, refusal=f"{target.username}: {message}", status=400)


def _is_me(request: web.Request, target: Account) -> bool:
    return account_of(request).id == target.id


async def change_role(request: web.Request) -> web.StreamResponse:
    """Make an account admin or staff (its sessions end: it signs in again with the new role)."""
    dashboard, target = dashboard_of(request), _target(request)
    try:
        role = role_of(text_field(await form_of(request), "role"))
    except FieldError as exc:
        return _refused(request, target, str(exc))
    if role == target.role:
        flash(request, f"{target.username} is already {role}.")
        raise see_other("/admin/staff")
    if _is_me(request, target):
        return _refused(request, target, "you cannot demote yourself; another admin can")
    try:
        dashboard.stores.accounts.update_keeping_an_admin(target.id, dashboard.now(), role=role)
    except AccountError as exc:
        return _refused(request, target, str(exc))
    dashboard.audit(request, "role changed", f"{target.username}: {target.role} -> {role}")
    flash(request, f"{target.username} is now {role}; their open sessions have ended.")
    raise see_other("/admin/staff")


async def disable_account(request: web.Request) -> web.StreamResponse:
    """Disable an account: it cannot sign in, and its open sessions end now."""
    dashboard, target = dashboard_of(request), _target(request)
    if _is_me(request, target):
        return _refused(request, target, "you cannot disable your own account")
    if target.active:
        try:
            dashboard.stores.accounts.update_keeping_an_admin(
                target.id, dashboard.now(), active=False
            )
        except AccountError as exc:
            return _refused(request, target, str(exc))
        dashboard.audit(request, "account disabled", target.username)
    flash(request, f"{target.username} is disabled; their open sessions have ended.")
    raise see_other("/admin/staff")


async def enable_account(request: web.Request) -> web.StreamResponse:
    """Let a disabled account sign in again."""
    dashboard, target = dashboard_of(request), _target(request)
    if not target.active:
        dashboard.stores.accounts.update(target.id, dashboard.now(), active=True)
        dashboard.audit(request, "account enabled", target.username)
    flash(request, f"{target.username} can sign in again.")
    raise see_other("/admin/staff")


async def reset_password(request: web.Request) -> web.StreamResponse:
    """Give someone a new password (their open sessions end)."""
    dashboard, target = dashboard_of(request), _target(request)
    if _is_me(request, target):
        return _refused(
            request, target, "change your own password on My account (it needs the current one)"
        )
    try:
        password_hash = await new_password_hash(await form_of(request))
    except FieldError as exc:
        return _refused(request, target, f"new password: {exc}")
    dashboard.stores.accounts.update(target.id, dashboard.now(), password_hash=password_hash)
    dashboard.audit(request, "password reset", target.username)
    flash(request, f"{target.username} has a new password; their open sessions have ended.")
    raise see_other("/admin/staff")


async def set_telegram_id(request: web.Request) -> web.StreamResponse:
    """Link an account to a Telegram user (for /login links), or unlink it (empty)."""
    dashboard, target = dashboard_of(request), _target(request)
    try:
        telegram_id = telegram_id_of(text_field(await form_of(request), "telegram_user_id"))
        if telegram_id != target.telegram_user_id:
            dashboard.stores.accounts.update(
                target.id, dashboard.now(), telegram_user_id=telegram_id
            )
    except (FieldError, AccountError) as exc:
        return _refused(request, target, f"Telegram user id: {exc}")
    shown = str(telegram_id) if telegram_id else "none"
    if telegram_id != target.telegram_user_id:
        dashboard.audit(request, "telegram id set", f"{target.username}: {shown}")
    flash(request, f"{target.username}'s Telegram user id: {shown}.")
    raise see_other("/admin/staff")


# ------------------------------------------------------------------ my account


def _account_page(
    request: web.Request, *, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    return render_page(
        request,
        "staff/account.html",
        status=status,
        errors=errors or {},
        changed=request.query.get("changed") == "1",
    )


async def my_account(request: web.Request) -> web.StreamResponse:
    """Who I am here, and a form to change my password."""
    return _account_page(request)


async def change_my_password(request: web.Request) -> web.StreamResponse:
    """Change my own password: the current one first (so a borrowed session cannot)."""
    dashboard, form, me = dashboard_of(request), await form_of(request), account_of(request)
    throttle, address = request.app[THROTTLE], request.remote or "?"
    wait = throttle.retry_after(address, me.username)
    if wait:
        errors = {"current": f"too many wrong passwords; try again in {-(-wait // 60)} minute(s)"}
        return _account_page(request, errors=errors, status=429)
    # An account made by /login has no password yet: its first one needs none.
    if me.password_hash is not None:
        current = str(form.get("current", ""))
        if not await asyncio.to_thread(verify_password, current, me.password_hash):
            throttle.failed(address, me.username)
            return _account_page(
                request, errors={"current": "that is not your current password"}, status=400
            )
    try:
        password_hash = await new_password_hash(form)
    except FieldError as exc:
        return _account_page(request, errors={exc.field_name: str(exc)}, status=400)
    dashboard.stores.accounts.update(me.id, dashboard.now(), password_hash=password_hash)
    dashboard.audit(request, "password changed", me.username)
    # Every session of the account ended with the new password; this browser gets a new one.
    return start_session(request, me, "/admin/account?changed=1", "after a password change")


def register(routes: Routes) -> None:
    routes.get("/staff", staff_list, access="admin")
    routes.post("/staff/add", add_account, access="admin")
    routes.post("/staff/{account_id}/role", change_role, access="admin")
    routes.post("/staff/{account_id}/disable", disable_account, access="admin")
    routes.post("/staff/{account_id}/enable", enable_account, access="admin")
    routes.post("/staff/{account_id}/password", reset_password, access="admin")
    routes.post("/staff/{account_id}/telegram", set_telegram_id, access="admin")
    routes.get("/account", my_account)
    routes.post("/account", change_my_password)
