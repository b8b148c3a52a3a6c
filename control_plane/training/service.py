"""Training runs: a durable job (features → train → evaluate → gate → register) with progress.

The compute (``fraud_model.pipeline``) runs wherever the training backend puts it; this module
checks, submits, waits (as a re-polled job) and registers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.datasets import service as datasets
from control_plane.datasets.feature_sets import feature_set_payload, lock_feature_set
from control_plane.db import unit_of_work
from control_plane.errors import Conflict, InvalidInput
from control_plane.finops.guard import require_budget
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import JobContext, JobPending, PermanentJobError
from control_plane.registry import service as registry
from control_plane.registry.orm import ModelVersion
from control_plane.registry.stages import Stage
from control_plane.scoring import config as scoring_config
from control_plane.settings import REPO_ROOT
from control_plane.tenants import repository as tenants
from control_plane.tenants.lifecycle import TenantStatus
from control_plane.training import tracking
from fraud_model.evaluation import check_gate
from fraud_model.pipeline import read_outputs
from fraud_model.training import TrainedModel, sha256
from providers.ports import ExperimentTracker, ObjectStore, TrainingBackend, TrainingJobSpec

TRAINING_JOB = "training.run"
GATE_METRICS = {
    "min_auc_roc": "auc_roc",
    "min_average_precision": "average_precision",
    "min_card_precision_at_100": "card_precision_at_100",
}


@lru_cache(maxsize=1)
def code_version() -> str:
    """The commit the code runs from (``FRAUDRAIL_CODE_VERSION`` wins; read from .git otherwise)."""
    if os.environ.get("FRAUDRAIL_CODE_VERSION"):
        return os.environ["FRAUDRAIL_CODE_VERSION"]
    git = REPO_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head.removeprefix("ref: ")
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0][:12]
    except OSError:
        pass
    return "unknown"


def start_run(
    session: Session,
    *,
    tenant_id: str,
    request: Mapping[str, Any],
    actor: str,
    now: datetime,
    max_concurrent: int,
    max_models: int,
) -> Job:
    """Queue a run after checking the dataset exists and the tenant may train."""
    tenant = tenants.get(session, tenant_id)
    if tenant.status != TenantStatus.ACTIVE.value:
        raise Conflict(f"tenant is {tenant.status}; training needs an ACTIVE tenant", field="status")
    require_budget(session, tenant, action="start a training run", now=now)  # 403 while budget-frozen
    datasets.get(session, tenant_id, str(request["dataset_id"]))
    running = session.scalars(
        select(Job.id).where(
            Job.tenant_id == tenant_id,
            Job.kind == TRAINING_JOB,
            Job.status.in_((queue.QUEUED, queue.RUNNING)),
        )
    ).all()
    if len(running) >= max_concurrent:
        raise Conflict(
            f"{len(running)} training run(s) already in progress; the tier allows {max_concurrent}",
            field="dataset_id",
            extra={"running": list(running)},
        )
    live = registry.live_count(session, tenant_id)
    if live + len(running) >= max_models:
        raise Conflict(
            f"the tier keeps at most {max_models} live model version(s) (CANDIDATE, APPROVED or "
            f"PRODUCTION); {live} are live and {len(running)} being trained. Archive one first "
            "(POST /v1/models/{id}/archive)",
            field="models_hosted",
            extra={"live_models": live, "running": list(running), "models_hosted": max_models},
        )
    job = queue.enqueue(
        session,
        kind=TRAINING_JOB,
        payload={
            "tenant_id": tenant_id,
            **request,
            "actor": actor,
            **feature_set_payload(session, tenant_id),
        },
        tenant_id=tenant_id,
        max_attempts=3,
        now=now,
    )
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="training.requested",
        subject=job.id,
        after=dict(request),
    )
    return job


def resolve_search(
    requested: Mapping[str, Any] | None, tier: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """A run's search budget: the request's figures, the tier's where omitted, never above the tier's."""
    if requested is None:
        return None
    if not tier:
        raise InvalidInput("this tier has no hyper-parameter search budget", field="search")
    out: dict[str, Any] = {}
    for key, cast in (("trials", int), ("time_budget_s", float)):
        limit = cast(tier[key])
        value = requested.get(key)
        if value is not None and value > limit:
            raise InvalidInput(
                f"search.{key} is {value}; the tier allows at most {limit}",
                field=f"search.{key}",
                extra={"limit": limit},
            )
        out[key] = cast(value) if value is not None else limit
    return out


def _analyst_labels(session: Session, tenant_id: str) -> dict[str, int]:
    from control_plane.review import service as review

    return review.analyst_labels(session, tenant_id)


def training_spec(
    tenant_id: str, job_id: str, dataset_key: str, payload: Mapping[str, Any], tier: Mapping[str, Any]
) -> TrainingJobSpec:
    """What the backend runs: the run's request and where its inputs and outputs live (all in the
    tenant's prefix), on the tier's instance type, on spot capacity where the tier allows it."""
    compute = dict(tier.get("training") or {})
    keys = (
        "algorithm",
        "params",
        "seed",
        "delay_days",
        "gap_days",
        "calibration_split",
        "test_days",
        "search",
        "thresholds",
        "curves",
        "title",
        "feature_set",
    )
    return TrainingJobSpec(
        tenant_id=tenant_id,
        job_id=job_id,
        dataset_key=dataset_key,
        labels_key=f"tenants/{tenant_id}/training/{job_id}/labels/labels.json",
        request_key=f"tenants/{tenant_id}/training/{job_id}/config/request.json",
        output_prefix=f"tenants/{tenant_id}/training/{job_id}/",
        request={k: payload[k] for k in keys if payload.get(k) is not None},
        spot=bool(compute.get("spot", False)),
        instance_type=str(compute.get("instance_type", "ml.m5.large")),
        max_runtime_s=int(compute.get("max_runtime_s", 3600)),
        max_wait_s=int(compute.get("max_wait_s", 2 * int(compute.get("max_runtime_s", 3600)))),
    )


class TrainingRun:
    """The ``training.run`` job: submits the run to the training backend (in-process locally, a
    SageMaker Training job on AWS), re-polls it as a job (``JobPending``: no thread waits), and
    registers the version from the run's ``model.tar.gz``. Every step is safe to repeat."""

    def __init__(
        self,
        object_store: ObjectStore,
        templates: Mapping[str, Mapping[str, Any]],
        tracker: ExperimentTracker | None = None,
        backend: TrainingBackend | None = None,
    ) -> None:
        self.object_store = object_store
        self.templates = templates
        self.tracker = tracker
        if backend is None:
            raise ValueError("TrainingRun needs a training backend (the composition root builds one)")
        self.backend = backend

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        p = ctx.payload
        tenant_id = str(p["tenant_id"])
        version_id = "mv_" + ctx.job_id.removeprefix("job_")  # deterministic: a re-run never duplicates
        with unit_of_work(ctx.factory) as session:
            existing = session.get(ModelVersion, version_id)
            if existing is not None:
                return {"model_version": version_id, "stage": existing.stage, "metrics": existing.metrics}
            tenant = tenants.get(session, tenant_id)
            tier = self.templates[tenant.tier]
            gate_minimums = {GATE_METRICS[k]: float(v) for k, v in tier["gate"].items() if k in GATE_METRICS}
            for key, value in dict(p.get("gate") or {}).items():
                metric = GATE_METRICS[key]
                gate_minimums[metric] = max(gate_minimums.get(metric, 0.0), float(value))
            dataset = datasets.get(session, tenant_id, str(p["dataset_id"]))
            dataset_sha, dataset_id, dataset_key = dataset.sha256, dataset.id, dataset.object_key
            config = scoring_config.read(session, tenant_id, self.templates)
            thresholds = {
                "review": float(config.review_threshold),
                "suspicious": float(config.suspicious_threshold),
            }
            labels = _analyst_labels(session, tenant_id)
        curves = self.tracker is not None and self.tracker.enabled
        request = {**p, "thresholds": thresholds, "curves": curves, "title": version_id}
        spec = training_spec(tenant_id, ctx.job_id, dataset_key, request, tier)
        if not self.object_store.exists(spec.labels_key):  # the verdicts as of the first attempt
            self.object_store.put(spec.labels_key, json.dumps(labels, sort_keys=True).encode())
            self.object_store.put(spec.request_key, json.dumps(dict(spec.request), sort_keys=True).encode())
        remote = self.backend.ensure(spec, progress=ctx.progress)
        where = {"backend_job": remote.name, **({"arn": remote.arn} if remote.arn else {})}
        if remote.state == "running":
            ctx.progress(remote.detail or "running", remote.percent, **where)
            raise JobPending(remote.poll_after_s, f"{remote.name}: {remote.detail}")
        if remote.state != "succeeded" or remote.output_key is None:
            raise PermanentJobError(f"training job {remote.name} {remote.state}: {remote.detail}")
        try:
            outputs = read_outputs(self.object_store.get(remote.output_key))
            model = TrainedModel.from_bytes(outputs.artifact)
        except (KeyError, ValueError) as exc:  # missing, unreadable or tampered output
            raise PermanentJobError(f"training job {remote.name} left no usable model.tar.gz: {exc}") from exc
        ctx.progress("register", 95, **where)
        artifact, evaluation = outputs.artifact, outputs.evaluation
        key = f"tenants/{tenant_id}/models/{version_id}.frm"
        self.object_store.put(key, artifact)
        clean = dict(evaluation["metrics"])
        gate = check_gate({k: (float("nan") if v is None else v) for k, v in clean.items()}, gate_minimums)
        search = evaluation.get("search")
        used_labels = int(evaluation.get("analyst_labels", 0))
        training_run = {
            "backend_job": remote.name,
            "arn": remote.arn,
            "output": remote.output_key,
            "spot": spec.spot,
            "instance_type": spec.instance_type,
            **dict(remote.facts),
        }
        with unit_of_work(ctx.factory) as session:
            stage = Stage.CANDIDATE if gate.passed else Stage.REJECTED
            mv = ModelVersion(
                id=version_id,
                tenant_id=tenant_id,
                stage=stage.value,
                artifact_key=key,
                sha256=sha256(artifact),
                training_job_id=ctx.job_id,
                training_run=training_run,
                dataset_id=dataset_id,
                dataset_sha256=dataset_sha,
                feature_set_version=model.feature_set_version,
                code_version=code_version(),
                params=model.params,
                metrics={
                    **clean,
                    "train_rows": evaluation["train_rows"],
                    "test_rows": evaluation["test_rows"],
                },
                # What production monitoring compares this version's traffic with (issue 17).
                reference_profile=outputs.profile,
                gate={
                    "passed": gate.passed,
                    "minimums": gate_minimums,
                    "failures": [
                        {"metric": m, "minimum": lim, "observed": obs} for m, lim, obs in gate.failures
                    ],
                },
                analyst_labels=used_labels,
            )
            session.add(mv)
            lock_feature_set(session, tenant_id, p.get("feature_set"))
            audit.record(
                session,
                tenant_id=tenant_id,
                actor=str(p.get("actor", "system:worker")),
                action=f"model.{stage.value.lower()}",
                subject=version_id,
                reason=gate.describe(),
                after={"stage": stage.value, "metrics": mv.metrics, "training_run": training_run},
                evidence=mv.gate,
            )
        mlflow = tracking.publish(
            ctx.factory,
            self.tracker,
            self.object_store,
            tenant_id=tenant_id,
            version_id=version_id,
            artifact=artifact,
            files={**outputs.curves, **tracking.search_file(search)} if curves else {},
            now=ctx.clock(),
        )
        ctx.progress("done", 100, **where, **({"mlflow": mlflow["status"]} if mlflow else {}))
        billable = remote.facts.get("billable_seconds")
        return {
            "model_version": version_id,
            "stage": stage.value,
            "algorithm": evaluation.get("algorithm", "xgboost"),
            "metrics": clean,
            "gate": mv.gate,
            "analyst_labels": used_labels,
            "training_run": training_run,
            **({"billable_seconds": billable} if billable is not None else {}),
            **({"search": {k: v for k, v in search.items() if k != "history"}} if search else {}),
            **({"mlflow": mlflow} if mlflow else {}),
        }

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor="system:worker",
            action="training.failed",
            subject=ctx.job_id,
            reason=error,
        )
