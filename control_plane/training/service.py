"""Training runs: a durable job (features → train → evaluate → gate → register) with progress."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
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
from control_plane.jobs.worker import JobContext, PermanentJobError
from control_plane.monitoring import service as monitoring
from control_plane.registry import service as registry
from control_plane.registry.orm import ModelVersion
from control_plane.registry.stages import Stage
from control_plane.settings import REPO_ROOT
from control_plane.tenants import repository as tenants
from control_plane.tenants.lifecycle import TenantStatus
from control_plane.training import tracking
from fraud_model import schema
from fraud_model.curves import curve_pngs
from fraud_model.evaluation import check_gate, evaluate
from fraud_model.feature_sets.training import run_features, with_feature_set
from fraud_model.features import DAY_S
from fraud_model.scoring import Scorer
from fraud_model.search import search_params
from fraud_model.training import sha256, train_model
from providers.ports import ExperimentTracker, ObjectStore

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
        # The tenant's active feature set is fixed now: the run trains on that version (issue 16).
        payload={"tenant_id": tenant_id, **request, "actor": actor} | feature_set_payload(session, tenant_id),
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


def split_by_time(frame: pd.DataFrame, *, test_days: int, delay_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Train on everything before (test start - delay); test on the last ``test_days`` days.

    As in the handbook, cards already known compromised in the training window are dropped from
    the test window (they would be blocked already and inflate card precision).
    """
    ts_s = schema.epoch_seconds(frame[schema.TS])
    last_day = int(ts_s.max() // DAY_S)
    test_start = (last_day - test_days + 1) * DAY_S
    train_end = test_start - delay_days * DAY_S
    train = ts_s < train_end
    test = ts_s >= test_start
    if not train.any() or not test.any():
        raise PermanentJobError(
            f"the dataset spans too few days for a {test_days}-day test window after a {delay_days}-day delay"
        )
    fraud = frame[schema.IS_FRAUD].to_numpy() > 0
    known = set(frame.loc[train & fraud, schema.CARD_TOKEN])
    test &= ~frame[schema.CARD_TOKEN].isin(known).to_numpy()
    return train, test


def apply_analyst_labels(frame: pd.DataFrame, labels: Mapping[str, int]) -> tuple[pd.DataFrame, int]:
    """Analysts' verdicts override the dataset's labels for the same txn_id."""
    if not labels:
        return frame, 0
    mapped = frame[schema.TXN_ID].map(labels)
    used = int(mapped.notna().sum())
    out = frame.copy()
    out.loc[mapped.notna(), schema.IS_FRAUD] = mapped[mapped.notna()].astype("int64")
    return out, used


def _analyst_labels(session: Session, tenant_id: str) -> dict[str, int]:
    from control_plane.review import service as review

    return review.analyst_labels(session, tenant_id)


def _search(
    ctx: JobContext,
    frame: pd.DataFrame,
    features: pd.DataFrame,
    p: Mapping[str, Any],
    algorithm: str,
    params: dict[str, Any],
    delay_days: int,
    valid_days: int,
) -> dict[str, Any]:
    """The in-run search on the training rows only (the test window is never passed)."""
    budget = dict(p["search"])

    def on_trial(t: dict[str, Any]) -> None:
        ctx.progress("search", 20 + 20 * t["trial"] / t["trials"], **t)

    try:
        result = search_params(
            frame,
            features,
            algorithm=algorithm,
            trials=int(budget["trials"]),
            time_budget_s=float(budget["time_budget_s"]),
            seed=int(p.get("seed", 0)),
            delay_days=delay_days,
            valid_days=valid_days,
            base_params=params,
            on_trial=on_trial,
            feature_names=tuple(features.columns),
        )
    except ValueError as exc:
        raise PermanentJobError(str(exc)) from exc
    return {**result.lineage(), "budget": budget}


class TrainingRun:
    def __init__(
        self,
        object_store: ObjectStore,
        templates: Mapping[str, Mapping[str, Any]],
        tracker: ExperimentTracker | None = None,
    ) -> None:
        self.object_store = object_store
        self.templates = templates
        self.tracker = tracker

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        p = ctx.payload
        tenant_id = str(p["tenant_id"])
        version_id = "mv_" + ctx.job_id.removeprefix(
            "job_"
        )  # deterministic: a re-run overwrites, never duplicates
        with unit_of_work(ctx.factory) as session:
            existing = session.get(ModelVersion, version_id)
            if existing is not None:
                return {"model_version": version_id, "stage": existing.stage, "metrics": existing.metrics}
            tenant = tenants.get(session, tenant_id)
            gate_minimums = {
                GATE_METRICS[k]: float(v)
                for k, v in self.templates[tenant.tier]["gate"].items()
                if k in GATE_METRICS
            }
            for key, value in dict(p.get("gate") or {}).items():
                metric = GATE_METRICS[key]
                gate_minimums[metric] = max(gate_minimums.get(metric, 0.0), float(value))
            dataset = datasets.get(session, tenant_id, str(p["dataset_id"]))
            dataset_sha, dataset_id = dataset.sha256, dataset.id
            labels = _analyst_labels(session, tenant_id)
        ctx.progress("loading", 5)
        frame = datasets.load_frame(self.object_store, dataset)
        frame, used_labels = apply_analyst_labels(frame, labels)
        delay_days, test_days = int(p.get("delay_days", 7)), int(p.get("test_days", 7))
        ctx.progress("features", 15, rows=len(frame), analyst_labels=used_labels)
        train, test = split_by_time(frame, test_days=test_days, delay_days=delay_days)
        # The tenant's feature set when the run names one (issue 16), else the built-in features.
        features, feature_set = run_features(frame, p, train, delay_days)
        y = frame[schema.IS_FRAUD].to_numpy()
        if y[train].sum() == 0:
            raise PermanentJobError("the training window holds no fraud label: nothing to learn from")
        algorithm, params = str(p.get("algorithm", "xgboost")), dict(p.get("params") or {})
        search = None
        if p.get("search"):
            search = _search(ctx, frame[train], features[train], p, algorithm, params, delay_days, test_days)
            params = dict(search["best_params"])
        ctx.progress("train", 40, train_rows=int(train.sum()), test_rows=int(test.sum()), algorithm=algorithm)
        model = train_model(
            features[train],
            y[train],
            params=params,
            seed=int(p.get("seed", 0)),
            algorithm=algorithm,
            feature_names=tuple(features.columns),
        )
        model = with_feature_set(model, feature_set)
        if search is not None:
            model.params["search"] = search  # lineage: the chosen parameters and every trial
        ctx.progress("evaluate", 80)
        scores = Scorer(model).score_batch(features[test].to_numpy(dtype=np.float32))
        metrics = evaluate(frame[test], scores)
        gate = check_gate(metrics, gate_minimums)
        artifact = model.to_bytes()
        key = f"tenants/{tenant_id}/models/{version_id}.frm"
        self.object_store.put(key, artifact)
        ctx.progress("register", 95)
        clean = {k: (None if v != v else round(float(v), 6)) for k, v in metrics.items()}
        with unit_of_work(ctx.factory) as session:
            stage = Stage.CANDIDATE if gate.passed else Stage.REJECTED
            # What production monitoring compares this version's traffic with (issue 17).
            profile = monitoring.reference_profile(
                session, tenant_id, self.templates, features[train], scores, y[train]
            )
            mv = ModelVersion(
                id=version_id,
                tenant_id=tenant_id,
                stage=stage.value,
                artifact_key=key,
                sha256=sha256(artifact),
                training_job_id=ctx.job_id,
                dataset_id=dataset_id,
                dataset_sha256=dataset_sha,
                feature_set_version=model.feature_set_version,
                code_version=code_version(),
                params=model.params,
                metrics={**clean, "train_rows": int(train.sum()), "test_rows": int(test.sum())},
                reference_profile=profile,
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
                after={"stage": stage.value, "metrics": mv.metrics},
                evidence=mv.gate,
            )
        mlflow = tracking.publish(
            ctx.factory,
            self.tracker,
            self.object_store,
            tenant_id=tenant_id,
            version_id=version_id,
            artifact=artifact,
            files=(
                {**curve_pngs(y[test], scores, title=version_id), **tracking.search_file(search)}
                if self.tracker is not None and self.tracker.enabled
                else {}
            ),
            now=ctx.clock(),
        )
        ctx.progress("done", 100, **({"mlflow": mlflow["status"]} if mlflow else {}))
        return {
            "model_version": version_id,
            "stage": stage.value,
            "algorithm": algorithm,
            "metrics": clean,
            "gate": mv.gate,
            "analyst_labels": used_labels,
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
