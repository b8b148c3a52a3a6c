"""Signing a person in to the console in tests: over HTTP with the test client, or in Chromium."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from tests.control_plane.users.conftest import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a console page's forms post."""
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def sign_in(client: TestClient, email: str) -> None:
    """Sign a person in with e-mail and password (the session cookie stays on the client)."""
    page = client.get("/console/sign-in")
    data = {"email": email, "password": PASSWORD, "csrf": csrf_of(page.text)}
    assert client.post("/console/sign-in", data=data, follow_redirects=False).status_code == 303


def admin_console(client: TestClient, email: str) -> str:
    """Sign a tenant admin in; the CSRF token of the session."""
    sign_in(client, email)
    return csrf_of(client.get("/console/users").text)


def signed_in_page(browser: Browser, base_url: str, email: str) -> tuple[BrowserContext, Page]:
    """A browser context (the caller closes it) and its page, signed in with e-mail and password."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    return context, page


def key_signed_in_page(browser: Browser, base_url: str, token: str) -> tuple[BrowserContext, Page]:
    """A browser context (the caller closes it) and its page, signed in with an API key: the queue."""
    from playwright.sync_api import expect

    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/sign-in")
    page.fill("#token", token)
    page.locator("form:has(#token) button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/console/queue$"))
    return context, page
