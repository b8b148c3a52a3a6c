"""Routes that name an object (dataset, model, run, job, rollout, review): another tenant gets 404.

Every ``/v1`` route with a path parameter must appear here or in ``test_isolation.py``; a new
route without a row fails ``test_every_object_route_is_covered``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.app import create_app
from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.jobs.worker import Worker
from control_plane.orm_base import utcnow
from control_plane.review import service as review
from control_plane.review.contract import example_payload
from control_plane.training.orm import Retraining
from fraud_model.simulator import simulate
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import (  # noqa: F401  (shared fixtures)
    register_model,
    sim_frame,
    trained_artifact,
)
from tests.control_plane.test_isolation import PLATFORM_ONLY, ROUTES

# (method, path template, body, a scope of the owning tenant that must get 403)
OBJECT_ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/v1/datasets/{dataset_id}", None, "app"),
    ("GET", "/v1/models/{model_id}", None, "app"),
    ("POST", "/v1/models/{model_id}/approve", None, "sre"),
    ("POST", "/v1/models/{model_id}/archive", None, "analyst"),
    ("POST", "/v1/models/{model_id}/promote", None, "analyst"),
    ("POST", "/v1/models/{model_id}/restore", None, "sre"),
    ("GET", "/v1/training-runs/{run_id}", None, "app"),
    ("GET", "/v1/batch-scoring/{job_id}", None, "app"),
    ("GET", "/v1/batch-scoring/{job_id}/result", None, "analyst"),
    ("GET", "/v1/rollouts/{rollout_id}", None, "app"),
    ("POST", "/v1/rollouts/{rollout_id}/pause", None, "analyst"),
    ("POST", "/v1/rollouts/{rollout_id}/resume", None, "app"),
    ("POST", "/v1/rollouts/{rollout_id}/promote", None, "analyst"),
    ("POST", "/v1/rollouts/{rollout_id}/abort", None, "app"),
    ("POST", "/v1/rollouts/{rollout_id}/rollback", {"reason": "x"}, "analyst"),
    ("GET", "/v1/reviews/{review_id}", None, "app"),
    ("POST", "/v1/reviews/{review_id}/claim", None, "app"),
    ("POST", "/v1/reviews/{review_id}/verdict", {"verdict": "fraud", "note": "x"}, "app"),
    ("POST", "/v1/reviews/{review_id}/reopen", {"reason": "x"}, "app"),
    # Only a tenant-admin resolves an escalated item: an analyst of the owning tenant gets 403.
    ("POST", "/v1/reviews/{review_id}/resolve", {"verdict": "fraud", "note": "x"}, "analyst"),
    # Monitoring names its model version in the query: another tenant's version is a 404 too.
    ("GET", "/v1/monitoring/drift?model_version={model_id}&window=day", None, "analyst"),
    ("GET", "/v1/retraining/{retraining_id}", None, "app"),
    # Feature sets are named per tenant: another tenant's name is a 404 (its own PUT of the same
    # name makes its own set; tests/control_plane/training/test_feature_sets_api.py).
    ("GET", "/v1/feature-sets/{name}", None, "app"),
]
NOT_TENANT_OBJECTS = {
    "/console/reviews/{review_id}",
    "/console/reviews/{review_id}/claim",
    "/console/reviews/{review_id}/verdict",
    "/console/static/{name}",
    # Public: starts a sign-in with the named tenant's identity provider and returns no tenant data;
    # a person of another tenant is refused at the callback (tests/control_plane/users/test_oidc.py).
    "/v1/auth/oidc/{tenant}/start",
}


def test_every_object_route_is_covered() -> None:
    covered = (
        {p for _, p, _, _ in OBJECT_ROUTES} | {p for _, p, _, _ in ROUTES} | {p for _, p in PLATFORM_ONLY}
    )
    paths = {p for p in create_app().openapi()["paths"] if "{" in p}
    assert "/v1/rollouts/{rollout_id}" in paths, "the route listing found nothing: the check would be empty"
    missing = paths - covered - NOT_TENANT_OBJECTS
    assert not missing, f"add isolation rows for {sorted(missing)}"


@pytest.fixture
def owned(
    onboard: OnboardFn,
    client: TestClient,
    container: State,
    worker: Worker,
    trained_artifact: bytes,  # noqa: F811
) -> tuple[dict[str, Any], dict[str, Any]]:
    a = onboard("alpha-co", scopes=("app", "analyst", "sre"))
    b = onboard("beta-co", scopes=("app", "analyst", "sre"))
    stable = register_model(container, a["id"], trained_artifact)
    assert client.post(f"/v1/models/{stable}/promote", headers=auth(a["admin"])).status_code == 200
    a["model_id"] = register_model(container, a["id"], trained_artifact, stage="CANDIDATE")
    csv = simulate(30, 60, 20, seed=2).to_csv(index=False).encode()
    ds = client.post(
        "/v1/datasets",
        files={"file": ("d.csv", csv, "text/csv")},
        data={"name": "d"},
        headers=auth(a["admin"]),
    )
    assert ds.status_code == 201, ds.text
    a["dataset_id"] = ds.json()["id"]
    run = client.post("/v1/training-runs", json={"dataset_id": a["dataset_id"]}, headers=auth(a["admin"]))
    a["run_id"] = run.json()["id"]
    batch = client.post(
        "/v1/batch-scoring", files={"file": ("b.csv", csv, "text/csv")}, headers=auth(a["admin"])
    )
    a["job_id"] = batch.json()["job_id"]
    candidate = register_model(container, a["id"], trained_artifact)
    ro = client.post("/v1/rollouts", json={"candidate_version": candidate}, headers=auth(a["admin"]))
    assert ro.status_code == 201, ro.text
    a["rollout_id"] = ro.json()["id"]
    with container.factory() as session:
        item = review.ingest(session, a["id"], example_payload())
        session.commit()
        a["review_id"] = item.id
    with unit_of_work(container.factory) as session:
        session.add(
            Retraining(
                id="rt_alpha",
                tenant_id=a["id"],
                trigger="manual",
                trigger_evidence={},
                status="failed",
                champion_version=stable,
                cutoff=utcnow(),
                requested_by="test",
            )
        )
    a["retraining_id"] = "rt_alpha"
    minimal = {"features": [{"name": "amount", "kind": "passthrough", "attribute": "amount"}]}
    fs = client.put("/v1/feature-sets/alpha-set", json=minimal, headers=auth(a["admin"]))
    assert fs.status_code == 201, fs.text
    a["name"] = "alpha-set"
    return a, b


@pytest.mark.parametrize(("method", "path", "body", "wrong_scope"), OBJECT_ROUTES)
def test_other_tenant_gets_404_and_wrong_scope_403(
    client: TestClient,
    owned: tuple[dict[str, Any], dict[str, Any]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    wrong_scope: str,
) -> None:
    a, b = owned
    url = path.format(
        **{
            k: a[k]
            for k in (
                "dataset_id",
                "model_id",
                "run_id",
                "job_id",
                "rollout_id",
                "review_id",
                "retraining_id",
                "name",
            )
        }
    )
    statuses = []
    for intruder in ("admin", "app", "analyst", "sre"):
        resp = client.request(method, url, json=body, headers=auth(b[intruder]))
        statuses.append(resp.status_code)
        # A scope refusal (403) comes before any lookup and says nothing about the object.
        assert resp.status_code in (403, 404), (intruder, resp.status_code, resp.text)
    assert 404 in statuses, "the intruder whose scope fits the route must get 404"
    owner_scopes = {"tenant-admin": "admin", "sre": "sre", "analyst": "analyst", "app": "app"}
    wrong = client.request(
        method, url, json=body, headers=auth(a[owner_scopes.get(wrong_scope, wrong_scope)])
    )
    assert wrong.status_code == 403, wrong.text
    assert client.request(method, url, json=body).status_code == 401
