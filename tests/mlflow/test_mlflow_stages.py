"""Registry stages mirrored to a real MLflow server as aliases and tags, queued by the stage change
itself; an unreachable MLflow never fails the stage change, the sync is retried and shown on the run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from sqlalchemy import select

from control_plane.bootstrap.state import State
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import Worker
from control_plane.orm_base import utcnow
from control_plane.registry import service as registry
from control_plane.registry.stages import Stage
from control_plane.training.tracking import MLFLOW_SYNC_JOB, StageMirror, subscribe_stage_mirror
from providers.local.event_bus import InProcessEventBus
from providers.mlflow_tracking import NullExperimentTracker, name_for
from tests.control_plane.conftest import OnboardFn, auth
from tests.mlflow.test_mlflow_tracking import (  # noqa: F401  (fixtures reused)
    dataset_csv,
    settings,
    small_data_gate,
    train,
)
from tests.tcp_cut import TcpCut


@pytest.fixture
def tracking_uri(mlflow_proxy: TcpCut) -> str:
    """The control plane reaches MLflow through a proxy the test can cut."""
    return mlflow_proxy.url("http")


def sync_jobs(container: State, tenant_id: str, version: str) -> list[Job]:
    with container.factory() as session:
        jobs = session.scalars(
            select(Job)
            .where(Job.tenant_id == tenant_id, Job.kind == MLFLOW_SYNC_JOB)
            .order_by(Job.created_at)
        ).all()
        return [j for j in jobs if j.payload["model_version"] == version]


def run_syncs(worker: Worker, jobs: list[Job]) -> None:
    for job in jobs:
        assert worker.run_once(job_id=job.id) == job.id


def later(worker: Worker, seconds: float) -> None:
    """Let the queue's backoff pass without sleeping: the worker's clock moves on."""
    worker.clock = lambda: utcnow() + timedelta(seconds=seconds)


def run_view(client: TestClient, t: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    got = client.get(f"/v1/training-runs/{run['id']}", headers=auth(t["admin"]))
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_stage_changes_queue_their_mirror_and_survive_an_unreachable_mlflow(
    client: TestClient,
    onboard: OnboardFn,
    worker: Worker,
    container: State,
    dataset_csv: bytes,  # noqa: F811
    mlflow_server: str,
    mlflow_proxy: TcpCut,
) -> None:
    t = onboard("acme-pay", tier="trial")
    first = train(client, worker, t, dataset_csv)
    v1 = first["result"]["model_version"]
    assert first["result"]["mlflow"]["status"] == "logged"
    assert run_view(client, t, first)["mlflow_sync"] is None  # logged at once: no sync needed
    mc = MlflowClient(tracking_uri=mlflow_server)
    name = name_for(t["id"])
    assert mc.get_model_version_by_alias(name, "challenger").tags["fraudrail.model_version"] == v1

    # MLflow unreachable: approving and promoting still succeed, and one sync is queued for both.
    mlflow_proxy.cut()
    approved = client.post(f"/v1/models/{v1}/approve", json={"note": "ok"}, headers=auth(t["admin"]))
    assert approved.status_code == 200, approved.text
    promoted = client.post(f"/v1/models/{v1}/promote", headers=auth(t["admin"]))
    assert promoted.status_code == 200 and promoted.json()["stage"] == "PRODUCTION", promoted.text
    jobs = sync_jobs(container, t["id"], v1)
    assert [(j.status, j.payload["reason"]) for j in jobs] == [(queue.QUEUED, "stage APPROVED")]
    run_syncs(worker, jobs)  # fails: MLflow is down; the job stays queued with its error
    shown = run_view(client, t, first)["mlflow_sync"]
    assert shown["job_id"] == jobs[0].id and shown["status"] == queue.QUEUED and shown["attempts"] == 1
    assert "MLflow" in shown["last_error"], shown
    assert mc.get_model_version_by_alias(name, "challenger").tags["fraudrail.stage"] == "CANDIDATE"

    # MLflow back: the retry mirrors the stage the version has now.
    mlflow_proxy.restore()
    later(worker, 60)
    run_syncs(worker, jobs)
    shown = run_view(client, t, first)["mlflow_sync"]
    assert shown["status"] == queue.SUCCEEDED and shown["result"]["stage"] == "PRODUCTION", shown
    champion = mc.get_model_version_by_alias(name, "champion")
    assert champion.tags["fraudrail.model_version"] == v1 and champion.tags["fraudrail.stage"] == "PRODUCTION"
    assert "challenger" not in mc.get_registered_model(name).aliases

    # A second version replaces it: both changes are mirrored (the old one archived, no alias).
    second = train(client, worker, t, dataset_csv, seed=1)
    v2 = second["result"]["model_version"]
    assert mc.get_model_version_by_alias(name, "challenger").tags["fraudrail.model_version"] == v2
    client.post(f"/v1/models/{v2}/approve", json={"note": "ok"}, headers=auth(t["admin"]))
    assert client.post(f"/v1/models/{v2}/promote", headers=auth(t["admin"])).status_code == 200
    pending = [j for v in (v1, v2) for j in sync_jobs(container, t["id"], v) if j.status == queue.QUEUED]
    assert sorted(j.payload["reason"] for j in pending) == ["stage APPROVED", "stage ARCHIVED"]
    run_syncs(worker, pending)
    assert mc.get_registered_model(name).aliases == {
        "champion": mc.get_model_version_by_alias(name, "champion").version
    }
    assert mc.get_model_version_by_alias(name, "champion").tags["fraudrail.model_version"] == v2
    old = next(
        mv for mv in mc.search_model_versions(f"name = '{name}'") if mv.tags["fraudrail.model_version"] == v1
    )
    assert old.tags["fraudrail.stage"] == "ARCHIVED" and not old.aliases


def test_with_tracking_off_a_stage_change_queues_nothing(container: State) -> None:
    bus = InProcessEventBus()
    assert subscribe_stage_mirror(bus, container.factory, NullExperimentTracker()) is False
    heard: list[dict[str, Any]] = []
    bus.subscribe(registry.STAGE_TOPIC, lambda _topic, message: heard.append(dict(message)))
    bus.publish(registry.STAGE_TOPIC, {"tenant_id": "t", "model_version": "mv", "stage": "APPROVED"})
    assert len(heard) == 1  # only the test's own subscriber: no mirror was subscribed
    with container.factory() as session:
        assert session.scalars(select(Job).where(Job.kind == MLFLOW_SYNC_JOB)).all() == []


def test_a_redelivered_change_does_not_queue_a_second_sync(container: State) -> None:
    mirror = StageMirror(container.factory)
    change = {"tenant_id": "tn_x", "model_version": "mv_x", "stage": Stage.APPROVED.value}
    mirror(registry.STAGE_TOPIC, change)
    mirror(registry.STAGE_TOPIC, {**change, "stage": Stage.PRODUCTION.value})
    with container.factory() as session:
        jobs = session.scalars(select(Job).where(Job.kind == MLFLOW_SYNC_JOB)).all()
        assert [(j.tenant_id, j.payload["model_version"], j.status) for j in jobs] == [
            ("tn_x", "mv_x", queue.QUEUED)
        ]
