"""Rollout routes: start, read, pause, resume, promote, abort, emergency rollback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse

from control_plane.deps import PrincipalDep, SessionDep, provided
from control_plane.http import problem
from control_plane.orm_base import utcnow
from control_plane.rollouts import controls, service
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.schemas import ReasonBody, RolloutCreate, RolloutOut
from control_plane.rollouts.states import RolloutState
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants

RolloutsDep = Annotated[RolloutPorts, Depends(provided(RolloutPorts))]

router = APIRouter(prefix="/v1/rollouts", tags=["rollouts"])
OPERATORS = controls.OPERATORS


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
    return controls.rollout_out(rollout)


@router.get("", response_model=list[RolloutOut])
def list_rollouts(
    session: SessionDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[RolloutOut]:
    tenant_id = tenant_of(principal, controls.READERS)
    return [controls.rollout_out(r) for r in service.list_for(session, tenant_id, limit)]


@router.get("/{rollout_id}", response_model=RolloutOut)
def get_rollout(rollout_id: str, session: SessionDep, c: RolloutsDep, principal: PrincipalDep) -> RolloutOut:
    """The rollout, with the weights read back from the model host now (on AWS, DescribeEndpoint)
    for its two versions: what serves, not what was asked for."""
    return controls.read(session, c, principal, rollout_id)


WEIGHTS_FAILED: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The state change is recorded and a reconcile is queued, but the model host "
        "did not take the weights (field `weights`; the worker retries)"
    }
}


def _answer(done: controls.Controlled) -> RolloutOut | JSONResponse:
    if done.failure is None:
        return done.out()
    # Answered, not raised: the request's transaction still commits the recorded intent and the
    # queued reconcile, which keeps retrying the weight change.
    return problem(
        503,
        "Weight change failed",
        done.failure_detail,
        field="weights",
        state=done.rollout.state,
        wanted=service.weights_for(done.rollout),
        retry_after_s=5,
    )


@router.post("/{rollout_id}/pause", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def pause_rollout(
    rollout_id: str,
    session: SessionDep,
    c: RolloutsDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut | JSONResponse:
    reason = body.reason if body else "paused"
    return _answer(controls.control(session, c, principal, rollout_id, RolloutState.PAUSED, reason))


@router.post("/{rollout_id}/resume", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def resume_rollout(
    rollout_id: str, session: SessionDep, c: RolloutsDep, principal: PrincipalDep
) -> RolloutOut | JSONResponse:
    return _answer(controls.control(session, c, principal, rollout_id, RolloutState.PROGRESSING, "resumed"))


@router.post("/{rollout_id}/promote", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def promote_rollout(
    rollout_id: str,
    session: SessionDep,
    c: RolloutsDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut | JSONResponse:
    """Skip the remaining steps: the candidate takes all traffic and becomes PRODUCTION."""
    reason = body.reason if body else "promoted"
    return _answer(controls.control(session, c, principal, rollout_id, RolloutState.PROMOTED, reason))


@router.post("/{rollout_id}/abort", response_model=RolloutOut, responses=WEIGHTS_FAILED)
def abort_rollout(
    rollout_id: str,
    session: SessionDep,
    c: RolloutsDep,
    principal: PrincipalDep,
    body: ReasonBody | None = None,
) -> RolloutOut | JSONResponse:
    """Stop: all traffic back to the stable version; the candidate stays APPROVED."""
    reason = body.reason if body else "aborted"
    return _answer(controls.control(session, c, principal, rollout_id, RolloutState.ABORTED, reason))


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
    return _answer(controls.emergency_rollback(session, c, principal, rollout_id, body.reason))
