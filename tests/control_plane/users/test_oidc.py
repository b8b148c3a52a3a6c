"""Single sign-on by OpenID Connect, end to end over real HTTP: the app served by uvicorn, a real
provider on loopback (``oidc_provider.LoopbackProvider``), a client that follows the redirects
by hand. Each misbehaviour of the provider or the browser is refused with a problem naming what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from control_plane.app import create_app
from control_plane.bootstrap.state import State, build_state
from control_plane.orm_base import utcnow
from control_plane.settings import AppSettings
from control_plane.users.oidc_settings import OidcSettings
from control_plane.users.oidc_tokens import TtlCache
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.users.oidc_provider import Login, LoopbackProvider, serve_on_loopback

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def provider() -> Iterator[LoopbackProvider]:
    idp = LoopbackProvider()
    with serve_on_loopback(idp.app()) as url:
        idp.issuer = url
        yield idp


@pytest.fixture
def idp(provider: LoopbackProvider) -> LoopbackProvider:
    """The module's provider, as new: no tampering, no codes, the default person signs in."""
    provider.tamper.clear()
    provider.codes.clear()
    provider.token_requests.clear()
    provider.next_login = Login("sub-0001", "sam@acme.example")
    return provider


@pytest.fixture
def app_url(settings: AppSettings, container: State) -> Iterator[str]:
    with serve_on_loopback(create_app(settings, container)) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        yield http


def configure(
    client: TestClient, tenant: dict[str, Any], idp: LoopbackProvider, **extra: Any
) -> dict[str, Any]:
    body = {"issuer": idp.issuer, "client_id": idp.client_id, "client_secret": idp.client_secret, **extra}
    resp = client.put(f"/v1/tenants/{tenant['id']}/oidc", json=body, headers=auth(tenant["admin"]))
    assert resp.status_code == 200, resp.text
    shown: dict[str, Any] = resp.json()
    return shown


def go_to_provider(browser: httpx.Client, app_url: str, tenant: str) -> str:
    """Start a sign-in and let the provider answer; the callback URL the provider redirected to."""
    start = browser.get(f"{app_url}/v1/auth/oidc/{tenant}/start")
    assert start.status_code == 302, start.text
    at_provider = browser.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    return at_provider.headers["location"]


def sign_in(browser: httpx.Client, app_url: str, tenant: str) -> tuple[httpx.Response, str]:
    callback = go_to_provider(browser, app_url, tenant)
    return browser.get(callback), callback


