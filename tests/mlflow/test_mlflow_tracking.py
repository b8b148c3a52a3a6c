"""Training runs logged to a real MLflow server; stages mirrored as aliases; MLflow down never fails a run."""

from __future__ import annotations

import hashlib
from pathlib import Path
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
from control_plane.settings import AppSettings
from control_plane.training.tracking import MLFLOW_SYNC_JOB, request_sync
from fraud_model.simulator import simulate
from providers.mlflow_tracking import MlflowExperimentTracker, NullExperimentTracker, build_tracker, name_for
from tests.control_plane.conftest import OnboardFn, auth
from tests.mlflow.conftest import free_port

DEAD_URI = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused


@pytest.fixture
def tracking_uri(mlflow_server: str) -> str:
    return mlflow_server


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> AppSettings:
    """The control plane with FRAUDRAIL_MLFLOW_TRACKING_URI set (read when providers are built)."""
    monkeypatch.setenv("FRAUDRAIL_MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("FRAUDRAIL_MLFLOW_MAX_RETRIES", "0")
    return AppSettings(
        env="test",
        home=tmp_path / "home",
        database_url=database_url,
        run_worker_in_process=False,
        max_body_bytes=64 * 1024,
    )


@pytest.fixture(autouse=True)
def small_data_gate(container: State) -> None:
    container.templates["trial"]["gate"] = {
        "min_auc_roc": 0.6,
        "min_average_precision": 0.2,
        "min_card_precision_at_100": 0.0,
    }


@pytest.fixture(scope="module")
def dataset_csv() -> bytes:
    return bytes(simulate(300, 600, 45, start_date="2026-06-01", seed=11).to_csv(index=False).encode())


def train(client: TestClient, worker: Worker, t: dict[str, Any], data: bytes, **extra: Any) -> dict[str, Any]:
    ds = client.post(
        "/v1/datasets",
        files={"file": ("june.csv", data, "text/csv")},
        data={"name": "june"},
        headers=auth(t["admin"]),
    )
    assert ds.status_code == 201, ds.text
    body = {"dataset_id": ds.json()["id"], "params": {"n_estimators": 30, "max_depth": 3}, **extra}
    started = client.post("/v1/training-runs", json=body, headers=auth(t["admin"]))
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert worker.run_once(job_id=run_id) == run_id
    run: dict[str, Any] = client.get(f"/v1/training-runs/{run_id}", headers=auth(t["admin"])).json()
    assert run["status"] == "succeeded", run
    return run


def test_a_run_is_logged_with_params_metrics_curves_artifact_and_aliases(
    client: TestClient,
    onboard: OnboardFn,
    worker: Worker,
    container: State,
    dataset_csv: bytes,
    mlflow_server: str,
) -> None:
    assert isinstance(container.providers.tracker, MlflowExperimentTracker)
    t = onboard("acme-pay", tier="trial")
    other = onboard("globex", tier="trial")
    run = train(client, worker, t, dataset_csv, algorithm="lightgbm", search={"trials": 2})
    result = run["result"]
    assert result["mlflow"]["status"] == "logged", result
    version = result["model_version"]

    mc = MlflowClient(tracking_uri=mlflow_server)
    experiment = mc.get_experiment_by_name(name_for(t["id"]))
    assert experiment is not None and experiment.name == f"fraudrail-{t['id']}"
    assert other["id"] not in experiment.name and mc.get_experiment_by_name(name_for(other["id"])) is None
    logged = mc.get_run(result["mlflow"]["run_id"])
    assert logged.info.experiment_id == experiment.experiment_id and logged.info.status == "FINISHED"
    data = logged.data
    assert data.tags["fraudrail.model_version"] == version
    assert data.tags["fraudrail.algorithm"] == "lightgbm"
    assert data.tags["feature_set_version"] and len(data.tags["dataset_sha256"]) == 64
    assert data.params["algorithm"] == "lightgbm" and data.params["search_trials"] == "2"
    assert data.metrics["auc_roc"] == pytest.approx(result["metrics"]["auc_roc"])
    assert {"average_precision", "card_precision_at_100", "gate_passed"} <= set(data.metrics)
    history = mc.get_metric_history(logged.info.run_id, "search_valid_average_precision")
    assert [m.step for m in history] == [0, 1]
    files = {a.path for a in mc.list_artifacts(logged.info.run_id)}
    assert {"curves", "model", "search.json"} <= files
    curves = {a.path for a in mc.list_artifacts(logged.info.run_id, "curves")}
    assert curves == {"curves/pr_curve.png", "curves/roc_curve.png"}
    png = Path(mc.download_artifacts(logged.info.run_id, "curves/pr_curve.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_file = Path(mc.download_artifacts(logged.info.run_id, f"model/{version}.frm"))
    detail = client.get(f"/v1/models/{version}", headers=auth(t["admin"])).json()
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == detail["sha256"]

    # The CANDIDATE is the challenger; promoting it queues the sync that makes it the champion.
    name = name_for(t["id"])
    assert mc.get_model_version_by_alias(name, "challenger").tags["fraudrail.model_version"] == version
    assert (
        client.post(
            f"/v1/models/{version}/approve", json={"note": "ok"}, headers=auth(t["admin"])
        ).status_code
        == 200
    )
    promoted = client.post(f"/v1/models/{version}/promote", headers=auth(t["admin"]))
    assert promoted.json()["stage"] == "PRODUCTION", promoted.text
    with container.factory() as session:
        queued = session.scalars(
            select(Job.id).where(Job.kind == MLFLOW_SYNC_JOB, Job.status == queue.QUEUED)
        ).all()
    assert len(queued) == 1  # queued by the approval; it mirrors the stage current when it runs
    assert worker.run_once(job_id=queued[0]) == queued[0]
    champion = mc.get_model_version_by_alias(name, "champion")
    assert (
        champion.tags["fraudrail.model_version"] == version
        and champion.tags["fraudrail.stage"] == "PRODUCTION"
    )
    assert "challenger" not in (mc.get_registered_model(name).aliases or {})
    # Logging again is idempotent: one run and one registered version per Fraudrail version.
    assert worker.run_once(job_id=_sync_again(container, t["id"], version)) is not None
    assert len(mc.search_runs([experiment.experiment_id])) == 1
    assert len(mc.search_model_versions(f"name = '{name}'")) == 1


def _sync_again(container: State, tenant_id: str, version: str) -> str:
    with container.factory.begin() as session:
        return request_sync(session, tenant_id, version, now=utcnow(), reason="test").id


@pytest.mark.parametrize("tracking_uri", [DEAD_URI])
def test_an_unreachable_tracker_never_fails_the_run_and_leaves_a_sync_job(
    client: TestClient, onboard: OnboardFn, worker: Worker, container: State, dataset_csv: bytes
) -> None:
    t = onboard("acme-pay", tier="trial")
    run = train(client, worker, t, dataset_csv)
    result = run["result"]
    assert result["stage"] == "CANDIDATE" and result["mlflow"]["status"] == "queued", result
    assert run["progress"]["mlflow"] == "queued"
    with container.factory() as session:
        job = queue.get_job(session, result["mlflow"]["job_id"], tenant_id=t["id"])
        assert job.kind == MLFLOW_SYNC_JOB and job.status == queue.QUEUED
        assert job.payload["model_version"] == result["model_version"]
    # A retry while MLflow is still down fails this attempt and stays queued for the next.
    assert worker.run_once(job_id=job.id) == job.id
    with container.factory() as session:
        again = queue.get_job(session, job.id, tenant_id=t["id"])
        assert again.status == queue.QUEUED and again.attempts == 1 and "MLflow" in (again.last_error or "")


def test_without_the_setting_the_tracker_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUDRAIL_MLFLOW_TRACKING_URI", raising=False)
    assert isinstance(build_tracker(), NullExperimentTracker)
    monkeypatch.setenv("FRAUDRAIL_MLFLOW_TRACKING_URI", DEAD_URI)
    assert isinstance(build_tracker(), MlflowExperimentTracker)
