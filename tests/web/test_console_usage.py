"""Tenant-admin console page for budget and usage: the figures of GET /v1/costs, a server-drawn
SVG chart of cost to date against the budget, usage by meter, and a chosen month."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.finops.service import month_bounds
from control_plane.orm_base import utcnow
from control_plane.settings import REPO_ROOT
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.finops.conftest import spend
from tests.control_plane.users.conftest import PersonFn
from tests.web.a11y import assert_accessible
from tests.web.console_signin import admin_console, sign_in, signed_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "console"


def _spend_this_month(container: State, tenant_id: str) -> tuple[str, str]:
    """12.50 on the month's first day and 7.25 now; the two days' ISO dates."""
    now = utcnow()
    first, _ = month_bounds(now)
    spend(container, tenant_id, Decimal("12.50"), first + timedelta(hours=1))
    spend(container, tenant_id, Decimal("7.25"), now)
    return first.date().isoformat(), now.date().isoformat()


def test_a_tenant_admin_sees_cost_against_the_budget(
    client: TestClient, onboard: OnboardFn, person: PersonFn, container: State
) -> None:
    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin")
    first_day, today = _spend_this_month(container, t["id"])
    admin_console(client, "boss@acme.example")
    page = client.get("/console/usage")
    assert page.status_code == 200, page.text
    api = client.get("/v1/costs", headers=auth(t["admin"])).json()
    assert Decimal(api["month_to_date"]) == Decimal("19.75")
    budget = api["budget"]
    assert f"{budget['amount']} {budget['currency']}" in page.text
    assert f'data-testid="actual">{budget["actual"]} ' in page.text
    assert 'href="/console/usage" aria-current="page"' in page.text
    svg = re.search(r'<svg [^>]*data-testid="usage-chart".*?</svg>', page.text, re.S)
    assert svg is not None and 'data-series="cost to date"' in svg.group(0)
    assert (
        'data-series="budget"' in svg.group(0)
        and "<script" not in svg.group(0)
        and "http" not in svg.group(0)
    )
    running = f'<th scope="row">{today}</th><td class="num">{"7.25" if today != first_day else "19.75"}</td>'
    assert running in page.text
    assert f'<th scope="row">{first_day}</th><td class="num">' in page.text
    assert '<td class="num">19.75</td></tr>' in page.text  # the last day's cost to date
    assert "training_seconds" in page.text

    past = client.get("/console/usage", params={"month": "2020-01"})
    assert past.status_code == 200 and "Budgets are kept for the current month" in past.text
    for bad in ("2026-13", "last month"):
        refused = client.get("/console/usage", params={"month": bad})
        assert refused.status_code == 422 and 'data-testid="problem">month:' in refused.text


def test_analysts_and_other_tenants_are_refused(
    client: TestClient, onboard: OnboardFn, person: PersonFn, container: State
) -> None:
    a, b = onboard("alpha-co"), onboard("beta-co")
    spend(container, a["id"], Decimal("42.42"), utcnow())
    person(b, "bob@beta.example", role="tenant-admin")
    person(b, "al@beta.example", role="analyst")
    admin_console(client, "bob@beta.example")
    page = client.get("/console/usage")
    assert page.status_code == 200 and "42.42" not in page.text and "No usage this month." in page.text
    client.cookies.clear()
    sign_in(client, "al@beta.example")
    assert client.get("/console/usage").status_code == 403
    assert 'href="/console/usage"' not in client.get("/console/queue").text


@pytest.mark.browser
def test_an_admin_reads_usage_in_the_browser(
    browser: Browser, live_server: str, onboard: OnboardFn, person: PersonFn, container: State
) -> None:
    from playwright.sync_api import expect

    t = onboard("acme-pay")
    person(t, "boss@acme.example", role="tenant-admin", name="Bo Boss")
    _spend_this_month(container, t["id"])
    context, page = signed_in_page(browser, live_server, "boss@acme.example")
    page.get_by_role("link", name="Budget and usage").click()
    expect(page.get_by_test_id("usage-chart")).to_be_visible()
    expect(page.get_by_test_id("budget-status")).to_contain_text("ok")
    assert_accessible(page)
    page.get_by_label("Month (YYYY-MM)").fill("2026-13")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("problem")).to_contain_text("month")
    assert_accessible(page)
    page.get_by_label("Month (YYYY-MM)").fill("")
    page.get_by_role("button", name="Show month").click()
    expect(page.get_by_test_id("usage-chart")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "usage.png"), full_page=True)
    context.close()
