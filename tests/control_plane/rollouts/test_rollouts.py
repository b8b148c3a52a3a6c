"""Rollouts: policy gate, a canary that promotes itself, manual controls, deterministic cohorts."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

import traffic
from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from tests.control_plane.conftest import auth
from tests.control_plane.rollouts.conftest import Clock, TrafficFn
from tests.control_plane.scoring.conftest import register_model


def start(client: TestClient, t: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "candidate_version": t["candidate"],
        "strategy": "canary",
        "steps": [5000, 10000],
        "bake_s": 5,
        "min_requests": 20,
        **overrides,
    }
    resp = client.post("/v1/rollouts", json=body, headers=auth(t["admin"]))
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def test_canary_promotes_itself_step_by_step(
    client: TestClient,
    canary_setup: dict[str, Any],
    worker: Worker,
    container: State,
    clock: Clock,
    traffic: TrafficFn,
) -> None:
    t = canary_setup
    ro = start(client, t)
    assert ro["state"] == "PROGRESSING" and ro["weights"] == {t["model"]: 5000, t["candidate"]: 5000}
    worker.drain()
    assert container.providers.model_host.weights(t["id"]) == {t["model"]: 5000, t["candidate"]: 5000}

    assert set(traffic(t, 120, "a")) == {200}
    container.scoring.recorder.flush()
    clock.advance(6)
    worker.drain()
    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["analyses"][0]["outcome"] == "Successful", json.dumps(got["analyses"])
    assert got["weight_bp"] == 10000 and got["step_index"] == 1

    assert set(traffic(t, 60, "b")) == {200}
    container.scoring.recorder.flush()
    clock.advance(6)
    worker.drain()
    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "PROMOTED", json.dumps(got["analyses"])
    models = {m["id"]: m["stage"] for m in client.get("/v1/models", headers=auth(t["admin"])).json()}
    assert models[t["candidate"]] == "PRODUCTION" and models[t["model"]] == "ARCHIVED"
    checks = {c["metric"] for c in got["analyses"][-1]["checks"]}
    assert {"error_burn_rate", "latency_p95_ms", "score_psi", "flag_rate_difference"} <= checks
    after = client.post(
        "/v1/fraud-check",
        json={
            "txn_id": "after",
            "card_token": "c",
            "terminal_id": "t",
            "timestamp": "2026-11-20T10:00:00+00:00",
            "amount": "5.00",
            "currency": "USD",
        },
        headers=auth(t["app"]),
    ).json()
    assert after["model_version"] == t["candidate"]
    actions = [
        e["action"]
        for e in client.get(
            f"/v1/tenants/{t['id']}/audit", params={"limit": 1000}, headers=auth(t["admin"])
        ).json()
    ]
    assert {"rollout.started", "rollout.analysis", "rollout.step", "rollout.promoted"} <= set(actions)


def test_cohorts_are_deterministic_and_only_grow(
    client: TestClient, canary_setup: dict[str, Any], container: State, worker: Worker
) -> None:
    t = canary_setup
    start(client, t, steps=[1000, 5000, 10000])
    worker.drain()
    checker = container.scoring.checker
    tenant = container.scoring.serving.reload(t["id"])
    assert tenant is not None
    cards = [f"card_{i}" for i in range(2000)]
    at_10 = {card for card in cards if checker.route(tenant, card)[1] == "canary"}
    assert 120 < len(at_10) < 280
    assert at_10 == {card for card in cards if checker.route(tenant, card)[1] == "canary"}
    traffic.set_weights(container.providers.model_host, t["id"], {t["model"]: 5000, t["candidate"]: 5000})
    at_50 = {card for card in cards if checker.route(tenant, card)[1] == "canary"}
    assert at_10 < at_50 and 850 < len(at_50) < 1150


def test_deployment_policy_and_conflicts(
    client: TestClient, canary_setup: dict[str, Any], container: State, trained_artifact: bytes
) -> None:
    t = canary_setup
    candidate = register_model(container, t["id"], trained_artifact, stage="CANDIDATE")
    denied = client.post(
        "/v1/rollouts", json={"candidate_version": candidate, "bake_s": 5}, headers=auth(t["admin"])
    )
    assert denied.status_code == 409
    assert any("APPROVED" in v["message"] for v in denied.json()["violations"])
    bad_steps = client.post(
        "/v1/rollouts",
        json={"candidate_version": t["candidate"], "steps": [5000, 2000]},
        headers=auth(t["admin"]),
    )
    assert bad_steps.status_code == 422 and bad_steps.json()["field"] == "steps"
    start(client, t)
    again = client.post("/v1/rollouts", json={"candidate_version": t["candidate"]}, headers=auth(t["admin"]))
    assert again.status_code == 409
    in_use = client.post(f"/v1/models/{t['candidate']}/archive", headers=auth(t["admin"]))
    assert in_use.status_code == 409 and "candidate of rollout" in in_use.json()["detail"]
    assert (
        client.post(
            "/v1/rollouts", json={"candidate_version": t["candidate"]}, headers=auth(t["analyst"])
        ).status_code
        == 403
    )


def test_pause_resume_abort(
    client: TestClient, canary_setup: dict[str, Any], container: State, worker: Worker
) -> None:
    t = canary_setup
    ro = start(client, t)
    worker.drain()
    base = f"/v1/rollouts/{ro['id']}"
    assert client.post(f"{base}/pause", headers=auth(t["sre"])).json()["state"] == "PAUSED"
    assert client.post(f"{base}/pause", headers=auth(t["sre"])).status_code == 409
    assert client.post(f"{base}/resume", headers=auth(t["sre"])).json()["state"] == "PROGRESSING"
    aborted = client.post(f"{base}/abort", json={"reason": "wrong candidate"}, headers=auth(t["sre"])).json()
    assert aborted["state"] == "ABORTED" and aborted["status_reason"] == "wrong candidate"
    assert container.providers.model_host.weights(t["id"]) == {t["model"]: 10000, t["candidate"]: 0}
    assert client.post(f"{base}/resume", headers=auth(t["sre"])).status_code == 409
    models = {m["id"]: m["stage"] for m in client.get("/v1/models", headers=auth(t["admin"])).json()}
    assert models[t["candidate"]] == "APPROVED" and models[t["model"]] == "PRODUCTION"


def test_manual_promote_skips_remaining_steps(
    client: TestClient, canary_setup: dict[str, Any], container: State
) -> None:
    t = canary_setup
    ro = start(client, t)
    promoted = client.post(f"/v1/rollouts/{ro['id']}/promote", headers=auth(t["admin"])).json()
    assert promoted["state"] == "PROMOTED"
    assert container.providers.model_host.weights(t["id"]) == {t["candidate"]: 10000}
