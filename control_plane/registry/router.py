"""Model registry routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from control_plane.auth.scopes import Scope
from control_plane.deps import ContainerDep, PrincipalDep, SessionDep
from control_plane.errors import Conflict
from control_plane.finops.guard import deployment_context
from control_plane.registry import service
from control_plane.registry.orm import ModelVersion
from control_plane.rollouts import service as rollouts
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants

router = APIRouter(prefix="/v1/models", tags=["models"])
READERS = {Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST}


class ModelOut(BaseModel):
    id: str
    stage: str
    sha256: str
    training_job_id: str | None
    dataset_id: str | None
    dataset_sha256: str | None
    feature_set_version: str
    code_version: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any]
    analyst_labels: int
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    stage_changed_at: datetime


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=1000)


def model_out(mv: ModelVersion) -> ModelOut:
    return ModelOut.model_validate(mv, from_attributes=True)


@router.get("", response_model=list[ModelOut])
def list_models(
    session: SessionDep, principal: PrincipalDep, stage: Annotated[str | None, Query(max_length=20)] = None
) -> list[ModelOut]:
    tenant_id = tenant_of(principal, READERS)
    return [model_out(m) for m in service.list_for(session, tenant_id, stage=stage)]


@router.get("/{model_id}", response_model=ModelOut)
def get_model(model_id: str, session: SessionDep, principal: PrincipalDep) -> ModelOut:
    return model_out(service.get(session, tenant_of(principal, READERS), model_id))


@router.post("/{model_id}/approve", response_model=ModelOut)
def approve_model(
    model_id: str, session: SessionDep, principal: PrincipalDep, body: ApproveBody | None = None
) -> ModelOut:
    """CANDIDATE → APPROVED (a tenant-admin's decision, audited). A REJECTED model never deploys."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    mv = service.approve(
        session, tenant_id, model_id, actor=principal.actor, note=body.note if body else None
    )
    return model_out(mv)


@router.post("/{model_id}/archive", response_model=ModelOut)
def archive_model(
    model_id: str, session: SessionDep, principal: PrincipalDep, body: ApproveBody | None = None
) -> ModelOut:
    """CANDIDATE / APPROVED → ARCHIVED: frees one of the tier's ``models_hosted`` slots (audited).
    409 for the PRODUCTION version or the candidate of an active rollout."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    rollout = rollouts.active_for(session, tenant_id)
    if rollout is not None and rollout.candidate_version == model_id:
        raise Conflict(
            f"{model_id} is the candidate of rollout {rollout.id}; abort or finish it first", field="model_id"
        )
    mv = service.archive(
        session, tenant_id, model_id, actor=principal.actor, note=body.note if body else None
    )
    return model_out(mv)


@router.post("/{model_id}/promote", response_model=ModelOut)
def promote_model(model_id: str, session: SessionDep, c: ContainerDep, principal: PrincipalDep) -> ModelOut:
    """APPROVED → PRODUCTION at full traffic, behind the deployment policy (gate, integrity, tenant state)."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    tenant = tenants.get(session, tenant_id)
    # 403 while budget-frozen; else the budget status and headroom for the deployment policy
    budget = deployment_context(session, tenant, now=c.finops.now(), action="promote a model")
    store, actor = c.providers.object_store, principal.actor
    mv = service.promote(session, c.policy, store, tenant, model_id, actor=actor, policy_overrides=budget)
    session.commit()
    c.providers.event_bus.publish(service.SERVING_TOPIC, {"tenant_id": tenant_id, "reason": "promoted"})
    return model_out(mv)
