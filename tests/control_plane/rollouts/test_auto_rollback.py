"""A canary that errors or is slow under steady load rolls itself back; Slack and Teams hear about it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.jobs.worker import Worker
from control_plane.tenants.orm import Tenant
from providers.local.model_host import LocalModelHost
from tests.control_plane.conftest import auth
from tests.control_plane.rollouts.conftest import Clock, TrafficFn
from tests.webhook_sink import WebhookSink


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


def point_contacts_at(container: State, tenant_id: str, sink: WebhookSink) -> None:
    with unit_of_work(container.factory) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.contacts = {"slack_webhook_url": sink.url("/slack"), "teams_webhook_url": sink.url("/teams")}


@pytest.mark.parametrize("fault", ["errors", "slow"])
def test_bad_canary_rolls_back_without_failing_requests(
    client: TestClient,
    canary_setup: dict[str, Any],
    worker: Worker,
    container: State,
    clock: Clock,
    traffic: TrafficFn,
    sink: WebhookSink,
    fault: str,
) -> None:
    t = canary_setup
    point_contacts_at(container, t["id"], sink)
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    if fault == "errors":
        host.inject_fault(t["id"], t["candidate"], error=True)
    else:
        host.inject_fault(t["id"], t["candidate"], delay_ms=250)
    ro = client.post(
        "/v1/rollouts",
        json={"candidate_version": t["candidate"], "steps": [5000, 10000], "bake_s": 5, "min_requests": 20},
        headers=auth(t["admin"]),
    ).json()
    worker.drain()

    codes = traffic(t, 60, "load")
    container.scoring.recorder.flush()
    clock.advance(6)
    worker.drain()
    codes += traffic(t, 30, "after")

    assert set(codes) == {200}, "no request may fail, before or during the weight change"
    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "ROLLED_BACK", got
    assert host.weights(t["id"]) == {t["model"]: 10000, t["candidate"]: 0}
    failed = [c for c in got["analyses"][-1]["checks"] if not c["passed"]]
    expected = "error_burn_rate" if fault == "errors" else "latency_p95_ms"
    assert expected in {c["metric"] for c in failed}, failed
    after = [
        client.post(
            "/v1/fraud-check",
            json={
                "txn_id": f"post_{i}",
                "card_token": f"card_post_{i}",
                "terminal_id": "t",
                "timestamp": "2026-11-20T10:00:00+00:00",
                "amount": "5.00",
                "currency": "USD",
            },
            headers=auth(t["app"]),
        ).json()["model_version"]
        for i in range(20)
    ]
    assert set(after) == {t["model"]}

    slack = sink.wait_for(1, path="/slack")[0].json
    teams = sink.wait_for(1, path="/teams")[0].json
    assert expected in str(slack) and expected in str(teams)
    assert t["candidate"] in str(slack) and ro["id"] in str(teams)
    log = container.providers.rollback_log.list(t["id"])
    assert len(log) == 1 and log[0].evidence["rollout_id"] == ro["id"]
    actions = [
        e["action"]
        for e in client.get(
            f"/v1/tenants/{t['id']}/audit", params={"limit": 1000}, headers=auth(t["admin"])
        ).json()
    ]
    assert {"rollout.rolling_back", "rollout.rolled_back", "rollout.notified"} <= set(actions)
    metrics = container.providers.metrics.render_prometheus()
    reason = log[0].evidence["metric"]
    assert f'fraudrail_rollbacks_total{{reason="{reason}",tenant="{t["id"]}"}} 1.0' in metrics
    assert f'fraudrail_canary_weight{{tenant="{t["id"]}"}} 0.0' in metrics


def test_emergency_rollback_skips_analysis(
    client: TestClient, canary_setup: dict[str, Any], worker: Worker, container: State, sink: WebhookSink
) -> None:
    t = canary_setup
    point_contacts_at(container, t["id"], sink)
    ro = client.post(
        "/v1/rollouts",
        json={"candidate_version": t["candidate"], "steps": [5000, 10000]},
        headers=auth(t["admin"]),
    ).json()
    worker.drain()
    resp = client.post(
        f"/v1/rollouts/{ro['id']}/rollback",
        json={"reason": "fraud spike reported by ops"},
        headers=auth(t["sre"]),
    )
    assert resp.status_code == 200 and resp.json()["state"] == "ROLLED_BACK"
    stable = {t["model"]: 10000, t["candidate"]: 0}
    assert resp.json()["weights_read_back"] == stable == container.providers.model_host.weights(t["id"])
    assert sink.requests() == []  # Slack / Teams are a queued job, never part of the request
    worker.drain()
    assert "fraud spike" in str(sink.wait_for(1, path="/slack")[0].json)
    again = client.post(f"/v1/rollouts/{ro['id']}/rollback", json={"reason": "x"}, headers=auth(t["sre"]))
    assert again.status_code == 409 and again.json()["field"] == "state"
    assert [r.rollback_id for r in container.providers.rollback_log.list(t["id"])] == [f"rb_{ro['id']}"]


def test_burning_canary_is_caught_before_its_bake_time_ends(
    client: TestClient,
    canary_setup: dict[str, Any],
    worker: Worker,
    container: State,
    clock: Clock,
    traffic: TrafficFn,
) -> None:
    t = canary_setup
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    host.inject_fault(t["id"], t["candidate"], error=True)
    ro = client.post(
        "/v1/rollouts",
        json={
            "candidate_version": t["candidate"],
            "steps": [5000, 10000],
            "bake_s": 600,
            "min_requests": 500,
        },
        headers=auth(t["admin"]),
    ).json()
    worker.drain()
    assert set(traffic(t, 80, "burn")) == {200}
    container.scoring.recorder.flush()
    clock.advance(5)  # far inside the 600 s bake: only the scaled page rule can act this early
    worker.drain()
    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "ROLLED_BACK", got
    assert got["analyses"][-1]["checks"][0]["metric"].startswith("burn_rate_")
