"""Mirroring training runs and registry stages to the experiment tracker (MLflow).

Fraudrail's registry is the source of truth. A run is logged right after its model version is
registered; if the tracker cannot be reached the run still succeeds and a durable
``mlflow.sync`` job is queued (retried with the queue's backoff), and the run's result says so.
The sync job rebuilds everything from the registry row and the files kept beside the artifact,
so it can run any time later, and is idempotent (the tracker finds the run by version id). It
also mirrors the version's current stage: every stage change emits ``model.stage_changed`` in its
own transaction (``registry.set_stage``), and ``StageMirror`` — subscribed only while tracking is
on — queues a sync for it, unless one is already queued (that one reads the stage when it runs).
A stage change therefore never waits for, nor fails with, the tracker; ``sync_status`` shows the
latest sync on the training run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane import events
from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import JobContext
from control_plane.orm_base import utcnow
from control_plane.registry import service as registry
from control_plane.registry.orm import ModelVersion
from providers.ports import EventBus, ExperimentTracker, ObjectStore, ProviderError, TrackedRun

log = logging.getLogger(__name__)

MLFLOW_SYNC_JOB = "mlflow.sync"
SYNC_ATTEMPTS = 8
TRACKED_FILES = ("pr_curve.png", "roc_curve.png", "search.json")


def file_key(tenant_id: str, version_id: str, name: str) -> str:
    """Where the files a tracker needs are kept, beside the model artifact (tenant prefix)."""
    return f"tenants/{tenant_id}/models/{version_id}.tracking/{name}"


def tracked_run(mv: ModelVersion, artifact: bytes, files: Mapping[str, bytes]) -> TrackedRun:
    """The tracker's view of a registered version (only that tenant's own identifiers)."""
    params = {k: v for k, v in (mv.params or {}).items() if k != "search"}
    search = (mv.params or {}).get("search")
    series: dict[str, list[float]] = {}
    if isinstance(search, Mapping):
        params.update(
            {
                "search_trials": search.get("trials"),
                "search_stopped_by": search.get("stopped_by"),
                "search_elapsed_s": search.get("elapsed_s"),
            }
        )
        series["search_valid_average_precision"] = [
            float(h["average_precision"]) for h in search.get("history", [])
        ]
    metrics = {
        k: float(v)
        for k, v in (mv.metrics or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    metrics["gate_passed"] = 1.0 if (mv.gate or {}).get("passed") else 0.0
    tags = {
        "fraudrail.tenant_id": mv.tenant_id,
        "fraudrail.training_job_id": mv.training_job_id or "",
        "fraudrail.algorithm": str((mv.params or {}).get("algorithm", "xgboost")),
        "feature_set_version": mv.feature_set_version,
        "dataset_id": mv.dataset_id or "",
        "dataset_sha256": mv.dataset_sha256 or "",
        "code_version": mv.code_version,
        "artifact_sha256": mv.sha256,
    }
    return TrackedRun(
        tenant_id=mv.tenant_id,
        model_version_id=mv.id,
        stage=mv.stage,
        params=params,
        metrics=metrics,
        tags=tags,
        files=dict(files),
        artifact=artifact,
        artifact_name=mv.artifact_key.rsplit("/", 1)[-1],
        series=series,
    )


def keep_files(store: ObjectStore, tenant_id: str, version_id: str, files: Mapping[str, bytes]) -> None:
    for name, data in files.items():
        store.put(file_key(tenant_id, version_id, name), data)


def load_files(store: ObjectStore, tenant_id: str, version_id: str) -> dict[str, bytes]:
    out = {}
    for name in TRACKED_FILES:
        try:
            out[name] = store.get(file_key(tenant_id, version_id, name))
        except KeyError:
            continue
    return out


def search_file(search: Mapping[str, Any] | None) -> dict[str, bytes]:
    return {} if not search else {"search.json": json.dumps(search, indent=1, sort_keys=True).encode()}


def request_sync(session: Session, tenant_id: str, version_id: str, *, now: datetime, reason: str) -> Job:
    """Queue a sync of one version (its run, artifact and current stage) in the caller's transaction."""
    return queue.enqueue(
        session,
        kind=MLFLOW_SYNC_JOB,
        payload={"tenant_id": tenant_id, "model_version": version_id, "reason": reason},
        tenant_id=tenant_id,
        max_attempts=SYNC_ATTEMPTS,
        now=now,
    )


