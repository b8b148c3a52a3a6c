"""People sign in to the console with e-mail and password; the header names the tenant and the person."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.review.conftest import IngestFn, flagged
from tests.control_plane.users.conftest import PASSWORD, PersonFn


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _sign_in(client: TestClient, email: str, password: str) -> Any:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    assert '<label for="email">' in page.text and '<label for="password">' in page.text
    data = {"email": email, "password": password, "csrf": _csrf(page.text)}
    return client.post("/console/sign-in", data=data, follow_redirects=False)


def test_a_person_signs_in_and_the_header_names_tenant_and_person(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    t = onboard("acme-pay")
    person(t, "ana@acme.example", role="analyst", name="Ana Diaz")
    wrong = _sign_in(client, "ana@acme.example", "not the password")
    assert wrong.status_code == 401 and "Wrong e-mail or password." in wrong.text
    unknown = _sign_in(client, "nobody@acme.example", PASSWORD)
    assert unknown.status_code == 401 and "Wrong e-mail or password." in unknown.text
    ok = _sign_in(client, "ana@acme.example", PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/console/queue"
    queue = client.get("/console/queue")
    assert queue.status_code == 200
    who = re.search(r'data-testid="who">(.*?)</span>\s*<form', queue.text, re.S)
    assert who is not None
    header = re.sub(r"<[^>]+>|\s+", " ", who.group(1))
    assert "acme-pay Ltd" in header and "Ana Diaz &lt;ana@acme.example&gt;" in header and "analyst" in header
    assert t["id"] not in header.replace(f'title="{t["id"]}"', "")


def test_an_sre_is_refused_and_a_removed_user_is_signed_out(
    client: TestClient, onboard: OnboardFn, person: PersonFn, container: State
) -> None:
    t = onboard("acme-pay")
    person(t, "sam@acme.example", role="sre", name="Sam")
    refused = _sign_in(client, "sam@acme.example", PASSWORD)
    assert refused.status_code == 403 and "your role is sre" in refused.text
    bo = person(t, "bo@acme.example", role="analyst", name="Bo")
    assert _sign_in(client, "bo@acme.example", PASSWORD).status_code == 303
    assert client.get("/console/queue").status_code == 200
    removed = client.delete(f"/v1/tenants/{t['id']}/users/{bo['id']}", headers=auth(t["admin"]))
    assert removed.status_code == 204
    after = client.get("/console/queue", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == "/console/sign-in"


def test_repeated_failures_lock_the_account(
    client: TestClient, onboard: OnboardFn, person: PersonFn, container: State
) -> None:
    t = onboard("acme-pay")
    person(t, "lee@acme.example", role="analyst", name="Lee")
    sessions = container.user_sessions
    for _ in range(sessions.settings.lockout_after):
        assert _sign_in(client, "lee@acme.example", "wrong password!").status_code == 401
    # Locked: even the right password is refused, in the console and the API, with the wait.
    locked = _sign_in(client, "lee@acme.example", PASSWORD)
    assert locked.status_code == 429 and "locked" in locked.text
    api = client.post("/v1/auth/sessions", json={"email": "lee@acme.example", "password": PASSWORD})
    assert api.status_code == 429 and int(api.headers["retry-after"]) > 0
    assert api.json()["field"] == "email"
    # After the lockout the right password works again (the clock moves; no sleeping).
    real_clock = sessions.clock
    later = real_clock() + timedelta(seconds=sessions.settings.lockout_s + 1)
    sessions.clock = lambda: later
    try:
        assert (
            client.post(
                "/v1/auth/sessions", json={"email": "lee@acme.example", "password": PASSWORD}
            ).status_code
            == 201
        )
    finally:
        sessions.clock = real_clock
    ledger = client.get(
        f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"]), params={"action": "user.locked"}
    )
    assert len(ledger.json()) == 1


def test_reviewers_appear_by_name(
    client: TestClient, onboard: OnboardFn, person: PersonFn, ingest: IngestFn
) -> None:
    t = onboard("acme-pay")
    ana = person(t, "ana@acme.example", role="analyst", name="Ana Diaz")
    first, second = ingest(t["id"], flagged(1), flagged(2))
    assert client.post(f"/v1/reviews/{first}/claim", headers=auth(ana["token"])).status_code == 200
    assert client.post(f"/v1/reviews/{second}/claim", headers=auth(ana["token"])).status_code == 200
    verdict = {"verdict": "fraud", "note": "stolen"}
    decided = client.post(f"/v1/reviews/{second}/verdict", json=verdict, headers=auth(ana["token"]))
    assert decided.status_code == 200, decided.text
    # A tenant admin (signed in with its key) sees her name where the queue stored her id.
    page = client.get("/console/sign-in")
    signed = client.post(
        "/console/sign-in", data={"token": t["admin"], "csrf": _csrf(page.text)}, follow_redirects=False
    )
    assert signed.status_code == 303
    claimed = client.get(f"/console/reviews/{first}")
    assert "Claimed by Ana Diaz &lt;ana@acme.example&gt;" in claimed.text
    assert ana["id"] not in claimed.text.replace(f'"{ana["id"]}"', "")
    verdict_page = client.get(f"/console/reviews/{second}")
    assert "by Ana Diaz &lt;ana@acme.example&gt;" in verdict_page.text
    queue = client.get("/console/queue?status=claimed")
    assert "Ana Diaz &lt;ana@acme.example&gt;" in queue.text
