"""The dashboard's skeleton: what pages can reach, routes with the role each needs, rendering.

Every route under /admin is registered through ``Routes`` with a role ("staff" pages are for
any signed-in account, "admin" pages for admins only, "public" for the login pages and static
files). The middleware in ``carebot.dashboard.auth`` refuses any /admin route registered
without a role, so a new page cannot be left open by mistake.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from multidict import MultiDictProxy
from sqlite_utils import Database
from telegram.ext import Application

import templates
from bot.config import Config
from handlers.context import Deps
from handlers.desk import Desk
from storage.dashboard import Account, DashboardStores, Session
from storage.database import off_loop
from storage.repositories import Repositories

logger = logging.getLogger("carebot.dashboard")

Access = Literal["public", "staff", "admin"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

PREFIX = "/admin"
WEB_TEMPLATES = Path(templates.__file__).parent / "web"
STATIC_DIR = WEB_TEMPLATES / "static"


@dataclass
class Dashboard:
    """What every dashboard page can reach: the same services the Telegram side uses."""

    deps: Deps
    repos: Repositories
    application: Application  # type: ignore[type-arg]
    db_path: Path
    # One-shot notices shown on the next page a session opens ("Campaign saved").
    flashes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def config(self) -> Config:
        return self.deps.config

    @property
    def stores(self) -> DashboardStores:
        return self.deps.dashboard

    def now(self) -> datetime:
        return self.deps.clock.now()

    def desk(self) -> Desk:
        """The same Desk a staff-chat handler uses, to act on tickets and reach customers."""
        app = self.application
        return Desk(app.bot, self.deps, app.job_queue)

    async def off_loop(self, work: Callable[[Database], T]) -> T:
        """Heavy reads (reports, previews) in a worker thread on a connection of their own."""
        return await off_loop(self.db_path, work)

    def audit(self, request: web.Request, action: str, detail: str = "") -> None:
        self.stores.audit.add(account_of(request).id, action, detail, self.now())


DASHBOARD = web.AppKey("dashboard", Dashboard)
SESSION = web.RequestKey("dashboard_session", Session)
ACCESS = web.AppKey("dashboard_access", dict)  # route -> Access


class Routes:
    """Registers dashboard routes with the access each needs (see the module docstring)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.access: dict[web.AbstractRoute, Access] = app.setdefault(ACCESS, {})

    def add(self, method: str, path: str, handler: Handler, access: Access) -> None:
        route = self.app.router.add_route(method, PREFIX + path, handler)
        self.access[route] = access

    def get(self, path: str, handler: Handler, *, access: Access = "staff") -> None:
        self.add("GET", path, handler, access)

    def post(self, path: str, handler: Handler, *, access: Access = "staff") -> None:
        self.add("POST", path, handler, access)

    def static(self) -> None:
        resource = self.app.router.add_static(PREFIX + "/static", STATIC_DIR)
        for route in resource:
            self.access[route] = "public"


def dashboard_of(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def account_of(request: web.Request) -> Account:
    return session_of(request).account


# ------------------------------------------------------------------ navigation


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    access: Access


NAV = (
    NavItem("Overview", "/admin", "staff"),
    NavItem("Tickets", "/admin/tickets", "staff"),
    NavItem("Customers", "/admin/customers", "staff"),
    NavItem("Surveys", "/admin/surveys", "staff"),
    NavItem("Campaigns", "/admin/campaigns", "admin"),
    NavItem("FAQ", "/admin/faq", "admin"),
    NavItem("Canned replies", "/admin/canned", "staff"),
    NavItem("Staff", "/admin/staff", "admin"),
)


def nav_for(account: Account | None) -> list[NavItem]:
    if account is None:
        return []
    return [item for item in NAV if item.access == "staff" or account.is_admin]


# ------------------------------------------------------------------ rendering


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(WEB_TEMPLATES),
        autoescape=select_autoescape(("html", "svg")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_moment
    env.filters["counted"] = counted
    return env


def counted(count: int, noun: str) -> str:
    """ "1 click", "2 clicks", "1,204 clicks" (English plural by -s)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def format_moment(value: datetime | None, zone: Any = None) -> str:
    """A moment as people read it on the dashboard: "2026-11-23 10:04" (shop time)."""
    if value is None:
        return "—"
    return (value.astimezone(zone) if zone else value).strftime("%Y-%m-%d %H:%M")


def render_page(
    request: web.Request, template: str, *, status: int = 200, **values: Any
) -> web.Response:
    """A full page: the template with the signed-in account, CSRF token, nav and notices."""
    dashboard = dashboard_of(request)
    session = request.get(SESSION)
    account = session.account if session else None
    flashes = dashboard.flashes.pop(session.csrf_token, []) if session else []
    login_csrf = values.pop("csrf", "")  # the login forms' own token, before any session
    html = (
        environment()
        .get_template(template)
        .render(
            me=account,
            csrf=session.csrf_token if session else login_csrf,
            nav=nav_for(account),
            current=request.path,
            shop=dashboard.config.shop,
            flashes=flashes,
            **values,
        )
    )
    return web.Response(text=html, content_type="text/html", status=status)


def flash(request: web.Request, message: str) -> None:
    """A notice for the next page this session opens."""
    dashboard_of(request).flashes.setdefault(session_of(request).csrf_token, []).append(message)


def see_other(location: str) -> web.HTTPSeeOther:
    """Redirect after a POST (raise it): the browser then GETs ``location``."""
    return web.HTTPSeeOther(location)


# ------------------------------------------------------------------ forms


Form = MultiDictProxy[str | bytes | bytearray | web.FileField]


async def form_of(request: web.Request) -> Form:
    """The posted form (aiohttp reads the body once and keeps it for later calls)."""
    return await request.post()


def text_field(form: Form, name: str, default: str = "") -> str:
    value = form.get(name, default)
    # Browsers send a textarea's line breaks as CRLF; Telegram and our limits count LF.
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else default


def int_param(request: web.Request, name: str) -> int:
    """A numeric path part (``/tickets/{ticket_id}``); 404 when it is not a number."""
    raw = request.match_info.get(name, "")
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    return int(raw)


def page_number(request: web.Request, name: str = "page") -> int:
    """A 1-based page number from the query string (anything odd is page 1)."""
    raw = request.query.get(name, "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1
