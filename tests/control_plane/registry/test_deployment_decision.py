"""One deployment decision for every way to production, and always a way back."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from providers.local.model_host import LocalModelHost
from tests.control_plane.conftest import auth
from tests.control_plane.rollouts.conftest import Clock, TrafficFn
from tests.control_plane.scoring.conftest import register_model, txn


def _host(container: State) -> LocalModelHost:
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    return host


def _stages(client: TestClient, t: dict[str, Any]) -> dict[str, str]:
    return {m["id"]: m["stage"] for m in client.get("/v1/models", headers=auth(t["admin"])).json()}


def _burn_error_budget(
    client: TestClient,
    t: dict[str, Any],
    container: State,
    worker: Worker,
    clock: Clock,
    traffic: TrafficFn,
) -> None:
    """Roll out a failing candidate until its canary is rolled back and the budget is spent."""
    container.scoring.checker.warm(t["id"], [t["model"], t["candidate"]])
    _host(container).inject_fault(t["id"], t["candidate"], error=True)
    ro = client.post(
        "/v1/rollouts",
        json={"candidate_version": t["candidate"], "steps": [5000, 10000], "bake_s": 5, "min_requests": 20},
        headers=auth(t["admin"]),
    )
    assert ro.status_code == 201, ro.text
    worker.drain()
    traffic(t, 60, "load")
    container.scoring.recorder.flush()
    clock.advance(6)
    worker.drain()
    got = client.get(f"/v1/rollouts/{ro.json()['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "ROLLED_BACK", got
    slo = client.get("/v1/slo", headers=auth(t["sre"])).json()
    assert slo["error_budget"]["frozen"] is True, slo


def test_direct_promote_cannot_bypass_a_frozen_error_budget(
    client: TestClient,
    canary_setup: dict[str, Any],
    container: State,
    worker: Worker,
    clock: Clock,
    traffic: TrafficFn,
) -> None:
    t = canary_setup
    _burn_error_budget(client, t, container, worker, clock, traffic)

    bypass = client.post(f"/v1/models/{t['candidate']}/promote", headers=auth(t["admin"]))
    assert bypass.status_code == 409, bypass.text
    body = bypass.json()
    assert bypass.headers["content-type"] == "application/problem+json"
    assert body["reason"] == "error_budget_frozen" and body["title"] == "Deployment refused"
    assert "error_budget_frozen" in {v["rule"] for v in body["violations"]}
    assert _stages(client, t) == {t["model"]: "PRODUCTION", t["candidate"]: "APPROVED"}
    # The rollout path refuses it with the same decision and the same answer.
    again = client.post("/v1/rollouts", json={"candidate_version": t["candidate"]}, headers=auth(t["admin"]))
    assert again.status_code == 409 and again.json()["reason"] == "error_budget_frozen"


def test_back_to_the_previous_production_version_in_one_call_even_when_frozen(
    client: TestClient, live_tenant: Any, container: State, trained_artifact: bytes
) -> None:
    t = live_tenant()
    first = t["model"]
    second = register_model(container, t["id"], trained_artifact)
    assert client.post(f"/v1/models/{second}/promote", headers=auth(t["admin"])).status_code == 200
    assert _stages(client, t) == {first: "ARCHIVED", second: "PRODUCTION"}
    # The new version fails every check: the error budget burns and freezes.
    container.scoring.checker.warm(t["id"], [second])
    _host(container).inject_fault(t["id"], second, error=True)
    for i in range(30):
        client.post("/v1/fraud-check", json=txn(f"bad_{i}", card_token=f"c{i}"), headers=auth(t["app"]))
    container.scoring.recorder.flush()
    assert client.get("/v1/slo", headers=auth(t["sre"])).json()["error_budget"]["frozen"] is True

    back = client.post(
        "/v1/models/rollback-production", json={"note": "second one is broken"}, headers=auth(t["admin"])
    )
    assert back.status_code == 200, back.text
    assert back.json()["production"]["id"] == first and back.json()["replaced"] == second
    assert _stages(client, t) == {first: "PRODUCTION", second: "ARCHIVED"}
    check = client.post("/v1/fraud-check", json=txn("after_rollback"), headers=auth(t["app"]))
    assert check.status_code == 200 and check.json()["model_version"] == first
    assert check.json()["degraded"] is False
    audit = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    actions = [(e["action"], e["subject"]) for e in (audit["items"] if isinstance(audit, dict) else audit)]
    assert ("model.production", first) in actions and ("model.archived", second) in actions

    # Restore: ARCHIVED → APPROVED (audited); anything else is a 409 naming the stage.
    restored = client.post(f"/v1/models/{second}/restore", json={"note": "fixed"}, headers=auth(t["admin"]))
    assert restored.status_code == 200 and restored.json()["stage"] == "APPROVED", restored.text
    twice = client.post(f"/v1/models/{second}/restore", headers=auth(t["admin"]))
    assert twice.status_code == 409 and "ARCHIVED" in twice.json()["detail"]
    assert client.post(f"/v1/models/{second}/restore", headers=auth(t["sre"])).status_code == 403


def test_rollback_needs_a_previous_version(client: TestClient, live_tenant: Any) -> None:
    t = live_tenant()
    none = client.post("/v1/models/rollback-production", headers=auth(t["admin"]))
    assert none.status_code == 409 and "no previous production version" in none.json()["detail"]
