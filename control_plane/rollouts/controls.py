"""An operator's steps on one rollout: read it with the weights read back from the model host,
pause / resume / promote / abort it, or roll it back in an emergency. The API's routes
(``rollouts.router``) and the console's pages (``web.rollout_pages``) run these same steps, so
both check the same scopes, guardrails and state machine, audit the same way and queue the same
reconcile. A step never commits; a weight change the model host refused is an answer
(``Controlled.failure``), not an exception, so the caller's transaction still commits the
recorded intent and the queued reconcile that keeps retrying it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from control_plane.auth.scopes import Principal, Scope
from control_plane.errors import Conflict
from control_plane.orm_base import utcnow
from control_plane.registry import deployment
from control_plane.registry import service as registry
from control_plane.rollouts import reconcile, service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.schemas import RolloutOut
from control_plane.rollouts.states import RolloutState
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants
from providers.ports import ProviderError

OPERATORS = frozenset({Scope.TENANT_ADMIN, Scope.SRE})
READERS = OPERATORS | {Scope.ANALYST}


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


@dataclass(frozen=True)
class Controlled:
    """A control step's outcome: the rollout as recorded, and the weights read back from the model
    host, or why the host did not take them (``failure``; a reconcile is queued and retries)."""

    rollout: Rollout
    read_back: dict[str, int] | None = None
    failure: ProviderError | None = None

    def out(self) -> RolloutOut:
        return rollout_out(self.rollout, read_back=self.read_back)

    @property
    def failure_detail(self) -> str:
        return (
            f"the rollout is {self.rollout.state} and a reconcile is queued, but the model host did "
            f"not take the weights: {self.failure}"
        )


def read(session: Session, c: RolloutPorts, principal: Principal, rollout_id: str) -> RolloutOut:
    """The caller's rollout, with the weights read back from the model host now (on AWS,
    DescribeEndpoint) for its two versions: what serves, not what was asked for."""
    rollout = service.get(session, tenant_of(principal, READERS), rollout_id)
    try:
        live = c.model_host.verify_weights(rollout.tenant_id)
    except ProviderError:
        return rollout_out(rollout)  # unknown now: null, never a guess
    versions = (rollout.stable_version, rollout.candidate_version)
    return rollout_out(rollout, read_back={v: int(live.get(v, 0)) for v in versions if v})


def control(
    session: Session,
    c: RolloutPorts,
    principal: Principal,
    rollout_id: str,
    target: RolloutState,
    reason: str,
) -> Controlled:
    """Record the operator's intent (pause, resume, promote, abort), queue the reconcile, and move
    the weights now (read back)."""
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
        return Controlled(rollout, failure=exc)
    return Controlled(rollout, read_back=weights)


def emergency_rollback(
    session: Session, c: RolloutPorts, principal: Principal, rollout_id: str, reason: str
) -> Controlled:
    """Skip analysis: the same rollback an alarm triggers (stable at 100 %, recorded, ROLLED_BACK,
    Slack / Teams notified by a queued job). Repeated on a ROLLING_BACK rollout, it retries the
    weight change; a finished rollout is 409."""
    tenant_id = tenant_of(principal, OPERATORS)
    rollout = service.get(session, tenant_id, rollout_id, for_update=True)
    if RolloutState(rollout.state) not in (*service.ABORTABLE, RolloutState.ROLLING_BACK):
        raise Conflict(f"a {rollout.state} rollout cannot be rolled back", field="state")
    now = utcnow()
    service.record_abort(
        session,
        rollout,
        reason=f"emergency rollback by {principal.actor}: {reason}",
        evidence={"manual": True, "actor": principal.actor, "severity": "page"},
        actor=principal.actor,
        now=now,
    )
    try:
        outcome = reconcile.complete_rollback(session, c, rollout, actor=principal.actor, now=now)
    except ProviderError as exc:
        return Controlled(rollout, failure=exc)
    return Controlled(rollout, read_back=outcome.weights)
