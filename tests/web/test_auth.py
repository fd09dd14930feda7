"""Signing in to the dashboard, and the checks every route goes through (route by route)."""

from __future__ import annotations

import re
from datetime import timedelta

from aiohttp import web

from carebot.dashboard.app import ACCESS, PREFIX
from carebot.dashboard.auth import LoginThrottle
from tests.web.conftest import PASSWORD, Site, Visitor


def dashboard_routes(site: Site) -> list[tuple[str, str, str]]:
    """(method, path with sample ids, access) of every route under /admin."""
    routes = []
    table: dict[web.AbstractRoute, str] = site.web_app[ACCESS]
    for route, access in table.items():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        if not path.startswith(PREFIX):
            continue
        sample = re.sub(r"\{[^}]*\}", "1", path)
        if "prefix" in info:
            sample += "/dashboard.css"
        routes.append((route.method, sample, access))
    return routes


async def test_login_with_a_password_opens_the_overview_with_a_strict_session_cookie(
    site: Site,
) -> None:
    site.account("alex", "admin", display_name="Alex Admin")
    visitor = site.visitor()
    login = await visitor.get("/admin/login")
    assert login.status == 200
    assert 'name="password"' in login.text
    async with visitor.http.post(
        "/admin/login",
        data={"csrf": login.csrf, "username": "alex", "password": PASSWORD},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/admin"
        cookie = response.headers.getall("Set-Cookie")
    [session] = [c for c in cookie if c.startswith("carebot_session=")]
    assert "HttpOnly" in session
    assert "SameSite=Strict" in session
    assert "Path=/admin" in session
    assert "Max-Age=43200" in session
    page = await visitor.get("/admin")
    assert page.status == 200
    assert "Alex Admin" in page.text
    assert "Log out" in page.text
    [row] = site.desk.care.db.query("SELECT token_hash FROM dashboard_sessions")
    token = session.split(";")[0].split("=", 1)[1]
    assert token not in row["token_hash"]  # only a hash is stored


async def test_a_wrong_password_or_unknown_user_gets_the_same_answer(site: Site) -> None:
    site.account("alex", "admin")
    visitor = site.visitor()
    wrong = await visitor.login("alex", "not the password")
    unknown = await visitor.login("nobody", PASSWORD)
    for page in (wrong, unknown):
        assert page.status == 401
        assert "Wrong username or password." in page.text
    assert (await visitor.get("/admin")).url.endswith("/admin/login?next=/admin")


async def test_logins_are_rate_limited_per_username(site: Site) -> None:
    site.account("alex", "admin")
    visitor = site.visitor()
    for _ in range(LoginThrottle.PER_USERNAME):
        assert (await visitor.login("alex", "guess guess guess")).status == 401
    blocked = await visitor.login("alex", PASSWORD)  # even the right password, for a while
    assert blocked.status == 429
    assert "Too many failed attempts" in blocked.text
    other = await site.signed_in("maria")  # another account is not locked out
    assert (await other.get("/admin")).status == 200


async def test_a_disabled_account_cannot_log_in_and_its_sessions_end(
    site: Site, admin: Visitor
) -> None:
    account = site.dashboard.stores.accounts.by_username("alex")
    assert account is not None
    site.dashboard.stores.accounts.update(account.id, site.clock.now(), active=False)
    assert (await admin.get("/admin")).url.endswith("/admin/login?next=/admin")
    assert (await site.visitor().login("alex")).status == 401


async def test_sessions_expire_when_idle_and_after_their_lifetime(
    site: Site, admin: Visitor
) -> None:
    site.clock.advance(timedelta(minutes=119))
    assert (await admin.get("/admin")).status == 200
    site.clock.advance(timedelta(minutes=121))
    assert "/admin/login" in (await admin.get("/admin")).url
    visitor = await site.signed_in("maria")
    for _ in range(13):  # active all day: still ends after [web] session_hours (12)
        site.clock.advance(timedelta(hours=1))
        page = await visitor.get("/admin")
    assert "/admin/login" in page.url


async def test_logout_ends_the_session_and_needs_the_csrf_token(site: Site, admin: Visitor) -> None:
    refused = await admin.post("/admin/logout", {"csrf": "forged"})
    assert refused.status == 403
    assert "The form has expired" in refused.text
    assert (await admin.get("/admin")).status == 200
    out = await admin.post("/admin/logout")
    assert out.url.endswith("/admin/login")
    assert "/admin/login" in (await admin.get("/admin")).url


async def test_a_cross_site_post_is_refused_even_with_the_token(site: Site, admin: Visitor) -> None:
    page = await admin.post("/admin/logout", headers={"Origin": "https://evil.example"})
    assert page.status == 403
    assert "Cross-site" in page.text


async def test_login_form_needs_its_own_csrf_cookie(site: Site) -> None:
    site.account("alex", "admin")
    visitor = site.visitor()
    page = await visitor.post("/admin/login", {"username": "alex", "password": PASSWORD})
    assert page.status == 403


async def test_login_never_redirects_to_another_site(site: Site) -> None:
    site.account("alex", "admin")
    visitor = site.visitor()
    for target in ("https://evil.example/", "//evil.example/admin", "/admin\\@evil.example"):
        await visitor.get("/admin/login", params={"next": target})
        async with visitor.http.post(
            "/admin/login",
            data={"csrf": visitor.csrf, "username": "alex", "password": PASSWORD, "next": target},
            allow_redirects=False,
        ) as response:
            assert response.headers["Location"] == "/admin"
        await visitor.post("/admin/logout")


async def test_one_time_login_link_works_once(site: Site) -> None:
    from storage.dashboard import issue_login_link

    account = site.account("alex", "admin")
    url = issue_login_link(site.dashboard.stores.links, account.id, site.url, site.clock.now())
    visitor = site.visitor()
    landing = await visitor.get(url)  # what a link preview would fetch: nothing used up
    assert landing.status == 200
    assert "one-time link" in landing.text
    token = url.split("token=")[1]
    page = await visitor.post("/admin/login/link", {"token": token})
    assert page.url.endswith("/admin")
    assert "Alex" in page.text
    again = site.visitor()
    used = await again.get(url)
    assert used.status == 410
    assert "expired or was already used" in used.text
    await again.get("/admin/login")  # a login-form token, then the used link replayed
    replayed = await again.post("/admin/login/link", {"token": token})
    assert replayed.status == 410
    assert "/admin/login" in replayed.url


async def test_every_route_needs_a_session(site: Site) -> None:
    """Route by route: without a session, pages send to login, actions are refused."""
    visitor = site.visitor()
    routes = dashboard_routes(site)
    assert len(routes) >= 5
    for method, path, access in routes:
        if access == "public":
            continue
        async with visitor.http.request(method, path, allow_redirects=False) as response:
            if method == "GET":
                assert response.status == 303, path
                assert response.headers["Location"].startswith("/admin/login?next="), path
            else:
                assert response.status == 401, f"{method} {path}"


async def test_every_post_route_needs_the_csrf_token(site: Site, admin: Visitor) -> None:
    for method, path, access in dashboard_routes(site):
        if method != "POST" or access == "public":
            continue
        page = await admin.post(path, {"csrf": None})
        assert page.status == 403, path
        page = await admin.post(path, {"csrf": "x" * 43})
        assert page.status == 403, path


async def test_staff_cannot_open_admin_pages(site: Site, staff: Visitor) -> None:
    admin_only = [(m, p) for m, p, access in dashboard_routes(site) if access == "admin"]
    for method, path in admin_only:
        page = await (staff.get(path) if method == "GET" else staff.post(path))
        assert page.status == 403, f"{method} {path}"
        assert "This page is for admins." in page.text
    overview = await staff.get("/admin")
    assert 'href="/admin/staff"' not in overview.text  # no link to what they cannot open


async def test_pages_send_security_headers(site: Site, admin: Visitor) -> None:
    async with admin.http.get("/admin") as response:
        headers = response.headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


async def test_an_unknown_page_is_a_readable_404(site: Site, admin: Visitor) -> None:
    page = await admin.get("/admin/no-such-page")
    assert page.status == 404
    assert "Back to the overview" in page.text


def test_the_login_throttle_keeps_only_recent_failures() -> None:
    throttle = LoginThrottle()
    for n in range(1000):  # checking names that never failed stores nothing
        assert throttle.retry_after("10.0.0.1", f"user{n}") == 0
    assert throttle._failures == {}
    for _ in range(LoginThrottle.PER_USERNAME):
        throttle.failed("10.0.0.1", "alex")
    assert throttle.retry_after("10.0.0.2", "ALEX") > 0  # per username, any address
    assert throttle.retry_after("10.0.0.1", "maria") == 0  # the address is under its limit
    throttle.succeeded("alex")
    assert throttle.retry_after("10.0.0.1", "alex") == 0
