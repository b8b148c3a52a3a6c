"""Argo's abort: an alarm only records it; the reconcile moves the traffic, verifies it, finishes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from providers.local.model_host import LocalModelHost
from providers.ports import ProviderError
from tests.control_plane.conftest import auth
from tests.control_plane.rollouts.conftest import Clock
from tests.control_plane.rollouts.test_auto_rollback import point_contacts_at
from tests.webhook_sink import Reply, WebhookSink


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


def started(client: TestClient, worker: Worker, t: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(
        "/v1/rollouts",
        json={"candidate_version": t["candidate"], "steps": [5000, 10000], "bake_s": 600},
        headers=auth(t["admin"]),
    )
    assert resp.status_code == 201, resp.text
    worker.drain()
    body: dict[str, Any] = resp.json()
    return body


def alarm_for(t: dict[str, Any], ro: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "rollout.alarm",
        "tenant_id": t["id"],
        "rollout_id": ro["id"],
        "stable_version": t["model"],
        "canary_version": t["candidate"],
        "reason": "canary 5xx over its SLO (CloudWatch alarm)",
        "evidence": {"metric": "error_burn_rate", "threshold": 14.4, "observed": 40.0},
    }


def audit_actions(client: TestClient, t: dict[str, Any]) -> list[str]:
    events = client.get(f"/v1/tenants/{t['id']}/audit", params={"limit": 1000}, headers=auth(t["admin"]))
    return [e["action"] for e in events.json()]


def test_an_alarm_records_the_abort_once_and_the_reconcile_rolls_back(
    client: TestClient, canary_setup: dict[str, Any], worker: Worker, container: State
) -> None:
    t = canary_setup
    ro = started(client, worker, t)
    bus, host = container.providers.event_bus, container.providers.model_host
    bus.publish("rollout.alarm", alarm_for(t, ro))
    bus.publish("rollout.alarm", alarm_for(t, ro))  # delivered twice (SNS is at least once)
    bus.publish("rollout.alarm", {"type": "rollout.alarm", "tenant_id": t["id"]})  # malformed: dropped

    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "ROLLING_BACK" and got["weights"] == {t["model"]: 10000, t["candidate"]: 0}
    assert host.weights(t["id"]) == {t["model"]: 5000, t["candidate"]: 5000}  # the receiver moved nothing
    assert audit_actions(client, t).count("rollout.rolling_back") == 1
    assert container.providers.rollback_log.list(t["id"]) == []

    worker.drain()
    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "ROLLED_BACK" and got["status_reason"] == alarm_for(t, ro)["reason"]
    assert host.weights(t["id"]) == {t["model"]: 10000, t["candidate"]: 0}
    [record] = container.providers.rollback_log.list(t["id"])
    assert record.evidence["metric"] == "error_burn_rate" and record.evidence["source"] == "alarm"
    bus.publish("rollout.alarm", alarm_for(t, ro))  # a late redelivery changes nothing
    assert audit_actions(client, t).count("rollout.rolled_back") == 1


def test_a_rollback_the_lambda_already_did_is_finished_by_the_next_reconcile(
    client: TestClient, canary_setup: dict[str, Any], worker: Worker, container: State, clock: Clock
) -> None:
    from traffic import AlarmDeps, handle_alarm

    t = canary_setup
    ro = started(client, worker, t)
    p = container.providers
    handle_alarm(alarm_for(t, ro), AlarmDeps(p.model_host, p.rollback_log))  # what the Lambda runs
    clock.advance(120)  # the next analysis tick
    worker.drain()
    got = client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()
    assert got["state"] == "ROLLED_BACK"
    assert len(p.rollback_log.list(t["id"])) == 1


def test_a_failed_weight_change_answers_503_and_the_worker_retries_it(
    client: TestClient,
    canary_setup: dict[str, Any],
    worker: Worker,
    container: State,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = canary_setup
    ro = started(client, worker, t)
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)

    def refuse(tenant_id: str, weights: Mapping[str, int]) -> None:
        raise ProviderError("endpoint fraudrail-x is Updating")

    monkeypatch.setattr(host, "set_weights", refuse)
    resp = client.post(f"/v1/rollouts/{ro['id']}/rollback", json={"reason": "ops"}, headers=auth(t["sre"]))
    assert resp.status_code == 503, resp.text
    problem = resp.json()
    assert problem["field"] == "weights" and problem["state"] == "ROLLING_BACK"
    assert "endpoint fraudrail-x is Updating" in problem["detail"]
    assert client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()["state"] == "ROLLING_BACK"

    worker.drain()  # the queued reconcile fails the same way and is retried later
    assert host.weights(t["id"]) == {t["model"]: 5000, t["candidate"]: 5000}
    monkeypatch.undo()
    clock.advance(600)
    worker.drain()
    assert client.get(f"/v1/rollouts/{ro['id']}", headers=auth(t["sre"])).json()["state"] == "ROLLED_BACK"
    assert host.weights(t["id"]) == {t["model"]: 10000, t["candidate"]: 0}


def test_the_notice_job_retries_only_the_channel_that_failed(
    client: TestClient,
    canary_setup: dict[str, Any],
    worker: Worker,
    container: State,
    clock: Clock,
    sink: WebhookSink,
) -> None:
    t = canary_setup
    point_contacts_at(container, t["id"], sink)
    sink.script("/slack", Reply(404, "channel_not_found"))  # a client error: not retried inside send
    ro = started(client, worker, t)
    rolled = client.post(f"/v1/rollouts/{ro['id']}/rollback", json={"reason": "ops"}, headers=auth(t["sre"]))
    assert rolled.status_code == 200, rolled.text
    worker.drain()
    assert len(sink.requests("/slack")) == 1 and len(sink.requests("/teams")) == 1
    clock.advance(600)  # past the job's retry backoff
    worker.drain()
    assert len(sink.wait_for(2, path="/slack")) == 2  # retried: delivered now
    assert len(sink.requests("/teams")) == 1  # already delivered: not posted twice
    assert audit_actions(client, t).count("rollout.notified") == 2


def test_pause_resume_and_promote_answer_the_weights_read_back(
    client: TestClient, canary_setup: dict[str, Any], worker: Worker
) -> None:
    t = canary_setup
    ro = started(client, worker, t)
    base = f"/v1/rollouts/{ro['id']}"
    paused = client.post(f"{base}/pause", headers=auth(t["sre"])).json()
    assert paused["weights_read_back"] == {t["model"]: 5000, t["candidate"]: 5000}
    promoted = client.post(f"{base}/promote", headers=auth(t["admin"])).json()
    assert promoted["state"] == "PROMOTED" and promoted["weights_read_back"] == {t["candidate"]: 10000}


def test_a_direct_promotion_moves_the_traffic_through_the_reconcile(
    client: TestClient, canary_setup: dict[str, Any], worker: Worker, container: State
) -> None:
    from traffic import served, set_weights

    t = canary_setup
    host = container.providers.model_host
    worker.drain()
    set_weights(host, t["id"], {t["model"]: 10000})
    resp = client.post(f"/v1/models/{t['candidate']}/promote", headers=auth(t["admin"]))
    assert resp.status_code == 200, resp.text
    assert served(host.weights(t["id"])) == {t["model"]: 10000}  # the route and the cache wrote nothing
    worker.drain()  # the reconcile queued when serving.changed found the host disagreeing
    assert served(host.weights(t["id"])) == {t["candidate"]: 10000}
