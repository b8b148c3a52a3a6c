"""The console over plain HTTP: sign-in rules, CSRF on every POST, settings, 404 pages, filters."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from control_plane.app import create_app
from control_plane.bootstrap.state import State
from control_plane.settings import AppSettings
from control_plane.web.settings import ConsoleSettings
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.review.conftest import IngestFn, flagged


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _sign_in(client: TestClient, token: str) -> Any:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    return client.post(
        "/console/sign-in", data={"token": token, "csrf": _csrf(page.text)}, follow_redirects=False
    )


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(
    client: TestClient, onboard: OnboardFn
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    resp = _sign_in(client, t["analyst"])
    assert resp.status_code == 303 and resp.headers["location"] == "/console/queue"
    cookie = next(v for k, v in resp.headers.multi_items() if k == "set-cookie" and "fraudrail_console=" in v)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    queue = client.get("/console/queue")
    assert queue.status_code == 200 and "Review queue" in queue.text
    assert "script-src 'self'" in queue.headers["content-security-policy"]
    out = client.post("/console/sign-out", data={"csrf": _csrf(queue.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/console/queue", follow_redirects=False).headers["location"] == "/console/sign-in"


def test_only_analyst_and_tenant_admin_keys_sign_in(
    client: TestClient, onboard: OnboardFn, admin_key: str
) -> None:
    t = onboard("acme-pay", scopes=("app", "analyst"))
    assert _sign_in(client, "frk_0000000000000000.nope").status_code == 401
    for token in (t["app"], admin_key):
        resp = _sign_in(client, token)
        assert resp.status_code == 403 and "analyst and tenant-admin" in resp.text
    assert _sign_in(client, t["admin"]).status_code == 303


def test_every_post_needs_the_csrf_token(client: TestClient, onboard: OnboardFn, ingest: IngestFn) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    (rid,) = ingest(t["id"], flagged(1))
    no_cookie = client.post("/console/sign-in", data={"token": t["analyst"]}, follow_redirects=False)
    assert no_cookie.status_code == 403  # the sign-in form has its own token
    assert client.post(f"/console/reviews/{rid}/claim", data={}).status_code == 403  # no session
    _sign_in(client, t["analyst"])
    for data in ({}, {"csrf": "forged"}):
        assert client.post(f"/console/reviews/{rid}/claim", data=data).status_code == 403
        assert (
            client.post(f"/console/reviews/{rid}/verdict", data={**data, "verdict": "fraud"}).status_code
            == 403
        )
        assert client.post("/console/sign-out", data=data).status_code == 403
    detail = client.get(f"/console/reviews/{rid}")
    assert 'data-testid="status">open<' in detail.text
    claimed = client.post(f"/console/reviews/{rid}/claim", data={"csrf": _csrf(detail.text)})
    assert claimed.status_code == 200 and 'data-testid="status">claimed<' in claimed.text


def test_console_errors_are_pages_with_the_right_status(
    client: TestClient, onboard: OnboardFn, ingest: IngestFn
) -> None:
    a = onboard("alpha-co", scopes=("analyst",))
    b = onboard("beta-co", scopes=("analyst",))
    rid, taken = ingest(a["id"], flagged(1), flagged(2))
    second = client.post(
        f"/v1/tenants/{a['id']}/keys", json={"scope": "analyst", "name": "second"}, headers=auth(a["admin"])
    ).json()["key"]
    assert client.post(f"/v1/reviews/{taken}/claim", headers=auth(second)).status_code == 200
    _sign_in(client, b["analyst"])
    csrf = _csrf(client.get("/console/queue").text)
    other = client.get(f"/console/reviews/{rid}")
    assert other.status_code == 404 and other.headers["content-type"].startswith("text/html")
    assert client.post(f"/console/reviews/{rid}/claim", data={"csrf": csrf}).status_code == 404
    client.cookies.clear()
    _sign_in(client, a["analyst"])
    csrf = _csrf(client.get("/console/queue").text)
    # Someone else's claim is said inline on the item's page, not on an error page.
    theirs = client.post(f"/console/reviews/{taken}/verdict", data={"csrf": csrf, "verdict": "fraud"})
    assert theirs.status_code == 409 and 'data-testid="problem"' in theirs.text
    assert "claimed by" in theirs.text and 'data-testid="txn-id">tx_0002<' in theirs.text
    bad = client.post(f"/console/reviews/{rid}/verdict", data={"csrf": csrf, "verdict": "maybe"})
    assert bad.status_code == 422 and 'data-testid="problem"' in bad.text


def test_a_revoked_key_is_signed_out(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    _sign_in(client, t["analyst"])
    assert client.get("/console/queue").status_code == 200
    keys = client.get(f"/v1/tenants/{t['id']}/keys", headers=auth(t["admin"])).json()
    analyst = next(k for k in keys if k["scope"] == "analyst")
    client.delete(f"/v1/tenants/{t['id']}/keys/{analyst['id']}", headers=auth(t["admin"]))
    resp = client.get("/console/queue", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/console/sign-in"


def test_queue_filters_pages_and_chart(client: TestClient, onboard: OnboardFn, ingest: IngestFn) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    ingest(
        t["id"], *[flagged(n, score=0.5 + n / 100, card="card_7" if n % 2 else "card_8") for n in range(5)]
    )
    _sign_in(client, t["analyst"])
    page = client.get("/console/queue", params={"card_token": "card_7", "limit": "1", "sort": "score"})
    assert page.status_code == 200
    assert page.text.count("data-review-id=") == 1 and "tx_0003" in page.text
    nxt = re.search(r'href="(/console/queue\?[^"]+)" rel="next"', page.text)
    assert nxt is not None
    second = client.get(nxt.group(1).replace("&amp;", "&"))
    assert "tx_0001" in second.text and "tx_0003" not in second.text
    assert "flagged 5" in page.text and "decided 0" in page.text
    bad = client.get("/console/queue", params={"score_min": "2", "since": "yesterday"})
    assert bad.status_code == 422 and "score_min" in bad.text and "since" in bad.text
    assert client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/console/static/../settings.py").status_code == 404


def test_settings_refuse_the_default_secret_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="FRAUDRAIL_CONSOLE_SECRET must be set"):
        ConsoleSettings(env="production")
    with pytest.raises(ValidationError, match="at least 32"):
        ConsoleSettings(env="production", secret="short")
    monkeypatch.setenv("FRAUDRAIL_ENV", "production")
    with pytest.raises(ValidationError):
        ConsoleSettings()
    monkeypatch.setenv("FRAUDRAIL_CONSOLE_SECRET", "x" * 40)
    settings = ConsoleSettings()
    assert settings.env == "production" and settings.secure_cookies
    assert not ConsoleSettings(env="test").secure_cookies


def test_the_app_does_not_start_in_production_with_the_default_secret(
    settings: AppSettings, container: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRAUDRAIL_CONSOLE_SECRET", raising=False)
    container.settings = settings.model_copy(update={"env": "production"})
    with (
        pytest.raises(ValidationError, match="FRAUDRAIL_CONSOLE_SECRET"),
        TestClient(create_app(settings, container)),
    ):
        pass
