"""Staff management: accounts, roles, passwords, Telegram ids, the guards, and My account."""

from __future__ import annotations

import pytest

from storage.dashboard import Account, AccountError
from tests.e2e.test_tickets import ADMIN, MARIA
from tests.web.conftest import PASSWORD, Site, Visitor

NEW_PASSWORD = "another long passphrase"
SAM = {
    "username": "sam",
    "display_name": "Sam Support",
    "role": "staff",
    "telegram_user_id": "5005",
    "password": NEW_PASSWORD,
    "password_again": NEW_PASSWORD,
}


def account(site: Site, username: str) -> Account:
    found = site.dashboard.stores.accounts.by_username(username)
    assert found is not None
    return found


def audit_actions(site: Site) -> list[tuple[str, str]]:
    return [(e.action, e.detail) for e in site.dashboard.stores.audit.recent()]


async def signed_out(visitor: Visitor) -> bool:
    return "/admin/login" in (await visitor.get("/admin")).url


async def test_an_admin_adds_an_account_that_can_sign_in(site: Site, admin: Visitor) -> None:
    page = await admin.post("/admin/staff/add", SAM)
    assert page.url.endswith("/admin/staff")
    assert "Account sam (staff) added." in page.text
    sam = account(site, "sam")
    assert (sam.display_name, sam.role, sam.telegram_user_id) == ("Sam Support", "staff", 5005)
    assert sam.password_hash is not None
    assert NEW_PASSWORD not in sam.password_hash
    assert ("account added", "sam (staff)") in audit_actions(site)
    visitor = site.visitor()
    assert (await visitor.login("sam", NEW_PASSWORD)).url.endswith("/admin")
    assert (await visitor.get("/admin/staff")).status == 403  # staff, not admin


async def test_a_bad_new_account_is_refused_naming_the_field_and_keeping_the_input(
    site: Site, admin: Visitor
) -> None:
    site.account("maria", telegram_user_id=MARIA.id)
    cases = [
        (
            {"password": "short", "password_again": "short"},
            "password: a password needs at least 10",
        ),
        ({"password_again": "something else"}, "password: the two passwords differ"),
        ({"username": "sam smith"}, "username: a username may hold letters, digits"),
        ({"username": "Maria"}, "username: there is already an account called"),
        ({"telegram_user_id": "abc"}, "telegram_user_id: a Telegram user id is a positive number"),
        ({"telegram_user_id": str(MARIA.id)}, f"Telegram user {MARIA.id} already has an account"),
        ({"role": "owner"}, "role: the role must be one of admin, staff"),
    ]
    for change, message in cases:
        page = await admin.post("/admin/staff/add", {**SAM, **change})
        assert page.status == 400, change
        assert message in page.text, change
        assert 'value="Sam Support"' in page.text  # what was typed stays (not the password)
        assert NEW_PASSWORD not in page.text
    assert site.dashboard.stores.accounts.by_username("sam") is None


async def test_role_changes_end_sessions_and_admins_cannot_demote_or_disable_themselves(
    site: Site, admin: Visitor
) -> None:
    maria = await site.signed_in("maria")
    maria_id = account(site, "maria").id
    page = await admin.post(f"/admin/staff/{maria_id}/role", {"role": "admin"})
    assert "maria is now admin; their open sessions have ended." in page.text
    assert await signed_out(maria)
    await maria.login("maria")
    assert (await maria.get("/admin/staff")).status == 200

    alex_id = account(site, "alex").id
    for path, data in (
        (f"/admin/staff/{alex_id}/role", {"role": "staff"}),
        (f"/admin/staff/{alex_id}/disable", {}),
    ):
        refused = await admin.post(path, data)
        assert refused.status == 400
        assert "Not changed: alex: you cannot" in refused.text
    me = account(site, "alex")
    assert (me.role, me.active) == ("admin", True)

    # another admin can demote alex: maria stays the admin
    page = await maria.post(f"/admin/staff/{alex_id}/role", {"role": "staff"})
    assert "alex is now staff" in page.text
    assert await signed_out(admin)
    assert ("role changed", "alex: admin -> staff") in audit_actions(site)


def test_the_last_active_admin_can_never_be_disabled_or_demoted(site: Site) -> None:
    accounts, now = site.dashboard.stores.accounts, site.clock.now()
    alex = site.account("alex", "admin")
    bea = site.account("bea", "admin")
    site.account("old", "admin")
    accounts.update(account(site, "old").id, now, active=False)  # a disabled admin does not count
    accounts.update_keeping_an_admin(bea.id, now, role="staff")
    for change in ({"role": "staff"}, {"active": False}):
        with pytest.raises(AccountError, match="alex is the last active admin"):
            accounts.update_keeping_an_admin(alex.id, now, **change)
    assert account(site, "alex").is_admin
    assert account(site, "alex").active


