"""The console in headless Chromium: sign in, work the queue with the keyboard, isolation, CSRF."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from control_plane.bootstrap.state import State
from control_plane.review.contract import FLAGGED_TOPIC
from tests.control_plane.conftest import OnboardFn
from tests.control_plane.review.conftest import flagged

pytestmark = pytest.mark.browser


def _sign_in(browser: Browser, base_url: str, token: str) -> Any:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.fill("#token", token)
    page.get_by_role("button", name="Use API key").click()
    expect(page).to_have_url(re.compile(r"/console/queue$"))
    return page


def test_an_analyst_works_the_queue_with_the_keyboard(
    browser: Browser,
    live_server: str,
    onboard: OnboardFn,
    container: State,
    labels_seen: list[dict[str, Any]],
    screenshots: Path,
) -> None:
    alpha = onboard("alpha-co", scopes=("analyst",))
    beta = onboard("beta-co", scopes=("analyst",))
    bus = container.providers.event_bus
    for record in (
        flagged(1, score=0.97, amount="1250.00", card="card_9"),
        flagged(2, score=0.81, amount="89.90", card="card_9"),
        flagged(3, score=0.66, amount="12.00", card="card_3", decision="REVIEW"),
    ):
        bus.publish(FLAGGED_TOPIC, {**record, "tenant_id": alpha["id"]})

    page = _sign_in(browser, live_server, alpha["analyst"])
    rows = page.locator("table.queue tbody tr[data-review-id]")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("tx_0001")  # highest score first
    expect(page.get_by_test_id("daily-chart")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-shortcuts", "ready")
    page.screenshot(path=str(screenshots / "queue.png"), full_page=True)

    page.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile(r"\bselected\b"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/reviews/rev_[0-9a-f]+$"))
    review_url = page.url
    expect(page.get_by_test_id("txn-id")).to_have_text("tx_0001")
    expect(page.get_by_test_id("status")).to_have_text("open")
    expect(page.get_by_test_id("history")).to_contain_text("tx_0002")
    expect(page.locator("body")).to_have_attribute("data-shortcuts", "ready")

    page.keyboard.press("c")
    expect(page.get_by_test_id("status")).to_have_text("claimed")
    expect(page.get_by_test_id("claim")).to_contain_text("Claimed by you")
    page.screenshot(path=str(screenshots / "detail.png"), full_page=True)

    page.keyboard.press("f")
    # After a verdict the next open item opens (the queue's order: score, highest first).
    expect(page).to_have_url(re.compile(r"/console/reviews/rev_[0-9a-f]+\?decided=rev_"))
    expect(page.get_by_test_id("notice")).to_contain_text("Recorded fraud for tx_0001")
    expect(page.get_by_test_id("txn-id")).to_have_text("tx_0002")
    page.keyboard.press("u")
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("queue")).not_to_contain_text("tx_0001")
    assert [m["txn_id"] for m in labels_seen] == ["tx_0001"] and labels_seen[0]["label"] == 1

    page.goto(review_url)
    expect(page.get_by_test_id("verdict")).to_contain_text("fraud")

    # The session cookie is HttpOnly and SameSite=Strict.
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "fraudrail_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # A POST without the page's CSRF token (or with a forged one) is refused, even with the cookie.
    for form in ({}, {"csrf": "forged"}):
        refused = page.context.request.post(f"{review_url}/verdict", form={**form, "verdict": "legit"})
        assert refused.status == 403
    expect(page.get_by_test_id("status")).to_have_text("decided")

    # Another tenant's analyst cannot open the item.
    other = _sign_in(browser, live_server, beta["analyst"])
    expect(other.locator("table.queue tbody tr[data-review-id]")).to_have_count(0)
    response = other.goto(review_url)
    assert response is not None and response.status == 404
    expect(other.locator("h1")).to_contain_text("404")
    other.context.close()
    page.context.close()
