"""Signing in and out, sessions, CSRF and the checks every dashboard request goes through.

- Passwords are scrypt hashes (``bot.passwords``), checked in a worker thread.
- Or a one-time link the bot sends to an admin's Telegram chat on /login: opening it shows a
  button (a link preview fetched by Telegram must not use up the link), pressing it signs in.
- The session cookie is random, HttpOnly, SameSite=Strict, Secure when the dashboard is
  served over https; only its hash is stored. Sessions end after ``[web] session_hours``, or
  ``idle_minutes`` unused, or when the account is disabled, demoted or gets a new password.
- Every POST carries the session's CSRF token (a form field or the X-CSRF-Token header); the
  login forms, before there is a session, use a double-submit cookie instead.
- Failed logins are limited per address and per username.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import deque
from datetime import timedelta
from typing import NoReturn
from urllib.parse import quote, urlparse

from aiohttp import web

from bot.passwords import hash_password, needs_rehash, verify_password
from carebot.dashboard.app import (
    ACCESS,
    PREFIX,
    SESSION,
    Access,
    Handler,
    Routes,
    dashboard_of,
    form_of,
    render_page,
    see_other,
    session_of,
    text_field,
)
from storage.dashboard import Account, new_token

logger = logging.getLogger("carebot.dashboard")

SESSION_COOKIE = "carebot_session"
LOGIN_CSRF_COOKIE = "carebot_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS = {
    # Pages load only their own CSS, JS and images: no inline script or style can run.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Login-link tokens sit in URLs: never send them on as a Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class LoginThrottle:
    """Failed logins in a sliding window, per remote address and per username.

    Only failures are kept, and a key's list is dropped once its window has passed, so
    guessing at many usernames cannot grow it without bound."""

    WINDOW_SECONDS = 15 * 60
    PER_ADDRESS = 20
    PER_USERNAME = 5

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def _limits(self, address: str, username: str) -> tuple[tuple[str, int], ...]:
        return ((f"ip:{address}", self.PER_ADDRESS), (f"u:{username.lower()}", self.PER_USERNAME))

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.WINDOW_SECONDS:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def retry_after(self, address: str, username: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        waits = [0]
        for key, limit in self._limits(address, username):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(int(self.WINDOW_SECONDS - (now - times[0])) + 1)
        return max(waits)

    def failed(self, address: str, username: str) -> None:
        now = time.monotonic()
        for key, _limit in self._limits(address, username):
            self._failures[key] = self._recent(key, now)
            self._failures[key].append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"u:{username.lower()}", None)


THROTTLE = web.AppKey("dashboard_throttle", LoginThrottle)


# ------------------------------------------------------------------ middleware


def _access(request: web.Request) -> Access | None:
    return request.app[ACCESS].get(request.match_info.route)


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "json" not in request.headers.get("Accept", "")


@web.middleware
async def dashboard_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, role and CSRF checks for every /admin request; security headers on replies."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type == "text/plain":
            # A readable page instead of aiohttp's plain-text error.
            response = _error_page(request, exc.status, exc.text or exc.reason)
        else:
            exc.headers.update(SECURITY_HEADERS)
            raise

    except Exception:
        logger.exception("dashboard page %s %s failed", request.method, request.path)
        response = _error_page(request, 500, "Something went wrong; it has been logged.")
    response.headers.update(SECURITY_HEADERS)
    return response


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    return render_page(request, "error.html", status=status, message=message, csrf="")


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = _access(request)
    if access is None and request.match_info.http_exception is None:
        # A route someone forgot to register through Routes: closed, not open.
        logger.error("dashboard route %s has no access rule; refused", request.path)
        raise web.HTTPNotFound()
    if access == "public" or request.match_info.http_exception is not None:
        return await handler(request)
    dashboard = dashboard_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    web_config = dashboard.config.web
    session = (
        dashboard.stores.sessions.resume(
            token, dashboard.now(), timedelta(minutes=web_config.idle_minutes)
        )
        if token
        else None
    )
    if session is None:
        if _wants_html(request):
            target = request.path_qs
            raise see_other(f"{PREFIX}/login?next={quote(target, safe='')}")
        raise web.HTTPUnauthorized(text="sign in first")
    request[SESSION] = session
    if access == "admin" and not session.account.is_admin:
        raise web.HTTPForbidden(text="This page is for admins.")
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, session.csrf_token)
    return await handler(request)


async def _check_csrf(request: web.Request, expected: str) -> None:
    """The request's CSRF token must match; a cross-site Origin is refused outright."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.host:
        raise web.HTTPForbidden(text="Cross-site request refused.")
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        given = text_field(await form_of(request), "csrf")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise web.HTTPForbidden(text="The form has expired; reload the page and try again.")


# ------------------------------------------------------------------ login and logout


def _safe_next(target: str) -> str:
    """Only our own pages after login (no open redirect to another site)."""
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith(PREFIX) or "\\" in target:
        return PREFIX
    return target


