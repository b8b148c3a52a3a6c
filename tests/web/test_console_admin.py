"""Tenant-admin console pages: users (invite, role, remove) and API keys (create, rotate, revoke)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.users.conftest import PASSWORD, PersonFn
from tests.web.console_signin import admin_console, sign_in, signed_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_a_tenant_admin_manages_users_in_the_console(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    t = onboard("acme-pay")
    boss = person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    csrf = admin_console(client, "boss@acme.example")
    page = client.get("/console/users")
    assert page.status_code == 200 and 'for="invite-email"' in page.text and "Bo Boss" in page.text
    assert (
        client.post(
            "/console/users", data={"email": "x@acme.example", "name": "X", "role": "analyst"}
        ).status_code
        == 403
    )

    invited = client.post(
        "/console/users", data={"csrf": csrf, "email": "cy@acme.example", "name": "Cy", "role": "analyst"}
    )
    assert invited.status_code == 201
    token = re.search(r'data-testid="invitation-token">([^<]+)<', invited.text)
    assert token is not None
    accepted = client.post(
        "/v1/auth/invitations/accept", json={"token": token.group(1), "password": PASSWORD}
    )
    assert accepted.status_code == 200
    cy = accepted.json()["id"]
    assert client.get("/console/users").text.count(token.group(1)) == 0  # shown once

    dup = client.post(
        "/console/users", data={"csrf": csrf, "email": "cy@acme.example", "name": "Cy", "role": "sre"}
    )
    assert dup.status_code == 409 and "email:" in dup.text
    role = client.post(
        f"/console/users/{cy}/role", data={"csrf": csrf, "role": "sre"}, follow_redirects=False
    )
    assert role.status_code == 303
    listed = client.get(f"/v1/tenants/{t['id']}/users", headers=auth(t["admin"])).json()
    assert {u["email"]: u["role"] for u in listed}["cy@acme.example"] == "sre"
    last = client.post(f"/console/users/{boss['id']}/remove", data={"csrf": csrf})
    assert last.status_code == 409 and "last tenant admin" in last.text
    gone = client.post(f"/console/users/{cy}/remove", data={"csrf": csrf}, follow_redirects=False)
    assert gone.status_code == 303
    ledger = client.get(
        f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"]), params={"action": "user.removed"}
    )
    assert [e["actor_name"] for e in ledger.json()] == ["Bo Boss <boss@acme.example>"]


def test_api_keys_in_the_console_show_the_secret_once(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    csrf = admin_console(client, "boss@acme.example")
    made = client.post("/console/keys", data={"csrf": csrf, "name": "checkout", "scope": "app"})
    assert made.status_code == 201
    secret = re.search(r'data-testid="key-secret">([^<]+)<', made.text)
    assert secret is not None and secret.group(1).startswith("frk_")
    assert client.get("/v1/scoring-config", headers=auth(secret.group(1))).status_code in (200, 403)
    key_id = "key_" + secret.group(1)[4:20]
    assert secret.group(1) not in client.get("/console/keys").text
    rotated = client.post(f"/console/keys/{key_id}/rotate", data={"csrf": csrf})
    assert rotated.status_code == 201
    new_secret = re.search(r'data-testid="key-secret">([^<]+)<', rotated.text)
    assert new_secret is not None and new_secret.group(1) != secret.group(1)
    assert client.get("/v1/auth/me", headers=auth(secret.group(1))).status_code == 401
    assert client.get("/v1/auth/me", headers=auth(new_secret.group(1))).json()["name"] == "checkout"
    new_id = "key_" + new_secret.group(1)[4:20]
    revoked = client.post(f"/console/keys/{new_id}/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert revoked.status_code == 303
    assert client.get("/v1/auth/me", headers=auth(new_secret.group(1))).status_code == 401
    bad = client.post("/console/keys", data={"csrf": csrf, "name": "x", "scope": "platform-admin"})
    assert bad.status_code == 422 and "scope" in bad.text


def test_analysts_and_other_tenants_are_refused(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    a, b = onboard("alpha-co"), onboard("beta-co")
    ana = person(a, "ana@alpha.example", role="tenant-admin", name="Ana")
    key_of_a = client.get(f"/v1/tenants/{a['id']}/keys", headers=auth(a["admin"])).json()[0]["id"]
    person(b, "bob@beta.example", role="tenant-admin", name="Bob")
    person(b, "al@beta.example", role="analyst", name="Al")
    csrf = admin_console(client, "bob@beta.example")
    for path in (f"/console/users/{ana['id']}/remove", f"/console/users/{ana['id']}/role"):
        resp = client.post(path, data={"csrf": csrf, "role": "sre"})
        assert resp.status_code == 404, (path, resp.text)
    for path in (f"/console/keys/{key_of_a}/revoke", f"/console/keys/{key_of_a}/rotate"):
        assert client.post(path, data={"csrf": csrf}).status_code == 404
    assert "ana@alpha.example" not in client.get("/console/users").text
    assert client.get("/v1/auth/me", headers=auth(a["admin"])).status_code == 200  # A's key still works
    client.cookies.clear()
    sign_in(client, "al@beta.example")
    assert client.get("/console/users").status_code == 403
    assert client.get("/console/keys").status_code == 403


@pytest.mark.browser
def test_an_admin_invites_in_the_browser(
    browser: Browser, live_server: str, onboard: OnboardFn, person: PersonFn, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    context, page = signed_in_page(browser, live_server, "boss@acme.example")
    expect(page.get_by_test_id("who")).to_contain_text("Bo Boss")
    page.get_by_role("link", name="Users").click()
    page.get_by_label("E-mail").fill("cy@acme.example")
    page.get_by_label("Name", exact=True).fill("Cy Analyst")
    page.get_by_label("Role", exact=True).select_option("analyst")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_test_id("invitation-token")).to_contain_text("fri_")
    expect(page.get_by_test_id("user-cy@acme.example")).to_contain_text("invited")
    page.screenshot(path=str(screenshots / "console-users.png"), full_page=True)
    context.close()
