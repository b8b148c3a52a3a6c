"""Tenant-admin console page for the scoring configuration: thresholds, allow / block lists, fallback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from control_plane.settings import REPO_ROOT
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.users.conftest import PersonFn
from tests.web.a11y import assert_accessible
from tests.web.console_signin import admin_console, csrf_of, sign_in, signed_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "console"
GOOD = {
    "review_threshold": "0.3",
    "suspicious_threshold": "0.8",
    "fallback": "rules",
    "allow_cards": "card-1\ncard-2\n\ncard-1",
    "block_cards": "card-9",
    "allow_terminals": "",
    "block_terminals": "term-7, term-8",
}


def test_a_tenant_admin_sets_thresholds_and_lists(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    csrf = admin_console(client, "boss@acme.example")
    page = client.get("/console/scoring")
    assert page.status_code == 200 and 'for="review-threshold"' in page.text
    assert 'href="/console/scoring" aria-current="page"' in page.text and "never changed" in page.text
    assert client.post("/console/scoring", data=GOOD).status_code == 403  # no CSRF token

    saved = client.post("/console/scoring", data={"csrf": csrf, **GOOD})
    assert saved.status_code == 200 and 'data-testid="saved"' in saved.text
    assert "Bo Boss" in saved.text
    api = client.get("/v1/scoring-config", headers=auth(t["admin"])).json()
    assert (api["review_threshold"], api["suspicious_threshold"], api["fallback"]) == (
        "0.3000",
        "0.8000",
        "rules",
    )
    assert api["allow_cards"] == ["card-1", "card-2"] and api["block_terminals"] == ["term-7", "term-8"]
    assert api["block_cards"] == ["card-9"] and api["allow_terminals"] == []
    ledger = client.get(
        f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"]), params={"action": "scoring_config.updated"}
    ).json()
    assert [e["actor_name"] for e in ledger] == ["Bo Boss <boss@acme.example>"]
    shown = client.get("/console/scoring").text
    assert "card-1\ncard-2</textarea>" in shown and 'value="0.3000"' in shown


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"review_threshold": "0.9"}, "review_threshold"),  # review above suspicious
        ({"review_threshold": "abc"}, "review_threshold"),
        ({"suspicious_threshold": "1.5"}, "suspicious_threshold"),
        ({"review_threshold": "0.123456"}, "review_threshold"),
        ({"fallback": "coin-toss"}, "fallback"),
    ],
)
def test_bad_input_is_refused_inline_naming_the_field(
    client: TestClient, onboard: OnboardFn, person: PersonFn, change: dict[str, str], field: str
) -> None:
    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin")
    csrf = admin_console(client, "boss@acme.example")
    before = client.get("/v1/scoring-config", headers=auth(t["admin"])).json()
    refused = client.post("/console/scoring", data={"csrf": csrf, **GOOD, **change})
    assert refused.status_code == 422, refused.text
    assert f'data-testid="problem">{field}:' in refused.text
    assert "card-9</textarea>" in refused.text  # what the admin typed stays in the form
    assert client.get("/v1/scoring-config", headers=auth(t["admin"])).json() == before


def test_a_suspended_tenant_cannot_save(
    client: TestClient, onboard: OnboardFn, person: PersonFn, admin_key: str
) -> None:
    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin")
    csrf = admin_console(client, "boss@acme.example")
    suspended = client.post(
        f"/v1/tenants/{t['id']}/suspend", json={"reason": "admin"}, headers=auth(admin_key)
    )
    assert suspended.status_code == 200, suspended.text
    refused = client.post("/console/scoring", data={"csrf": csrf, **GOOD})
    assert refused.status_code == 409 and "read-only" in refused.text
    assert client.get("/console/scoring").status_code == 200  # reading stays possible


def test_analysts_and_other_tenants_are_refused(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    a, b = onboard("alpha-co"), onboard("beta-co")
    put = client.put(
        "/v1/scoring-config",
        json={"review_threshold": "0.2", "suspicious_threshold": "0.7", "block_cards": ["alpha-secret-card"]},
        headers=auth(a["admin"]),
    )
    assert put.status_code == 200, put.text
    person(b, "bob@beta.example", role="tenant-admin")
    person(b, "al@beta.example", role="analyst")
    csrf = admin_console(client, "bob@beta.example")
    assert "alpha-secret-card" not in client.get("/console/scoring").text
    assert client.post("/console/scoring", data={"csrf": csrf, **GOOD}).status_code == 200
    assert client.get("/v1/scoring-config", headers=auth(a["admin"])).json()["block_cards"] == [
        "alpha-secret-card"
    ]
    client.cookies.clear()
    sign_in(client, "al@beta.example")
    assert client.get("/console/scoring").status_code == 403
    analyst_csrf = csrf_of(client.get("/console/queue").text)
    assert client.post("/console/scoring", data={"csrf": analyst_csrf, **GOOD}).status_code == 403
    assert 'href="/console/scoring"' not in client.get("/console/queue").text


@pytest.mark.browser
def test_an_admin_edits_scoring_in_the_browser(
    browser: Browser, live_server: str, onboard: OnboardFn, person: PersonFn
) -> None:
    from playwright.sync_api import expect

    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    context, page = signed_in_page(browser, live_server, "boss@acme.example")
    page.get_by_role("link", name="Scoring").click()
    page.get_by_label("Review threshold").fill("0.9")
    page.get_by_label("Suspicious threshold").fill("0.5")
    page.get_by_label("Blocked cards").fill("card-9\ncard-10")
    page.get_by_role("button", name="Save scoring configuration").click()
    expect(page.get_by_test_id("problem")).to_contain_text("review_threshold")
    assert_accessible(page)
    page.get_by_label("Review threshold").fill("0.4")
    page.get_by_label("Fallback").select_option("rules")
    page.get_by_label("Review threshold").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Suspicious threshold")).to_be_focused()
    page.get_by_role("button", name="Save scoring configuration").click()
    expect(page.get_by_test_id("saved")).to_be_visible()
    expect(page.get_by_test_id("list-block_cards")).to_have_value("card-9\ncard-10")
    assert_accessible(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scoring.png"), full_page=True)
    context.close()
