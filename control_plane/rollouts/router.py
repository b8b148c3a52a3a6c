"""Rollout routes: start, read, pause, resume, promote, abort, emergency rollback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from control_plane.auth.scopes import Principal, Scope
from control_plane.container import Container
from control_plane.deps import ContainerDep, PrincipalDep, SessionDep
from control_plane.errors import Conflict
from control_plane.orm_base import utcnow
from control_plane.registry.service import SERVING_TOPIC
from control_plane.rollouts import service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.schemas import ReasonBody, RolloutCreate, RolloutOut
from control_plane.rollouts.states import RolloutState
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants

router = APIRouter(prefix="/v1/rollouts", tags=["rollouts"])
OPERATORS = {Scope.TENANT_ADMIN, Scope.SRE}


def rollout_out(r: Rollout) -> RolloutOut:
    return RolloutOut(
        id=r.id,
        candidate_version=r.candidate_version,
        stable_version=r.stable_version,
        strategy=r.strategy,
        steps=r.steps,
        bake_s=r.bake_s,
        min_requests=r.min_requests,
        state=r.state,
        phase=r.phase,
        step_index=r.step_index,
        weight_bp=r.weight_bp,
        weights=service.weights_for(r),
        step_started_at=r.step_started_at,
        analyses=r.analyses,
        emergency=r.emergency,
        status_reason=r.status_reason,
        created_by=r.created_by,
        created_at=r.created_at,
        finished_at=r.finished_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RolloutOut,
    responses={
        422: {"description": "Invalid, or denied by the deployment policy"},
        409: {"description": "A rollout is already running, or no PRODUCTION version"},
    },
)
def start_rollout(
    body: RolloutCreate, session: SessionDep, c: ContainerDep, principal: PrincipalDep
) -> RolloutOut:
    """Start a canary / linear / shadow rollout of an APPROVED candidate (deployment policy first)."""
    tenant_id = tenant_of(principal, OPERATORS)
    tenant = tenants.get(session, tenant_id)
    rollout = service.start(session, c, tenant, body.model_dump(), actor=principal.actor, now=utcnow())
    session.commit()
    c.on_enqueue()
    return rollout_out(rollout)


@router.get("", response_model=list[RolloutOut])
def list_rollouts(
    session: SessionDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[RolloutOut]:
    tenant_id = tenant_of(principal, OPERATORS | {Scope.ANALYST})
    return [rollout_out(r) for r in service.list_for(session, tenant_id, limit)]


@router.get("/{rollout_id}", response_model=RolloutOut)
def get_rollout(rollout_id: str, session: SessionDep, principal: PrincipalDep) -> RolloutOut:
    return rollout_out(service.get(session, tenant_of(principal, OPERATORS | {Scope.ANALYST}), rollout_id))


def _control(
    session: SessionDep,
    c: Container,
    principal: Principal,
    rollout_id: str,
    target: RolloutState,
    reason: str,
) -> RolloutOut:
    tenant_id = tenant_of(principal, OPERATORS)
    rollout = service.get(session, tenant_id, rollout_id, for_update=True)
    now = utcnow()
    if target is RolloutState.PROMOTED:
        service.finish_promotion(session, rollout, actor=principal.actor, reason=reason, now=now)
    else:
        service.transition(session, rollout, target, actor=principal.actor, reason=reason, now=now)
    service.schedule(session, rollout, at=now)  # the reconcile step applies the weights
    session.commit()
    # Reload first (every version the weights name gets deployed), then move the traffic.
    c.providers.event_bus.publish(
        SERVING_TOPIC, {"tenant_id": tenant_id, "reason": f"rollout {target.value}"}
    )
    weights = service.weights_for(rollout)
    if c.providers.model_host.weights(tenant_id) != weights:
        c.providers.model_host.set_weights(tenant_id, weights)
    c.on_enqueue()
    return rollout_out(rollout)


@router.post("/{rollout_id}/pause", response_model=RolloutOut)
def pause_rollout(
    rollout_id: str,
    session: SessionDep,
    c: ContainerDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut:
    return _control(session, c, principal, rollout_id, RolloutState.PAUSED, body.reason if body else "paused")


@router.post("/{rollout_id}/resume", response_model=RolloutOut)
def resume_rollout(
    rollout_id: str, session: SessionDep, c: ContainerDep, principal: PrincipalDep
) -> RolloutOut:
    return _control(session, c, principal, rollout_id, RolloutState.PROGRESSING, "resumed")


@router.post("/{rollout_id}/promote", response_model=RolloutOut)
def promote_rollout(
    rollout_id: str,
    session: SessionDep,
    c: ContainerDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut:
    """Skip the remaining steps: the candidate takes all traffic and becomes PRODUCTION."""
    return _control(
        session, c, principal, rollout_id, RolloutState.PROMOTED, body.reason if body else "promoted"
    )


@router.post("/{rollout_id}/abort", response_model=RolloutOut)
def abort_rollout(
    rollout_id: str,
    session: SessionDep,
    c: ContainerDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut:
    """Stop: all traffic back to the stable version; the candidate stays APPROVED."""
    return _control(
        session, c, principal, rollout_id, RolloutState.ABORTED, body.reason if body else "aborted"
    )


@router.post("/{rollout_id}/rollback", response_model=RolloutOut)
def emergency_rollback(
    rollout_id: str, body: ReasonBody, session: SessionDep, c: ContainerDep, principal: PrincipalDep
) -> RolloutOut:
    """Emergency: skip analysis, raise the rollback alarm (the same path as an automatic rollback)."""
    tenant_id = tenant_of(principal, OPERATORS)
    rollout = service.get(session, tenant_id, rollout_id)
    if RolloutState(rollout.state) not in (RolloutState.PROGRESSING, RolloutState.PAUSED):
        raise Conflict(f"a {rollout.state} rollout cannot be rolled back", field="state")
    alarm = service.alarm_message(
        rollout,
        reason=f"emergency rollback by {principal.actor}: {body.reason}",
        severity="page",
        evidence={"rollout_id": rollout.id, "manual": True, "actor": principal.actor},
    )
    session.commit()
    c.providers.event_bus.publish(service.ALARM_TOPIC, alarm)
    session.refresh(rollout)
    return rollout_out(rollout)