def _sync_jobs(tenant_id: str, version_id: str) -> Any:
    return (
        select(Job)
        .where(
            Job.tenant_id == tenant_id,
            Job.kind == MLFLOW_SYNC_JOB,
            Job.payload["model_version"].as_string() == version_id,
        )
        .order_by(Job.created_at.desc(), Job.id.desc())
    )


def sync_status(session: Session, tenant_id: str, version_id: str) -> dict[str, Any] | None:
    """The latest ``mlflow.sync`` of a version (None if it never needed one): shown on its run."""
    job = session.scalars(_sync_jobs(tenant_id, version_id).limit(1)).first()
    if job is None:
        return None
    return {
        "job_id": job.id,
        "status": job.status,
        "reason": job.payload.get("reason"),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "result": job.result,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


class StageMirror:
    """Subscriber of ``model.stage_changed``: queue the version's sync (idempotent per change)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def __call__(self, topic: str, message: Mapping[str, Any]) -> None:
        tenant_id, version_id = str(message["tenant_id"]), str(message["model_version"])
        with unit_of_work(self.factory) as session:
            queued = session.scalars(
                _sync_jobs(tenant_id, version_id).where(Job.status == queue.QUEUED).limit(1)
            ).first()
            if queued is None:  # a queued sync reads the stage when it runs: it covers this change too
                request_sync(session, tenant_id, version_id, now=utcnow(), reason=f"stage {message['stage']}")


def subscribe_stage_mirror(bus: EventBus, factory: sessionmaker[Session], tracker: ExperimentTracker) -> bool:
    """Mirror stage changes while tracking is on (with it off, nobody listens: nothing is queued)."""
    if not tracker.enabled:
        return False
    bus.subscribe(events.MODEL_STAGE_CHANGED, StageMirror(factory), mode="work", group="mlflow-stage-mirror")
    return True


def publish(
    factory: sessionmaker[Session],
    tracker: ExperimentTracker | None,
    store: ObjectStore,
    *,
    tenant_id: str,
    version_id: str,
    artifact: bytes,
    files: Mapping[str, bytes],
    now: datetime,
) -> dict[str, Any] | None:
    """Log a just-registered version; on any tracker failure queue ``mlflow.sync`` instead.

    Returns what the run's result shows (None when tracking is off). Never raises for the
    tracker: a training run does not fail because MLflow is down.
    """
    if tracker is None or not tracker.enabled:
        return None
    keep_files(store, tenant_id, version_id, files)
    try:
        with unit_of_work(factory) as session:
            run = tracked_run(registry.get(session, tenant_id, version_id), artifact, files)
        return {"status": "logged", "run_id": tracker.log_run(run)}
    except ProviderError as exc:
        log.warning("MLflow logging of %s failed, queued for retry: %s", version_id, exc)
        with unit_of_work(factory) as session:
            job = request_sync(session, tenant_id, version_id, now=now, reason="training")
            job_id = job.id
        return {"status": "queued", "job_id": job_id, "error": str(exc)[:500]}


class MlflowSync:
    """The ``mlflow.sync`` job: log a version's run if missing, then mirror its current stage."""

    def __init__(self, tracker: ExperimentTracker, object_store: ObjectStore) -> None:
        self.tracker = tracker
        self.object_store = object_store

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tracker, store = self.tracker, self.object_store
        tenant_id, version_id = str(ctx.payload["tenant_id"]), str(ctx.payload["model_version"])
        if not tracker.enabled:
            return {"skipped": "FRAUDRAIL_MLFLOW_TRACKING_URI is not set"}
        with unit_of_work(ctx.factory) as session:
            mv = registry.get(session, tenant_id, version_id)
            artifact = store.get(mv.artifact_key)
            run = tracked_run(mv, artifact, load_files(store, tenant_id, version_id))
        run_id = tracker.log_run(run)  # ProviderError → the queue retries with backoff
        return {"model_version": version_id, "mlflow_run_id": run_id, "stage": run.stage}

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor="system:worker",
            action="mlflow.sync_failed",
            subject=str(ctx.payload.get("model_version", ctx.job_id)),
            reason=error,
        )
