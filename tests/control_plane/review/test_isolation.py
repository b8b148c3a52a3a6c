"""Every review route: another tenant's key gets 404, a wrong-scope key 403, no key 401.

The central ROUTES table (tests/control_plane/test_isolation.py) fills only ``{tenant_id}``,
``{key_id}`` and ``{job_id}``; review routes name the tenant through the key and the item through
``{review_id}``, so their rows live here, with a real item of tenant A behind each one.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.app import create_app
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.review.conftest import IngestFn, flagged

# (method, path, body, a scope of the same tenant that is wrong for the route)
ITEM_ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/v1/reviews/{review_id}", None, "app"),
    ("POST", "/v1/reviews/{review_id}/claim", None, "tenant-admin"),
    ("POST", "/v1/reviews/{review_id}/verdict", {"verdict": "fraud"}, "sre"),
    ("POST", "/v1/reviews/{review_id}/reopen", {"reason": "x"}, "analyst"),
    ("POST", "/v1/reviews/{review_id}/resolve", {"verdict": "fraud"}, "analyst"),
]
TENANT_ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/v1/reviews", None, "sre"),
    ("POST", "/v1/reviews/bulk-verdict", {"filter": {"card_token": "card_1"}, "verdict": "legit"}, "app"),
    ("POST", "/v1/reviews/bulk-claim", {"filter": {"card_token": "card_1"}}, "sre"),
]
KEY_OF_SCOPE = {"tenant-admin": "admin", "app": "app", "analyst": "analyst", "sre": "sre"}
ROUTE_SCOPES = {
    ("GET", "/v1/reviews/{review_id}"): {"analyst", "tenant-admin"},
    ("POST", "/v1/reviews/{review_id}/claim"): {"analyst"},
    ("POST", "/v1/reviews/{review_id}/verdict"): {"analyst", "tenant-admin"},
    ("POST", "/v1/reviews/{review_id}/reopen"): {"tenant-admin"},
    ("POST", "/v1/reviews/{review_id}/resolve"): {"tenant-admin"},
}


def test_every_review_route_is_covered() -> None:
    # From the OpenAPI document: FastAPI >= 0.13x keeps included routers wrapped in app.routes.
    covered = {(m, p) for m, p, _, _ in ITEM_ROUTES + TENANT_ROUTES}
    paths = create_app().openapi()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1/reviews") for m in ops}
    assert routes == covered, f"add isolation rows for {sorted(routes - covered)}"


@pytest.fixture
def two_tenants(onboard: OnboardFn, ingest: IngestFn) -> tuple[dict[str, Any], dict[str, Any]]:
    a = onboard("alpha-co", scopes=("app", "analyst", "sre"))
    b = onboard("beta-co", scopes=("app", "analyst", "sre"))
    (a["review_id"],) = ingest(a["id"], flagged(1))
    return a, b


@pytest.mark.parametrize(("method", "path", "body", "wrong_scope"), ITEM_ROUTES)
def test_another_tenants_item_is_404_and_a_wrong_scope_403(
    client: TestClient,
    two_tenants: tuple[dict[str, Any], dict[str, Any]],
    admin_key: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    wrong_scope: str,
) -> None:
    a, b = two_tenants
    url = path.format(review_id=a["review_id"])
    statuses = []
    for intruder in ("admin", "app", "analyst", "sre"):
        resp = client.request(method, url, json=body, headers=auth(b[intruder]))
        statuses.append(resp.status_code)
        # A write's scope refusal (403, auth.write_guard) comes before any lookup: it says nothing.
        assert resp.status_code in ((403, 404) if method != "GET" else (404,)), (intruder, resp.text)
    assert 404 in statuses, "the intruder whose scope fits the route must get 404"
    wrong = client.request(method, url, json=body, headers=auth(a[KEY_OF_SCOPE[wrong_scope]]))
    assert wrong.status_code == 403, wrong.text
    assert client.request(method, url, json=body).status_code == 401
    # A platform admin has no tenant to act for.
    assert client.request(method, url, json=body, headers=auth(admin_key)).status_code == 403
    allowed = ROUTE_SCOPES[(method, path)]
    fitting = next(k for s, k in KEY_OF_SCOPE.items() if s != wrong_scope and s in allowed)
    unknown = client.request(method, path.format(review_id="rev_nope"), json=body, headers=auth(a[fitting]))
    assert unknown.status_code == 404


@pytest.mark.parametrize(("method", "path", "body", "wrong_scope"), TENANT_ROUTES)
def test_tenant_wide_routes_only_see_the_callers_tenant(
    client: TestClient,
    two_tenants: tuple[dict[str, Any], dict[str, Any]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    wrong_scope: str,
) -> None:
    a, b = two_tenants
    resp = client.request(method, path, json=body, headers=auth(b["analyst"]))
    assert resp.status_code == 200, resp.text
    assert resp.json().get("items", resp.json().get("ids")) == []  # tenant A's item stays invisible
    mine = client.get(f"/v1/reviews/{a['review_id']}", headers=auth(a["analyst"])).json()
    assert mine["status"] == "open"
    assert (
        client.request(method, path, json=body, headers=auth(a[KEY_OF_SCOPE[wrong_scope]])).status_code == 403
    )
    assert client.request(method, path, json=body).status_code == 401
