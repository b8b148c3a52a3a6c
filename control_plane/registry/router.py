"""Model registry routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from control_plane.auth.scopes import Scope
from control_plane.deps import PrincipalDep, SessionDep, provided
from control_plane.errors import Conflict
from control_plane.registry import deployment, service
from control_plane.registry.orm import ModelVersion
from control_plane.registry.ports import ActiveRollout
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants

DeployerDep = Annotated[deployment.DeploymentServices, Depends(provided(deployment.DeploymentServices))]

ActiveRolloutDep = Annotated[ActiveRollout, Depends(provided(ActiveRollout))]

router = APIRouter(prefix="/v1/models", tags=["models"])
READERS = {Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST}


class ModelOut(BaseModel):
    id: str
    stage: str
    sha256: str
    training_job_id: str | None
    training_run: dict[str, Any] | None = None  # backend job, SageMaker ARN, spot, billable seconds
    dataset_id: str | None
    dataset_sha256: str | None
    feature_set_version: str
    code_version: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    gate: dict[str, Any]
    reference_profile: dict[str, Any] | None = None  # bins, rates, data-quality facts (monitoring)
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
    model_id: str,
    session: SessionDep,
    active_rollout: ActiveRolloutDep,
    principal: PrincipalDep,
    body: ApproveBody | None = None,
) -> ModelOut:
    """CANDIDATE / APPROVED → ARCHIVED: frees one of the tier's ``models_hosted`` slots (audited).
    409 for the PRODUCTION version or the candidate of an active rollout."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    rollout = active_rollout(session, tenant_id)
    if rollout is not None and rollout[1] == model_id:
        raise Conflict(
            f"{model_id} is the candidate of rollout {rollout[0]}; abort or finish it first", field="model_id"
        )
    mv = service.archive(
        session, tenant_id, model_id, actor=principal.actor, note=body.note if body else None
    )
    return model_out(mv)


@router.post(
    "/{model_id}/promote",
    response_model=ModelOut,
    responses={
        403: {"description": "Wrong scope, or the FinOps budget is frozen (`reason: budget_frozen`)"},
        409: {
            "description": "Refused by the deployment policy: `reason` names the first rule (e.g. "
            "`error_budget_frozen` after a canary burned the error budget), `violations` all of them"
        },
    },
)
def promote_model(
    model_id: str, session: SessionDep, deployer: DeployerDep, principal: PrincipalDep
) -> ModelOut:
    """APPROVED → PRODUCTION at full traffic, behind the one deployment decision (gate, integrity,
    tenant state, FinOps budget, SLO error budget) that rollouts use too."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    tenant = tenants.get(session, tenant_id)
    mv = deployment.promote(session, deployer, tenant, model_id, actor=principal.actor, now=deployer.now())
    return model_out(mv)


@router.post(
    "/{model_id}/restore",
    response_model=ModelOut,
    responses={
        409: {"description": "Not ARCHIVED, over the `models_hosted` quota, or refused by the policy"}
    },
)
def restore_model(
    model_id: str,
    session: SessionDep,
    deployer: DeployerDep,
    principal: PrincipalDep,
    body: ApproveBody | None = None,
) -> ModelOut:
    """ARCHIVED → APPROVED (audited, through the deployment policy): the version can be promoted
    or rolled out again. Takes one of the tier's ``models_hosted`` slots."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    tenant = tenants.get(session, tenant_id)
    note = body.note if body else None
    return model_out(
        deployment.restore(
            session, deployer, tenant, model_id, actor=principal.actor, now=deployer.now(), note=note
        )
    )


class RollbackOut(BaseModel):
    production: ModelOut = Field(description="The version serving production now (the previous one)")
    replaced: str | None = Field(description="The version it replaced, now ARCHIVED")


@router.post(
    "/rollback-production",
    response_model=RollbackOut,
    responses={
        409: {
            "description": "No previous production version, a rollout in progress, or refused by the "
            "deployment policy (an exhausted error budget does not block the way back)"
        }
    },
)
def rollback_production(
    session: SessionDep,
    deployer: DeployerDep,
    active_rollout: ActiveRolloutDep,
    principal: PrincipalDep,
    body: ApproveBody | None = None,
) -> RollbackOut:
    """Back to the previous production version in one call: it is restored if archived and
    promoted (an emergency for the deployment policy); the current one is archived. Audited."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    rollout = active_rollout(session, tenant_id)
    if rollout is not None:
        raise Conflict(f"rollout {rollout[0]} is in progress; abort it first", field="rollout")
    tenant = tenants.get(session, tenant_id)
    note = body.note if body else None
    now_serving, replaced = deployment.rollback_production(
        session, deployer, tenant, actor=principal.actor, now=deployer.now(), note=note
    )
    return RollbackOut(production=model_out(now_serving), replaced=replaced.id if replaced else None)