def _login_csrf(request: web.Request) -> str:
    return request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, max_age: int
) -> None:
    """Every dashboard cookie: scoped to the dashboard, hidden from scripts, same-site only."""
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=dashboard_of(request).config.web.secure_cookies or request.secure,
        max_age=max_age,
    )


def _with_login_cookie(request: web.Request, response: web.Response, token: str) -> web.Response:
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def _check_login_csrf(request: web.Request) -> None:
    form = await form_of(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = text_field(form, "csrf")
    if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise web.HTTPForbidden(text="The login form has expired; reload the page and try again.")


def _login_form(
    request: web.Request, *, error: str = "", username: str = "", status: int = 200
) -> web.Response:
    token = _login_csrf(request)
    page = render_page(
        request,
        "login.html",
        status=status,
        csrf=token,
        error=error,
        username=username,
        next=_safe_next(request.query.get("next", "")),
    )
    return _with_login_cookie(request, page, token)


async def login_page(request: web.Request) -> web.StreamResponse:
    """The login form."""
    return _login_form(request)


async def login(request: web.Request) -> web.StreamResponse:
    """Check a username and password; start a session."""
    await _check_login_csrf(request)
    dashboard, form = dashboard_of(request), await form_of(request)
    username, password = text_field(form, "username")[:100], str(form.get("password", ""))
    address = request.remote or "?"
    throttle = request.app[THROTTLE]
    wait = throttle.retry_after(address, username)
    if wait:
        minutes = -(-wait // 60)
        return _login_form(
            request,
            error=f"Too many failed attempts. Try again in {minutes} minute(s).",
            username=username,
            status=429,
        )
    account = dashboard.stores.accounts.by_username(username) if username else None
    stored = account.password_hash if account else None
    matches = await asyncio.to_thread(verify_password, password, stored)
    if account is None or not matches or not account.active:
        throttle.failed(address, username)
        logger.info("failed dashboard login for %r from %s", username, address)
        return _login_form(
            request, error="Wrong username or password.", username=username, status=401
        )
    throttle.succeeded(username)
    if stored and needs_rehash(stored):
        new_hash = await asyncio.to_thread(hash_password, password)
        dashboard.stores.accounts.update(account.id, dashboard.now(), password_hash=new_hash)
    start_session(request, account, _safe_next(text_field(form, "next")), "password")


def start_session(request: web.Request, account: Account, target: str, how: str) -> NoReturn:
    """Sign ``account`` in on this browser and redirect to ``target`` (raises the redirect)."""
    dashboard = dashboard_of(request)
    now, config = dashboard.now(), dashboard.config.web
    token = dashboard.stores.sessions.start(
        account.id, now, timedelta(hours=config.session_hours), request.remote
    )
    dashboard.stores.accounts.logged_in(account.id, now)
    dashboard.stores.audit.add(account.id, "login", how, now)
    response = web.HTTPSeeOther(target)
    _set_cookie(request, response, SESSION_COOKIE, token, max_age=config.session_hours * 3600)
    response.del_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    raise response


async def link_page(request: web.Request) -> web.StreamResponse:
    """A one-time login link from the bot: a button to press (previews must not use it up)."""
    dashboard = dashboard_of(request)
    token = request.query.get("token", "")[:100]
    valid = bool(token) and dashboard.stores.links.valid(token, dashboard.now())
    csrf = _login_csrf(request)
    page = render_page(
        request,
        "login_link.html",
        status=200 if valid else 410,
        csrf=csrf,
        token=token,
        valid=valid,
    )
    return _with_login_cookie(request, page, csrf)


async def link_login(request: web.Request) -> web.StreamResponse:
    """Use a one-time login link: sign in as the account it was made for."""
    await _check_login_csrf(request)
    dashboard = dashboard_of(request)
    token = text_field(await form_of(request), "token")[:100]
    account_id = dashboard.stores.links.redeem(token, dashboard.now()) if token else None
    account = dashboard.stores.accounts.get(account_id) if account_id else None
    if account is None or not account.active:
        page = render_page(request, "login_link.html", status=410, csrf="", token="", valid=False)
        return page
    start_session(request, account, PREFIX, "telegram link")


async def logout(request: web.Request) -> web.StreamResponse:
    """End this session."""
    dashboard = dashboard_of(request)
    dashboard.stores.sessions.end(request.cookies.get(SESSION_COOKIE, ""))
    dashboard.stores.audit.add(session_of(request).account.id, "logout", "", dashboard.now())
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise response


def register(routes: Routes) -> None:
    routes.app[THROTTLE] = LoginThrottle()
    routes.get("/login", login_page, access="public")
    routes.post("/login", login, access="public")
    routes.get("/login/link", link_page, access="public")
    routes.post("/login/link", link_login, access="public")
    routes.post("/logout", logout)
