"""Every tenant-scoped route: another tenant's key gets 404, a wrong-scope key 403.

The route table below must cover every route whose path names a tenant; a new route without a
row here fails ``test_every_tenant_route_is_covered``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.app import create_app
from tests.control_plane.conftest import OnboardFn, auth

# (method, path template, body, a scope that is wrong for the route)
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/v1/tenants/{tenant_id}", None, "app"),
    ("GET", "/v1/tenants/{tenant_id}/keys", None, "analyst"),
    ("POST", "/v1/tenants/{tenant_id}/keys", {"scope": "app", "name": "x"}, "app"),
    ("POST", "/v1/tenants/{tenant_id}/keys/{key_id}/rotate", None, "sre"),
    ("PATCH", "/v1/tenants/{tenant_id}/contacts", {"email": "x@example.com"}, "sre"),
    ("DELETE", "/v1/tenants/{tenant_id}/keys/{key_id}", None, "analyst"),
    ("GET", "/v1/tenants/{tenant_id}/audit", None, "app"),
    ("GET", "/v1/jobs/{job_id}", None, "app"),
    ("GET", "/v1/tenants/{tenant_id}/budget", None, "analyst"),
    ("GET", "/v1/tenants/{tenant_id}/users", None, "sre"),
    (
        "POST",
        "/v1/tenants/{tenant_id}/users",
        {"email": "x@ex.example", "name": "X", "role": "sre"},
        "analyst",
    ),
    ("POST", "/v1/tenants/{tenant_id}/users/{user_id}/invitation", None, "sre"),
    ("PATCH", "/v1/tenants/{tenant_id}/users/{user_id}", {"role": "sre"}, "app"),
    ("DELETE", "/v1/tenants/{tenant_id}/users/{user_id}", None, "analyst"),
    ("GET", "/v1/tenants/{tenant_id}/oidc", None, "analyst"),
    (
        "PUT",
        "/v1/tenants/{tenant_id}/oidc",
        {"issuer": "https://idp.example", "client_id": "x", "client_secret": "s"},
        "sre",
    ),
    ("DELETE", "/v1/tenants/{tenant_id}/oidc", None, "app"),
]
PLATFORM_ONLY = {
    ("POST", "/v1/tenants/{tenant_id}/suspend"),
    ("POST", "/v1/tenants/{tenant_id}/resume"),
    ("POST", "/v1/tenants/{tenant_id}/retry"),
    ("DELETE", "/v1/tenants/{tenant_id}"),
    ("GET", "/v1/tenants/{tenant_id}/deletion-report"),
    ("PUT", "/v1/tenants/{tenant_id}/budget"),
}


def test_every_tenant_route_is_covered() -> None:
    covered = {(m, p) for m, p, _, _ in ROUTES} | PLATFORM_ONLY
    scoped = {
        (method.upper(), path)
        for path, ops in create_app().openapi()["paths"].items()
        if "{tenant_id}" in path or path.startswith("/v1/jobs/")
        for method in ops
    }
    assert len(scoped) >= len(PLATFORM_ONLY), "the route listing found nothing: the check would be empty"
    assert scoped <= covered, f"add isolation rows for {sorted(scoped - covered)}"


@pytest.fixture
def two_tenants(onboard: OnboardFn, client: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
    a = onboard("alpha-co", scopes=("app", "analyst", "sre"))
    b = onboard("beta-co", scopes=("app", "analyst", "sre"))
    keys = client.get(f"/v1/tenants/{a['id']}/keys", headers=auth(a["admin"])).json()
    a["key_id"] = next(k["id"] for k in keys if k["scope"] == "app")
    invited = client.post(
        f"/v1/tenants/{a['id']}/users",
        json={"email": "someone@alpha.example", "name": "Someone", "role": "analyst"},
        headers=auth(a["admin"]),
    )
    a["user_id"] = invited.json()["id"]
    return a, b


def _fill(path: str, tenant: dict[str, Any]) -> str:
    ids = {"key_id": tenant["key_id"], "job_id": tenant["job_id"], "user_id": tenant.get("user_id")}
    return path.format(tenant_id=tenant["id"], **ids)


@pytest.mark.parametrize(("method", "path", "body", "wrong_scope"), ROUTES)
def test_other_tenant_gets_404_and_wrong_scope_403(
    client: TestClient,
    two_tenants: tuple[dict[str, Any], dict[str, Any]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    wrong_scope: str,
) -> None:
    a, b = two_tenants
    url = _fill(path, a)
    for intruder in ("admin", "app", "analyst", "sre"):
        resp = client.request(method, url, json=body, headers=auth(b[intruder]))
        assert resp.status_code == 404, (intruder, resp.text)
    wrong = client.request(method, url, json=body, headers=auth(a[wrong_scope]))
    assert wrong.status_code == 403, wrong.text
    assert client.request(method, url, json=body).status_code == 401


@pytest.mark.parametrize(("method", "path"), sorted(PLATFORM_ONLY))
def test_platform_routes_refuse_tenant_keys(
    client: TestClient, two_tenants: tuple[dict[str, Any], dict[str, Any]], method: str, path: str
) -> None:
    a, b = two_tenants
    url = _fill(path, a)
    body = {"reason": "admin"} if path.endswith("suspend") else None
    for token in (a["admin"], b["admin"], a["sre"]):
        assert client.request(method, url, json=body, headers=auth(token)).status_code == 403
