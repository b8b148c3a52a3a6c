"""Every mutating route: scope before the body, and a suspended tenant is read-only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.app import create_app
from control_plane.auth.write_guard import ALLOWED_WHILE_SUSPENDED, WRITE_SCOPES
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import txn

MUTATING = ("post", "put", "patch", "delete")
KEY_OF_SCOPE = {"tenant-admin": "admin", "sre": "sre", "analyst": "analyst", "app": "app"}


def mutating_routes() -> list[tuple[str, str]]:
    paths = create_app().openapi()["paths"]
    return sorted((m.upper(), p) for p, ops in paths.items() for m in ops if m in MUTATING)


def test_every_mutating_route_has_a_row() -> None:
    routes = set(mutating_routes())
    assert ("PUT", "/v1/scoring-config") in routes, "the route listing found nothing"
    assert routes <= set(WRITE_SCOPES), f"add write-guard rows for {sorted(routes - set(WRITE_SCOPES))}"


def _url(path: str, tenant_id: str) -> str:
    # The guard answers before any lookup: ids of the right shape that name nothing will do.
    filled = path.replace("{tenant_id}", tenant_id)
    return re.sub(r"\{(\w+)_id\}", lambda m: f"{m.group(1)}_{'0' * 16}", filled)


@pytest.fixture
def tenant(onboard: OnboardFn) -> dict[str, Any]:
    return onboard("guarded", scopes=("app", "analyst", "sre"))


def test_a_suspended_tenant_cannot_write_anywhere(
    client: TestClient, tenant: dict[str, Any], admin_key: str
) -> None:
    t = tenant
    suspended = client.post(
        f"/v1/tenants/{t['id']}/suspend", json={"reason": "admin", "note": "review"}, headers=auth(admin_key)
    )
    assert suspended.status_code == 200, suspended.text
    checked = 0
    for method, path in mutating_routes():
        tenant_scopes = sorted(s.value for s in WRITE_SCOPES[(method, path)] if s.value in KEY_OF_SCOPE)
        if not tenant_scopes or (method, path) in ALLOWED_WHILE_SUSPENDED:
            continue
        for scope in tenant_scopes:
            body = txn("while-suspended") if path == "/v1/fraud-check" else {}
            resp = client.request(
                method, _url(path, t["id"]), json=body, headers=auth(t[KEY_OF_SCOPE[scope]])
            )
            assert resp.status_code == 409, (method, path, scope, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert "suspended" in resp.json()["detail"].lower(), (method, path, resp.text)
            if path != "/v1/fraud-check":  # the hot path answers from its own in-memory state
                assert resp.json()["tenant_status"] == "SUSPENDED"
            checked += 1
    assert checked >= 20
    # The two examples, with well-formed bodies.
    config = {"review_threshold": "0.5", "suspicious_threshold": "0.8"}
    put = client.put("/v1/scoring-config", json=config, headers=auth(t["admin"]))
    assert put.status_code == 409 and put.json()["tenant_status"] == "SUSPENDED"
    bulk = client.post(
        "/v1/reviews/bulk-verdict",
        json={"filter": {"status": "open"}, "verdict": "legit"},
        headers=auth(t["analyst"]),
    )
    assert bulk.status_code == 409 and bulk.json()["tenant_status"] == "SUSPENDED"
    # Reads still work, and a leaked key can still be revoked.
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(t["admin"])).status_code == 200
    keys = client.get(f"/v1/tenants/{t['id']}/keys", headers=auth(t["admin"])).json()
    app_key = next(k["id"] for k in keys if k["scope"] == "app")
    assert client.delete(f"/v1/tenants/{t['id']}/keys/{app_key}", headers=auth(t["admin"])).status_code == 200

    assert client.post(f"/v1/tenants/{t['id']}/resume", headers=auth(admin_key)).status_code == 200
    assert client.put("/v1/scoring-config", json=config, headers=auth(t["admin"])).status_code == 200


def test_scope_is_checked_before_the_body(client: TestClient, tenant: dict[str, Any]) -> None:
    t = tenant
    pause = client.post(f"/v1/rollouts/ro_{'0' * 16}/pause", json={}, headers=auth(t["app"]))
    assert pause.status_code == 403, pause.text
    checked = 0
    for method, path in mutating_routes():
        allowed = {s.value for s in WRITE_SCOPES[(method, path)]}
        if not allowed:  # public: a person signing in or accepting an invitation has no key yet
            assert path.startswith("/v1/auth/"), f"{method} {path}: only sign-in routes may be public"
            continue
        for scope, key in KEY_OF_SCOPE.items():
            if scope in allowed:
                continue
            resp = client.request(method, _url(path, t["id"]), json={"bogus": [1]}, headers=auth(t[key]))
            assert resp.status_code == 403, (method, path, scope, resp.text)
            checked += 1
    assert checked >= 60
