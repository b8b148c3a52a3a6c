"""The review pages in headless Chromium: axe-core finds no WCAG A / AA violation on any of them,
bulk actions, escalation and resolution work from the keyboard, and another tenant's analyst is
refused on each page. Screenshots are kept under var/test-artifacts/console/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from control_plane.settings import REPO_ROOT
from tests.control_plane.conftest import OnboardFn
from tests.control_plane.review.conftest import IngestFn, flagged
from tests.web.a11y import assert_accessible, axe_violations
from tests.web.console_signin import key_signed_in_page

pytestmark = pytest.mark.browser
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "console"


def _signed_in(browser: Browser, base_url: str, token: str) -> Any:
    return key_signed_in_page(browser, base_url, token)[1]


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_review_pages_are_accessible_keyboard_driven_and_refused_to_other_tenants(
    browser: Browser, live_server: str, onboard: OnboardFn, ingest: IngestFn
) -> None:
    alpha = onboard("alpha-co", scopes=("analyst",))
    beta = onboard("beta-co", scopes=("analyst",))
    ids = ingest(
        alpha["id"],
        flagged(1, score=0.97, card="card_9"),
        flagged(2, score=0.91, card="card_9"),
        flagged(3, score=0.85),
        flagged(4, score=0.70),
    )
    page = _signed_in(browser, live_server, alpha["analyst"])
    rows = page.locator("table.queue tbody tr[data-review-id]")
    expect(rows).to_have_count(4)
    expect(page.get_by_test_id("total")).to_have_text("4")
    expect(rows.first.get_by_test_id("reasons")).to_contain_text("AMOUNT_HIGH")
    expect(page.locator("body")).to_have_attribute("data-shortcuts", "ready")
    assert_accessible(page)
    _shot(page, "queue")

    # Tick the two lowest rows with the keyboard, then claim them in one all-or-nothing action.
    for key in ("j", "j", "j", "x", "j", "x"):
        page.keyboard.press(key)
    expect(page.get_by_test_id("selected-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Claim selected").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Claimed 2 selected items")
    expect(rows).to_have_count(2)  # claimed items leave the open queue
    page.goto("/console/queue?status=claimed")
    expect(rows).to_have_count(2)
    expect(page.locator("table.queue")).to_contain_text("claimed · you")
    page.goto("/console/queue")

    # Open the top item, escalate it with e: the next open item opens.
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("txn-id")).to_have_text("tx_0001")
    expect(page.get_by_test_id("history")).to_contain_text("tx_0002")
    expect(page.get_by_test_id("features").locator("span[title='amount']")).to_have_text("Transaction amount")
    assert_accessible(page)
    _shot(page, "detail")
    page.keyboard.press("e")
    expect(page.get_by_test_id("notice")).to_contain_text("Recorded escalate for tx_0001")
    expect(page.get_by_test_id("txn-id")).to_have_text("tx_0002")

    # A filter error is said inline; the page stays accessible.
    page.goto("/console/queue?score_min=9")
    expect(page.get_by_test_id("form-errors")).to_contain_text("score_min")
    expect(page.get_by_test_id("empty")).to_contain_text("the filter above has errors")
    assert_accessible(page)

    # The escalated queue, then a tenant admin resolves the item with f.
    admin = _signed_in(browser, live_server, alpha["admin"])
    admin.get_by_test_id("escalated-link").click()
    escalated = admin.locator("table.queue tbody tr[data-review-id]")
    expect(escalated).to_have_count(1)
    assert_accessible(admin)
    _shot(admin, "escalated")
    admin.keyboard.press("j")
    admin.keyboard.press("o")
    expect(admin.get_by_test_id("escalation")).to_contain_text("Escalated by")
    assert_accessible(admin)
    _shot(admin, "resolve")
    admin.keyboard.press("f")
    expect(admin.get_by_test_id("notice")).to_contain_text("Recorded fraud for tx_0001")
    expect(escalated).to_have_count(0)

    # Another tenant's analyst sees none of it and is refused on every page and action.
    other = _signed_in(browser, live_server, beta["analyst"])
    expect(other.locator("table.queue tbody tr[data-review-id]")).to_have_count(0)
    for path in (f"/console/reviews/{ids[0]}", f"/console/reviews/{ids[2]}"):
        response = other.goto(path)
        assert response is not None and response.status == 404
        assert_accessible(other)
    csrf = other.locator("#bulk-form input[name=csrf]").first
    other.goto("/console/queue")
    token = csrf.get_attribute("value")
    for action in ("claim", "verdict", "resolve"):
        refused = other.context.request.post(
            f"/console/reviews/{ids[3]}/{action}", form={"csrf": token or "", "verdict": "fraud"}
        )
        assert refused.status == 404, action
    bulk = other.context.request.post(
        "/console/queue/bulk", form={"csrf": token or "", "action": "fraud", "ids": ids[3]}
    )
    assert bulk.status == 409
    for ctx in (page.context, admin.context, other.context):
        ctx.close()


def test_the_accessibility_check_can_fail(browser: Browser) -> None:
    """The axe run above is no formality: an unlabelled field and low-contrast text are caught."""
    page = browser.new_page()
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><h1>x</h1><input name="q">'
        '<p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    ids = {v["id"] for v in axe_violations(page)}
    assert {"label", "color-contrast"} <= ids, ids
    page.close()