async def test_a_disabled_accounts_open_session_stops_working_at_once(
    site: Site, admin: Visitor
) -> None:
    maria = await site.signed_in("maria")
    assert (await maria.get("/admin/customers")).status == 200
    maria_id = account(site, "maria").id
    page = await admin.post(f"/admin/staff/{maria_id}/disable")
    assert "maria is disabled" in page.text
    assert '<span class="badge disabled">disabled</span>' in page.text
    after = await maria.get("/admin/customers")
    assert "/admin/login" in after.url
    refused = await maria.post("/admin/canned", {"name": "x", "body": "y", "action": "save"})
    assert refused.status in (401, 403)
    assert (await site.visitor().login("maria")).status == 401
    await admin.post(f"/admin/staff/{maria_id}/enable")
    assert (await site.visitor().login("maria")).url.endswith("/admin")
    actions = audit_actions(site)
    assert actions.index(("account enabled", "maria")) < actions.index(
        ("account disabled", "maria")
    )


async def test_an_admin_resets_a_password_and_sets_a_telegram_id(
    site: Site, admin: Visitor
) -> None:
    maria = await site.signed_in("maria")
    maria_id = account(site, "maria").id
    mismatch = await admin.post(
        f"/admin/staff/{maria_id}/password", {"password": NEW_PASSWORD, "password_again": "x"}
    )
    assert mismatch.status == 400
    assert "maria: new password: the two passwords differ" in mismatch.text
    page = await admin.post(
        f"/admin/staff/{maria_id}/password",
        {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    )
    assert "maria has a new password" in page.text
    assert await signed_out(maria)
    assert (await site.visitor().login("maria", PASSWORD)).status == 401
    assert (await site.visitor().login("maria", NEW_PASSWORD)).url.endswith("/admin")
    own = await admin.post(
        f"/admin/staff/{account(site, 'alex').id}/password",
        {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    )
    assert "change your own password on My account" in own.text

    page = await admin.post(f"/admin/staff/{maria_id}/telegram", {"telegram_user_id": "701"})
    assert account(site, "maria").telegram_user_id == MARIA.id
    site.account("sam")
    taken = await admin.post(
        f"/admin/staff/{account(site, 'sam').id}/telegram", {"telegram_user_id": "701"}
    )
    assert taken.status == 400
    assert "Telegram user 701 already has an account (maria)" in taken.text
    await admin.post(f"/admin/staff/{maria_id}/telegram", {"telegram_user_id": ""})
    assert account(site, "maria").telegram_user_id is None
    assert ("telegram id set", "maria: 701") in audit_actions(site)


async def test_the_staff_page_shows_accounts_the_telegram_setup_and_the_audit_log(
    site: Site, admin: Visitor
) -> None:
    site.account("maria", display_name="<i>Maria</i>", telegram_user_id=MARIA.id)
    page = await admin.get("/admin/staff")
    assert page.status == 200
    assert "&lt;i&gt;Maria&lt;/i&gt;" in page.text
    assert "<i>Maria" not in page.text
    assert "member in config.toml" in page.text
    assert str(ADMIN.id) in page.text  # [staff] admins
    assert str(MARIA.id) in page.text  # [staff] members
    assert "Only these ids and the admins may answer" in page.text
    assert "Recent changes (audit log)" in page.text
    assert "<td>login</td>" in page.text


async def test_changing_my_password_needs_the_current_one(site: Site) -> None:
    maria = await site.signed_in("maria")
    elsewhere = site.visitor()
    await elsewhere.login("maria")
    page = await maria.get("/admin/account")
    assert page.status == 200
    assert "Current password" in page.text

    wrong = await maria.post(
        "/admin/account",
        {"current": "not my password", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    )
    assert wrong.status == 400
    assert "current password: that is not your current password" in wrong.text
    short = await maria.post(
        "/admin/account", {"current": PASSWORD, "password": "short", "password_again": "short"}
    )
    assert short.status == 400
    assert "new password: a password needs at least 10 characters" in short.text
    assert (await site.visitor().login("maria", PASSWORD)).url.endswith("/admin")

    changed = await maria.post(
        "/admin/account",
        {"current": PASSWORD, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    )
    assert changed.url.endswith("/admin/account?changed=1")
    assert "Your password was changed" in changed.text
    assert (await maria.get("/admin/customers")).status == 200  # this browser stays signed in
    assert await signed_out(elsewhere)  # every other session ended
    assert (await site.visitor().login("maria", PASSWORD)).status == 401
    assert (await site.visitor().login("maria", NEW_PASSWORD)).url.endswith("/admin")
    assert ("password changed", "maria") in audit_actions(site)


async def test_staff_get_403_on_staff_management(site: Site, staff: Visitor) -> None:
    maria_id = account(site, "maria").id
    assert (await staff.get("/admin/staff")).status == 403
    for path in ("role", "disable", "password", "telegram"):
        page = await staff.post(f"/admin/staff/{maria_id}/{path}", {"role": "admin"})
        assert page.status == 403, path
    assert account(site, "maria").role == "staff"
    assert 'href="/admin/account"' in (await staff.get("/admin")).text  # name in the top bar
    assert (await staff.get("/admin/account")).status == 200
