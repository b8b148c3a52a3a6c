"""Rollout routes: start, read, pause, resume, promote, abort, emergency rollback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse

from control_plane.auth.scopes import Principal, Scope
from control_plane.deps import PrincipalDep, SessionDep, provided
from control_plane.errors import Conflict
from control_plane.http import problem
from control_plane.orm_base import utcnow
from control_plane.registry import deployment
from control_plane.registry import service as registry
from control_plane.rollouts import reconcile, service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.schemas import ReasonBody, RolloutCreate, RolloutOut
from control_plane.rollouts.states import RolloutState
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants
from providers.ports import ProviderError

RolloutsDep = Annotated[RolloutPorts, Depends(provided(RolloutPorts))]

router = APIRouter(prefix="/v1/rollouts", tags=["rollouts"])
OPERATORS = {Scope.TENANT_ADMIN, Scope.SRE}


def rollout_out(r: Rollout, *, read_back: dict[str, int] | None = None) -> RolloutOut:
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
        weights_read_back=read_back,
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
    body: RolloutCreate, session: SessionDep, c: RolloutsDep, principal: PrincipalDep
) -> RolloutOut:
    """Start a canary / linear / shadow rollout of an APPROVED candidate (deployment policy first)."""
    tenant_id = tenant_of(principal, OPERATORS)
    tenant = tenants.get(session, tenant_id)
    rollout = service.start(session, c, tenant, body.model_dump(), actor=principal.actor, now=utcnow())
    session.flush()  # column defaults (created_at); the request's session dependency commits
    return rollout_out(rollout)


@router.get("", response_model=list[RolloutOut])
def list_rollouts(
    session: SessionDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[RolloutOut]:
    tenant_id = tenant_of(principal, OPERATORS | {Scope.ANALYST})
    return [rollout_out(r) for r in service.list_for(session, tenant_id, limit)]


@router.get("/{rollout_id}", response_model=RolloutOut)
def get_rollout(rollout_id: str, session: SessionDep, c: RolloutsDep, principal: PrincipalDep) -> RolloutOut:
    """The rollout, with the weights read back from the model host now (on AWS, DescribeEndpoint)
    for its two versions: what serves, not what was asked for."""
    rollout = service.get(session, tenant_of(principal, OPERATORS | {Scope.ANALYST}), rollout_id)
    try:
        live = c.model_host.verify_weights(rollout.tenant_id)
    except ProviderError:
        return rollout_out(rollout)  # unknown now: null, never a guess
    versions = (rollout.stable_version, rollout.candidate_version)
    return rollout_out(rollout, read_back={v: int(live.get(v, 0)) for v in versions if v})


WEIGHTS_FAILED: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The state change is recorded and a reconcile is queued, but the model host "
        "did not take the weights (field `weights`; the worker retries)"
    }
}


def _weights_failed(rollout: Rollout, error: ProviderError) -> JSONResponse:
    # Answered, not raised: the request's transaction still commits the recorded intent and the
    # queued reconcile, which keeps retrying the weight change.
    return problem(
        503,
        "Weight change failed",
        f"the rollout is {rollout.state} and a reconcile is queued, but the model host did not "
        f"take the weights: {error}",
        field="weights",
        state=rollout.state,
        wanted=service.weights_for(rollout),
        retry_after_s=5,
    )


def _control(
    session: SessionDep,
    c: RolloutPorts,
    principal: Principal,
    rollout_id: str,
    target: RolloutState,
    reason: str,
) -> RolloutOut | JSONResponse:
    """Record the operator's intent, queue the reconcile, and move the weights now (read back)."""
    tenant_id = tenant_of(principal, OPERATORS)
    rollout = service.get(session, tenant_id, rollout_id, for_update=True)
    now = utcnow()
    if target is RolloutState.PROMOTED:
        # An operator's jump to 100 % is a deploy like any other: the one deployment decision, now
        # (the budget or the error budget may have frozen since the rollout started).
        candidate = registry.get(session, tenant_id, rollout.candidate_version)
        deployment.decide(
            session,
            c.deployment,
            tenants.get(session, tenant_id),
            candidate,
            strategy=rollout.strategy,
            emergency=rollout.emergency,
            action="promote a rollout",
            now=now,
        )
        service.finish_promotion(session, rollout, actor=principal.actor, reason=reason, now=now)
    else:
        service.transition(session, rollout, target, actor=principal.actor, reason=reason, now=now)
    service.schedule(session, rollout, at=now, refresh_serving=True)
    try:
        weights = reconcile.converge(session, c, rollout)
    except ProviderError as exc:
        return _weights_failed(rollout, exc)
    return rollout_out(rollout, read_back=weights)


@router.post("/{rollout_id}/pause", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def pause_rollout(
    rollout_id: str,
    session: SessionDep,
    c: RolloutsDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut | JSONResponse:
    return _control(session, c, principal, rollout_id, RolloutState.PAUSED, body.reason if body else "paused")


@router.post("/{rollout_id}/resume", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def resume_rollout(
    rollout_id: str, session: SessionDep, c: RolloutsDep, principal: PrincipalDep
) -> RolloutOut | JSONResponse:
    return _control(session, c, principal, rollout_id, RolloutState.PROGRESSING, "resumed")


@router.post("/{rollout_id}/promote", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def promote_rollout(
    rollout_id: str,
    session: SessionDep,
    c: RolloutsDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut | JSONResponse:
    """Skip the remaining steps: the candidate takes all traffic and becomes PRODUCTION."""
    return _control(
        session, c, principal, rollout_id, RolloutState.PROMOTED, body.reason if body else "promoted"
    )


@router.post("/{rollout_id}/abort", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def abort_rollout(
    rollout_id: str,
    session: SessionDep,
    c: RolloutsDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut | JSONResponse:
    """Stop: all traffic back to the stable version; the candidate stays APPROVED."""
    return _control(
        session, c, principal, rollout_id, RolloutState.ABORTED, body.reason if body else "aborted"
    )


@router.post(
    "/{rollout_id}/rollback",
    response_model=RolloutOut,
    responses={409: {"description": "The rollout has already finished"}, **WEIGHTS_FAILED},
)
def emergency_rollback(
    rollout_id: str, body: ReasonBody, session: SessionDep, c: RolloutsDep, principal: PrincipalDep
) -> RolloutOut | JSONResponse:
    """Emergency: skip analysis; the same rollback an alarm triggers (stable at 100 %, recorded,
    ROLLED_BACK, Slack / Teams notified by a queued job). Repeating it on a ROLLING_BACK rollout
    retries the weight change."""
    tenant_id = tenant_of(principal, OPERATORS)
    rollout = service.get(session, tenant_id, rollout_id, for_update=True)
    if RolloutState(rollout.state) not in (*service.ABORTABLE, RolloutState.ROLLING_BACK):
        raise Conflict(f"a {rollout.state} rollout cannot be rolled back", field="state")
    now = utcnow()
    service.record_abort(
        session,
        rollout,
        reason=f"emergency rollback by {principal.actor}: {body.reason}",
        evidence={"manual": True, "actor": principal.actor, "severity": "page"},
        actor=principal.actor,
        now=now,
    )
    try:
        outcome = reconcile.complete_rollback(session, c, rollout, actor=principal.actor, now=now)
    except ProviderError as exc:
        return _weights_failed(rollout, exc)
    return rollout_out(rollout, read_back=outcome.weights)
