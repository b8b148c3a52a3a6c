"""Training-run routes: start a run (a durable job) and read its progress and result."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from control_plane.auth.scopes import Scope
from control_plane.deps import PrincipalDep, SessionDep, TemplatesDep
from control_plane.errors import NotFound
from control_plane.jobs import queue
from control_plane.jobs.router import JobOut
from control_plane.orm_base import utcnow
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants
from control_plane.training import service, tracking

router = APIRouter(prefix="/v1/training-runs", tags=["training"])


class TrainingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_depth: int | None = Field(default=None, ge=1, le=12)
    n_estimators: int | None = Field(default=None, ge=1, le=2000)
    learning_rate: float | None = Field(default=None, gt=0, le=1)


class GateOverride(BaseModel):
    """Stricter minimums for this run; a run can raise the tier's gate, never lower it."""

    model_config = ConfigDict(extra="forbid")
    min_auc_roc: float | None = Field(default=None, ge=0, le=1)
    min_average_precision: float | None = Field(default=None, ge=0, le=1)
    min_card_precision_at_100: float | None = Field(default=None, ge=0, le=1)


class SearchRequest(BaseModel):
    """An in-run hyper-parameter search; omitted budgets take the tier's (which also caps them)."""

    model_config = ConfigDict(extra="forbid")
    trials: int | None = Field(default=None, ge=1, le=1000)
    time_budget_s: float | None = Field(default=None, gt=0, le=86_400)


class TrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: Literal["xgboost", "lightgbm"] = "xgboost"
    search: SearchRequest | None = None
    dataset_id: str = Field(min_length=1, max_length=40)
    test_days: int = Field(default=7, ge=1, le=60)
    delay_days: int = Field(default=7, ge=1, le=30)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    params: TrainingParams = Field(default_factory=TrainingParams)
    gate: GateOverride = Field(default_factory=GateOverride)


class TrainingRunOut(JobOut):
    # The version's latest MLflow sync (a retried logging or a mirrored stage change), if any.
    mlflow_sync: dict[str, Any] | None = None


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def start_training(
    body: TrainingRequest, session: SessionDep, templates: TemplatesDep, principal: PrincipalDep
) -> Any:
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    tenant = tenants.get(session, tenant_id)
    request = body.model_dump()
    names = {"n_estimators": "num_boost_round", "learning_rate": "eta", "max_depth": "max_depth"}
    request["params"] = {names[k]: v for k, v in body.params.model_dump().items() if v is not None}
    request["gate"] = {k: v for k, v in body.gate.model_dump().items() if v is not None}
    request["search"] = service.resolve_search(
        None if body.search is None else body.search.model_dump(), templates[tenant.tier].get("search")
    )
    job = service.start_run(
        session,
        tenant_id=tenant_id,
        request=request,
        actor=principal.actor,
        now=utcnow(),
        max_concurrent=int(templates[tenant.tier]["quotas"]["concurrent_training_runs"]),
        max_models=int(templates[tenant.tier]["quotas"]["models_hosted"]),
    )
    session.flush()
    return JobOut.model_validate(job, from_attributes=True)


@router.get("/{run_id}", response_model=TrainingRunOut)
def get_training_run(run_id: str, session: SessionDep, principal: PrincipalDep) -> TrainingRunOut:
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN, Scope.SRE})
    job = queue.get_job(session, run_id, tenant_id=tenant_id)
    if job.kind != service.TRAINING_JOB:
        raise NotFound(f"training run {run_id} not found", field="run_id")
    out = TrainingRunOut.model_validate(job, from_attributes=True)
    version = (job.result or {}).get("model_version")
    if isinstance(version, str):
        out.mlflow_sync = tracking.sync_status(session, tenant_id, version)
    return out
