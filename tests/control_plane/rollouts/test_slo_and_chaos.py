"""The SRE view of SLOs and error budgets, and game-day fault injection's guard rails."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from providers.local.model_host import LocalModelHost
from tests.control_plane.conftest import auth
from tests.control_plane.rollouts.conftest import Clock, TrafficFn


def test_slo_reports_budget_and_burn_rates(
    client: TestClient, canary_setup: dict[str, Any], clock: Clock, traffic: TrafficFn, container: State
) -> None:
    t = canary_setup
    # Load the model first: on a busy machine the first check's load can exceed the latency SLO.
    container.scoring.checker.warm(t["id"], [t["model"]])
    traffic(t, 30, "ok")
    body = client.get("/v1/slo", headers=auth(t["sre"])).json()
    assert body["objectives"]["availability"] == 0.999
    assert body["error_budget"]["requests"] == 30 and body["error_budget"]["bad_requests"] == 0
    assert body["error_budget"]["frozen"] is False and body["alerts"] == []
    assert set(body["burn_rates"]) == {"300s", "1800s", "3600s", "21600s", "259200s"}

    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    host.inject_fault(t["id"], t["model"], error=True)
    codes = traffic(t, 30, "down")
    assert set(codes) == {200}  # answered from the rules (degraded), yet each one burns the budget
    body = client.get("/v1/slo", headers=auth(t["sre"])).json()
    assert body["error_budget"]["bad_requests"] == 30 and body["error_budget"]["frozen"] is True
    assert {a["severity"] for a in body["alerts"]} == {"page", "ticket"}
    frozen = client.post("/v1/rollouts", json={"candidate_version": t["candidate"]}, headers=auth(t["admin"]))
    assert frozen.status_code == 409 and any("error" in v["message"] for v in frozen.json()["violations"])
    emergency = client.post(
        "/v1/rollouts",
        json={"candidate_version": t["candidate"], "emergency": True},
        headers=auth(t["admin"]),
    )
    assert emergency.status_code == 201, emergency.text
    assert client.get("/v1/slo", headers=auth(t["app"])).status_code == 403


def test_fault_injection_is_development_only(
    client: TestClient, canary_setup: dict[str, Any], admin_key: str, container: State
) -> None:
    t = canary_setup
    body = {"tenant_id": t["id"], "version_id": t["candidate"], "error": True}
    assert client.post("/v1/chaos/model-faults", json=body, headers=auth(admin_key)).status_code == 403
    container.settings.env = "development"
    assert client.post("/v1/chaos/model-faults", json=body, headers=auth(t["admin"])).status_code == 403
    assert client.post("/v1/chaos/model-faults", json=body, headers=auth(admin_key)).status_code == 204
    assert client.delete("/v1/chaos/model-faults", headers=auth(admin_key)).status_code == 204