def refused(resp: httpx.Response, status: int, field: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["field"] == field, resp.json()


def invite(client: TestClient, tenant: dict[str, Any], email: str, role: str = "analyst") -> dict[str, Any]:
    resp = client.post(
        f"/v1/tenants/{tenant['id']}/users",
        json={"email": email, "name": "Sam Invited", "role": role},
        headers=auth(tenant["admin"]),
    )
    assert resp.status_code == 201, resp.text
    user: dict[str, Any] = resp.json()
    return user


def test_an_invited_person_signs_in_with_the_tenants_provider(
    client: TestClient, onboard: OnboardFn, idp: LoopbackProvider, app_url: str, browser: httpx.Client
) -> None:
    t = onboard("sso-co")
    shown = configure(client, t, idp)
    assert "client_secret" not in shown and shown["client_secret_set"] is True and shown["jit_role"] is None
    invited = invite(client, t, "sam@acme.example")

    start = browser.get(f"{app_url}/v1/auth/oidc/sso-co/start")  # by slug
    assert start.status_code == 302
    sent = parse_qs(urlsplit(start.headers["location"]).query)
    assert sent["code_challenge_method"] == ["S256"] and len(sent["code_challenge"][0]) == 43
    assert sent["redirect_uri"] == [f"{app_url}/v1/auth/oidc/callback"]
    callback = browser.get(start.headers["location"]).headers["location"]
    done = browser.get(callback)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["token"].startswith("frs_") and body["user"]["id"] == invited["id"]
    # The token endpoint got the PKCE verifier and the client authenticated (basic auth).
    assert len(idp.token_requests) == 1 and len(idp.token_requests[0]["code_verifier"]) == 43
    assert "client_secret" not in idp.token_requests[0]

    me = browser.get(f"{app_url}/v1/auth/me", headers=auth(body["token"])).json()
    assert me["kind"] == "user" and me["role"] == "analyst" and me["tenant_id"] == t["id"]
    users = client.get(f"/v1/tenants/{t['id']}/users", headers=auth(t["admin"])).json()
    assert [u["status"] for u in users] == ["active"]  # the invitation is accepted by signing in
    ledger = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    actions = [e["action"] for e in ledger]
    assert {"oidc.configured", "user.oidc_linked", "user.signed_in"} <= set(actions)
    signed_in = next(e for e in ledger if e["action"] == "user.signed_in")
    assert (
        signed_in["after"] == {"method": "oidc"}
        and signed_in["actor_name"] == "Sam Invited <sam@acme.example>"
    )

    # Replaying the callback (same state) is refused: the flow was used.
    refused(browser.get(callback), 400, "state")
    # The second sign-in finds the user by its subject.
    again, _ = sign_in(browser, app_url, t["id"])
    assert again.status_code == 200 and again.json()["user"]["id"] == invited["id"]


def test_pkce_nonce_audience_expiry_and_signature_are_checked(
    client: TestClient, onboard: OnboardFn, idp: LoopbackProvider, app_url: str, browser: httpx.Client
) -> None:
    t = onboard("checks-co")
    configure(client, t, idp)
    invite(client, t, "sam@acme.example")
    for tamper, status, field in (
        ({"challenge": "A" * 43}, 400, "code"),  # the verifier the app sends does not match
        ({"nonce": "not-the-nonce"}, 401, "id_token.nonce"),
        ({"aud": "another-client"}, 401, "id_token.aud"),
        ({"exp_offset_s": -3600}, 401, "id_token.exp"),
        ({"other_key": True}, 401, "id_token.signature"),
    ):
        idp.tamper.clear()
        idp.tamper.update(tamper)
        resp, _ = sign_in(browser, app_url, t["id"])
        refused(resp, status, field)
    idp.tamper.clear()
    ok, _ = sign_in(browser, app_url, t["id"])
    assert ok.status_code == 200, ok.text
    ledger = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    refusals = [e for e in ledger if e["action"] == "user.sign_in_refused"]
    assert sorted(e["after"]["field"] for e in refusals) == sorted(
        ["code", "id_token.nonce", "id_token.aud", "id_token.exp", "id_token.signature"]
    )


def test_unknown_state_an_expired_flow_and_a_provider_error_are_refused(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    idp: LoopbackProvider,
    app_url: str,
    browser: httpx.Client,
) -> None:
    t = onboard("expiry-co")
    configure(client, t, idp)
    invite(client, t, "sam@acme.example")
    refused(
        browser.get(f"{app_url}/v1/auth/oidc/callback", params={"state": "made-up", "code": "x"}),
        400,
        "state",
    )
    callback = go_to_provider(browser, app_url, t["id"])
    flow_ttl = container.oidc.settings.flow_ttl_s
    container.oidc.clock = lambda: utcnow() + timedelta(seconds=flow_ttl + 1)
    try:
        refused(browser.get(callback), 400, "state")
    finally:
        container.oidc.clock = utcnow
    state = parse_qs(urlsplit(go_to_provider(browser, app_url, t["id"])).query)["state"][0]
    denied = browser.get(
        f"{app_url}/v1/auth/oidc/callback", params={"state": state, "error": "access_denied"}
    )
    refused(denied, 400, "error")
    refused(browser.get(f"{app_url}/v1/auth/oidc/no-such-tenant/start"), 404, "tenant")


def test_invite_only_refuses_strangers_and_other_tenants_users(
    client: TestClient, onboard: OnboardFn, idp: LoopbackProvider, app_url: str, browser: httpx.Client
) -> None:
    a = onboard("alpha-sso")
    b = onboard("beta-sso")
    configure(client, a, idp)
    # Nobody invited sam@ to alpha: refused (invite-only is the default).
    resp, _ = sign_in(browser, app_url, a["id"])
    refused(resp, 403, "id_token.email")
    # sam@ is a user of beta: signing in through alpha's provider is refused.
    invite(client, b, "sam@acme.example")
    resp, _ = sign_in(browser, app_url, a["id"])
    refused(resp, 403, "id_token.email")
    assert client.get(f"/v1/tenants/{a['id']}/users", headers=auth(a["admin"])).json() == []
    # An address the provider has not verified.
    idp.next_login = Login("sub-0002", "kim@acme.example", email_verified=False)
    invite(client, a, "kim@acme.example")
    resp, _ = sign_in(browser, app_url, a["id"])
    refused(resp, 403, "id_token.email_verified")


def test_just_in_time_provisioning_and_the_allowed_domain(
    client: TestClient, onboard: OnboardFn, idp: LoopbackProvider, app_url: str, browser: httpx.Client
) -> None:
    t = onboard("jit-co")
    configure(client, t, idp, jit_role="sre", allowed_email_domain="acme.example")
    resp, _ = sign_in(browser, app_url, t["id"])
    assert resp.status_code == 200, resp.text
    user = resp.json()["user"]
    assert user["role"] == "sre" and user["email"] == "sam@acme.example" and user["name"] == "Sam Single"
    idp.next_login = Login("sub-0003", "eve@elsewhere.example")
    resp, _ = sign_in(browser, app_url, t["id"])
    refused(resp, 403, "id_token.email")
    assert len(client.get(f"/v1/tenants/{t['id']}/users", headers=auth(t["admin"])).json()) == 1


def test_the_configuration_routes(client: TestClient, onboard: OnboardFn, idp: LoopbackProvider) -> None:
    t = onboard("config-co", scopes=("analyst",))
    url = f"/v1/tenants/{t['id']}/oidc"
    assert client.get(url, headers=auth(t["admin"])).status_code == 404
    first = {"issuer": idp.issuer, "client_id": "c1"}
    refused_first = client.put(url, json=first, headers=auth(t["admin"]))
    assert refused_first.status_code == 422 and refused_first.json()["field"] == "client_secret"
    plain_http = client.put(
        url, json={**first, "issuer": "http://idp.example", "client_secret": "s"}, headers=auth(t["admin"])
    )
    assert plain_http.status_code == 422 and "issuer" in plain_http.json()["field"]
    assert (
        client.put(url, json={**first, "client_secret": "s"}, headers=auth(t["analyst"])).status_code == 403
    )
    made = client.put(url, json={**first, "client_secret": "s3cret"}, headers=auth(t["admin"]))
    assert made.status_code == 200 and "s3cret" not in made.text
    kept = client.put(url, json={**first, "client_id": "c2"}, headers=auth(t["admin"]))  # the secret stays
    assert kept.status_code == 200 and kept.json()["client_id"] == "c2" and kept.json()["client_secret_set"]
    assert "s3cret" not in client.get(url, headers=auth(t["admin"])).text
    assert client.delete(url, headers=auth(t["admin"])).status_code == 204
    assert client.get(url, headers=auth(t["admin"])).status_code == 404


def test_a_rotated_provider_key_is_fetched_once_and_cached_keys_serve_the_rest(
    client: TestClient,
    onboard: OnboardFn,
    idp: LoopbackProvider,
    app_url: str,
    browser: httpx.Client,
) -> None:
    t = onboard("rotate-co")
    configure(client, t, idp, jit_role="analyst")
    assert sign_in(browser, app_url, t["id"])[0].status_code == 200
    reads = idp.jwks_reads
    assert sign_in(browser, app_url, t["id"])[0].status_code == 200
    assert idp.jwks_reads == reads  # served from the cache
    idp.rotate_key("loopback-2")
    try:
        # The new kid is unknown to the cached key set: the JWKS is read again, once.
        assert sign_in(browser, app_url, t["id"])[0].status_code == 200
        assert idp.jwks_reads == reads + 1
    finally:
        idp.rotate_key("loopback-1")  # the module's provider, as the other tests expect it


def test_the_metadata_caches_are_bounded_in_size_and_time() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(ttl_s=10, entries=2, clock=lambda: now[0])
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.put("c", "C")
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == "A"
    now[0] = 10.0
    assert cache.get("a") is None and cache.get("c") is None


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(ValueError, match="FRAUDRAIL_OIDC_SECRET_KEY"):
        OidcSettings().refuse_unsafe("production")
    OidcSettings(secret_key="k" * 40).refuse_unsafe("production")  # type: ignore[arg-type]
    OidcSettings().refuse_unsafe("development")


def test_the_callback_may_reach_another_server_process(
    client: TestClient,
    settings: AppSettings,
    onboard: OnboardFn,
    idp: LoopbackProvider,
    app_url: str,
    browser: httpx.Client,
) -> None:
    """The flow is in the database: a second process (its own state, engine and caches) takes the
    callback of a sign-in the first one started, and the first then refuses it as used."""
    t = onboard("two-procs")
    configure(client, t, idp)
    invite(client, t, "sam@acme.example")
    callback = go_to_provider(browser, app_url, t["id"])
    other_state = build_state(settings.model_copy(update={"run_worker_in_process": False}))
    try:
        with serve_on_loopback(create_app(settings, other_state)) as other_url:
            done = browser.get(callback.replace(app_url, other_url, 1))
            assert done.status_code == 200, done.text
            me = browser.get(f"{app_url}/v1/auth/me", headers=auth(done.json()["token"]))
            assert me.status_code == 200 and me.json()["email"] == "sam@acme.example"
    finally:
        other_state.engine.dispose()
    refused(browser.get(callback), 400, "state")


def test_offboarding_purges_the_tenants_single_sign_on(
    client: TestClient,
    admin_key: str,
    onboard: OnboardFn,
    idp: LoopbackProvider,
    app_url: str,
    browser: httpx.Client,
) -> None:
    t = onboard("leaving-co")
    configure(client, t, idp)
    go_to_provider(browser, app_url, t["id"])  # a sign-in still waiting: one oidc_flows row
    resp = client.delete(f"/v1/tenants/{t['id']}", headers=auth(admin_key))
    assert resp.status_code == 200, resp.text
    stores = {s["store"]: s for s in resp.json()["stores"]}
    assert stores["single_sign_on"] == {**stores["single_sign_on"], "purged": 2, "remaining": []}
    refused(browser.get(f"{app_url}/v1/auth/oidc/{t['id']}/start"), 404, "tenant")
