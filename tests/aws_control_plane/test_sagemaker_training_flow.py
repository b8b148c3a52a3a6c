"""A training run as a SageMaker Training job on moto: the durable job submits it, is re-queued
while it runs (no thread waits), is finished by another worker after a restart, and registers the
version with the job's ARN; a failing container fails the run with SageMaker's FailureReason.

moto runs no container: the image's entry point runs as a process through the explicit emulation
(``ContainerJobEmulator``), which also answers the first describe of each job ``InProgress``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.finops.metering import MeteredRun
from control_plane.jobs import queue
from control_plane.jobs.worker import Worker
from control_plane.orm_base import utcnow
from control_plane.training.service import TRAINING_JOB, TrainingRun
from fraud_model.simulator import simulate
from fraud_model.training import sha256
from providers.aws.factory import AwsClients
from providers.aws.job_emulation import ContainerJobEmulator
from providers.aws.jobs import SageMakerTrainingBackend
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from tests.aws.conftest import ACCOUNT, REGION
from tests.control_plane.conftest import OnboardFn, auth

pytestmark = pytest.mark.aws

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fraudrail-sagemaker"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fraudrail-inference:abc123"


@pytest.fixture(scope="module")
def dataset_csv() -> bytes:
    return simulate(300, 600, 40, start_date="2026-06-01", seed=11).to_csv(index=False).encode()


@pytest.fixture
def on_sagemaker(container: State, clients: AwsClients, aws_settings: AwsSettings) -> dict[str, Any]:
    container.templates["trial"]["gate"] = {"min_auc_roc": 0.5, "min_average_precision": 0.0}
    container.templates["trial"]["training"] = {
        "instance_type": "ml.m5.large",
        "spot": True,
        "max_runtime_s": 900,
    }
    store = S3ObjectStore(clients.s3, aws_settings.bucket, None)
    emulator = ContainerJobEmulator(clients.s3, pending_polls=1).install(clients.sagemaker)
    backend = SageMakerTrainingBackend(
        clients.sagemaker, bucket=aws_settings.bucket, role_arn=ROLE, image_uri=IMAGE
    )
    handlers = {TRAINING_JOB: MeteredRun(TrainingRun(store, container.templates, None, backend))}
    return {"store": store, "emulator": emulator, "handlers": handlers}


def start(
    client: TestClient, container: State, t: dict[str, Any], store: S3ObjectStore, data: bytes, **body: Any
) -> str:
    ds = client.post(
        "/v1/datasets",
        files={"file": ("june.csv", data, "text/csv")},
        data={"name": "june"},
        headers=auth(t["admin"]),
    )
    assert ds.status_code == 201, ds.text
    local = container.providers.object_store
    for key in local.list(f"tenants/{t['id']}/datasets/"):  # the same bucket on AWS: the API stored it there
        store.put(key, local.get(key))
    started = client.post(
        "/v1/training-runs",
        json={"dataset_id": ds.json()["id"], "params": {"n_estimators": 30, "max_depth": 4}, **body},
        headers=auth(t["admin"]),
    )
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


def test_training_job_is_polled_as_a_job_and_survives_a_restart(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    clients: AwsClients,
    on_sagemaker: dict[str, Any],
    dataset_csv: bytes,
) -> None:
    t = onboard("sm-train", tier="trial")
    store: S3ObjectStore = on_sagemaker["store"]
    run_id = start(client, container, t, store, dataset_csv)

    first = Worker(container.factory, on_sagemaker["handlers"])
    assert first.run_once(job_id=run_id) == run_id
    with container.factory() as session:
        job = queue.get_job(session, run_id, tenant_id=None)
        assert job.status == queue.QUEUED and job.attempts == 0  # a poll spends no attempt
        assert job.run_after > utcnow() + timedelta(seconds=20)  # asked again in 30 s, by a job
        progress = dict(job.progress)
    name = progress["backend_job"]
    arn = clients.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
    assert progress["phase"] == "Training" and progress["arn"] == arn
    assert first.run_once() is None  # nothing is due: no thread sits waiting on SageMaker

    # The first worker is gone; another, 31 s later, finds the job by name and finishes the run.
    later = Worker(
        container.factory, on_sagemaker["handlers"], clock=lambda: utcnow() + timedelta(seconds=31)
    )
    assert later.run_once() == run_id
    run = client.get(f"/v1/training-runs/{run_id}", headers=auth(t["admin"])).json()
    assert run["status"] == "succeeded", run
    result = run["result"]
    assert result["training_run"]["arn"] == arn and result["training_run"]["spot"] is True
    assert result["stage"] == "CANDIDATE" and result["metrics"]["auc_roc"] > 0.5
    assert len(clients.sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 1  # one job, two workers

    model = client.get(f"/v1/models/{result['model_version']}", headers=auth(t["admin"])).json()
    assert model["training_run"]["arn"] == arn and model["training_run"]["backend_job"] == name
    assert (
        model["training_run"]["output"] == f"tenants/{t['id']}/training/{run_id}/{name}/output/model.tar.gz"
    )
    assert model["reference_profile"]["rows"] == model["metrics"]["train_rows"]
    artifact = store.get(f"tenants/{t['id']}/models/{model['id']}.frm")
    assert sha256(artifact) == model["sha256"]
    # The spot job's checkpoints were kept where SageMaker syncs them.
    assert store.exists(f"tenants/{t['id']}/training/{run_id}/checkpoints/model.frm")
    # Everything the job read and wrote is in the tenant's prefix.
    assert all(k.startswith(f"tenants/{t['id']}/") for k in store.list("tenants/"))


def test_a_failing_container_fails_the_run_with_sagemakers_reason(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    on_sagemaker: dict[str, Any],
    dataset_csv: bytes,
) -> None:
    t = onboard("sm-fail", tier="trial")
    run_id = start(client, container, t, on_sagemaker["store"], dataset_csv, test_days=30, delay_days=30)
    offset = [timedelta(0)]
    worker_ = Worker(container.factory, on_sagemaker["handlers"], clock=lambda: utcnow() + offset[0])
    assert worker_.run_once(job_id=run_id) == run_id  # submitted; the first describe says InProgress
    offset[0] = timedelta(minutes=5)
    assert worker_.run_once(job_id=run_id) == run_id  # then Failed: permanent, no retries
    run = client.get(f"/v1/training-runs/{run_id}", headers=auth(t["admin"])).json()
    assert run["status"] == "failed" and run["attempts"] == 1
    assert "too few days" in run["last_error"] and "fraudrail-train-" in run["last_error"]
    models = client.get("/v1/models", headers=auth(t["admin"])).json()
    assert models == []
