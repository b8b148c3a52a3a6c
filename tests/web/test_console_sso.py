"""Single sign-on into the console: over HTTP (the flow bound to the browser that started it) and
in headless Chromium with the provider on another site (``localhost`` vs ``127.0.0.1``), so the
SameSite=Strict session cookie must survive the provider's redirect back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.users.oidc_provider import Login, LoopbackProvider, serve_on_loopback
from tests.web.a11y import axe_violations, describe

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def idp() -> Iterator[LoopbackProvider]:
    """A provider whose issuer is ``localhost``: another site than the console at 127.0.0.1."""
    provider = LoopbackProvider(next_login=Login("sub-sso-1", "ana@acme.example", name="Ana Diaz"))
    with serve_on_loopback(provider.app()) as url:
        provider.issuer = url.replace("127.0.0.1", "localhost")
        yield provider


def _set_up(client: TestClient, onboard: OnboardFn, idp: LoopbackProvider, slug: str) -> dict[str, Any]:
    t = onboard(slug)
    body = {"issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret}
    assert client.put(f"/v1/tenants/{t['id']}/oidc", json=body, headers=auth(t["admin"])).status_code == 200
    invited = client.post(
        f"/v1/tenants/{t['id']}/users",
        json={"email": "ana@acme.example", "name": "Ana Diaz", "role": "analyst"},
        headers=auth(t["admin"]),
    )
    assert invited.status_code == 201, invited.text
    return t


def _to_callback(http: httpx.Client, live_server: str, slug: str) -> str:
    start = http.get(f"{live_server}/console/sso", params={"tenant": slug})
    assert start.status_code == 200, start.text
    refresh = start.headers["refresh"]
    assert refresh.startswith("0; url=") and f'href="{refresh[7:].replace("&", "&amp;")}"' in start.text
    back = http.get(refresh[7:])
    assert back.status_code == 302, back.text
    callback: str = back.headers["location"]
    assert callback.startswith(f"{live_server}/console/sso/callback?")
    return callback


def test_console_single_sign_on_over_http(
    client: TestClient, onboard: OnboardFn, idp: LoopbackProvider, live_server: str
) -> None:
    _set_up(client, onboard, idp, "sso-console")
    with httpx.Client(follow_redirects=False, timeout=10) as ana, httpx.Client(timeout=10) as stranger:
        callback = _to_callback(ana, live_server, "sso-console")
        # Another browser cannot finish Ana's flow (login CSRF): it has no flow cookie.
        foreign = stranger.get(callback)
        assert foreign.status_code == 400 and "not started in this browser" in foreign.text
        done = ana.get(callback)
        assert done.status_code == 200, done.text
        assert done.headers["refresh"] == "0; url=/console/queue"
        queue = ana.get(f"{live_server}/console/queue")
        assert queue.status_code == 200 and "Ana Diaz" in queue.text

        # A flow started for the console cannot be finished at the API's callback (nor reused).
        api_try = ana.get(
            _to_callback(ana, live_server, "sso-console").replace("/console/sso/", "/v1/auth/oidc/", 1)
        )
        assert api_try.status_code == 400 and api_try.json()["field"] == "state"

        unknown = ana.get(f"{live_server}/console/sso", params={"tenant": "nobody-here"})
        assert unknown.status_code == 404 and "nobody-here" in unknown.text


def test_console_single_sign_on_in_chromium(
    browser: Browser,
    client: TestClient,
    onboard: OnboardFn,
    idp: LoopbackProvider,
    live_server: str,
    screenshots: Path,
) -> None:
    from playwright.sync_api import expect

    _set_up(client, onboard, idp, "sso-chromium")
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/console/sign-in")
    assert not (violations := axe_violations(page)), describe(violations)
    page.get_by_label("Organisation (its short name)").fill("sso-chromium")
    page.get_by_role("button", name="Continue with single sign-on").click()
    # localhost (the provider) → 127.0.0.1 (the callback) → the queue, signed in.
    expect(page.get_by_test_id("who")).to_contain_text("Ana Diaz <ana@acme.example>")
    assert page.url.endswith("/console/queue")
    page.screenshot(path=str(screenshots / "console-sso-signed-in.png"), full_page=True)
    context.close()
