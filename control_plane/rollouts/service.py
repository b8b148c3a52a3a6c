"""Rollout use cases: start behind the deployment policy, manual controls, and the reconcile step."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane import events
from control_plane.audit import service as audit
from control_plane.audit.orm import AuditEvent
from control_plane.errors import Conflict, InvalidInput, NotFound
from control_plane.ids import new_id
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.registry import deployment
from control_plane.registry import service as registry
from control_plane.registry.stages import Stage
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.states import TERMINAL, RolloutState, check_edge
from control_plane.tenants.orm import Tenant

RECONCILE_JOB = "rollout.reconcile"
ALARM_TOPIC = events.ROLLOUT_ALARM
ABORT_ACTION = "rollout.rolling_back"  # the audit action that holds an abort's evidence
ACTIVE = (RolloutState.PROGRESSING.value, RolloutState.PAUSED.value, RolloutState.ROLLING_BACK.value)
ABORTABLE = (RolloutState.PROGRESSING, RolloutState.PAUSED)


def get(session: Session, tenant_id: str, rollout_id: str, *, for_update: bool = False) -> Rollout:
    stmt = select(Rollout).where(Rollout.tenant_id == tenant_id, Rollout.id == rollout_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"rollout {rollout_id} not found", field="rollout_id")
    return found


def active_for(session: Session, tenant_id: str) -> Rollout | None:
    return session.scalar(select(Rollout).where(Rollout.tenant_id == tenant_id, Rollout.state.in_(ACTIVE)))


def list_for(session: Session, tenant_id: str, limit: int = 50) -> list[Rollout]:
    stmt = (
        select(Rollout).where(Rollout.tenant_id == tenant_id).order_by(Rollout.created_at.desc()).limit(limit)
    )
    return list(session.scalars(stmt))


def plan_steps(strategy: str, steps: list[int] | None, step_size: int | None) -> list[int]:
    """Weights in basis points, ending at 10000."""
    if strategy == "linear":
        size = step_size or 2000
        planned = [*list(range(size, 10000, size)), 10000]
    else:
        planned = list(steps or [1000, 5000, 10_000])
    if not planned or planned[-1] != 10_000 or any(b <= a for a, b in itertools.pairwise(planned)):
        raise InvalidInput("steps must increase strictly and end at 10000 (100%)", field="steps")
    if planned[0] <= 0:
        raise InvalidInput("the first step must send some traffic to the canary", field="steps")
    return planned


def start(
    session: Session,
    c: RolloutPorts,
    tenant: Tenant,
    request: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
) -> Rollout:
    """Check the deployment policy, record the rollout PROGRESSING and queue its first reconcile."""
    if active_for(session, tenant.id) is not None:
        raise Conflict(
            "this tenant already has a rollout in progress; finish or abort it first", field="candidate"
        )
    candidate = registry.get(session, tenant.id, str(request["candidate_version"]))
    stable = registry.production(session, tenant.id)
    if stable is None:
        raise Conflict(
            "there is no PRODUCTION version to roll out against: promote the first model directly",
            field="candidate_version",
        )
    if stable.id == candidate.id:
        raise Conflict("the candidate is already in PRODUCTION", field="candidate_version")
    strategy = str(request["strategy"])
    emergency = bool(request.get("emergency", False))
    # The one deployment decision (registry.deployment), the same a direct promote goes through.
    document = deployment.decide(
        session,
        c.deployment,
        tenant,
        candidate,
        strategy=strategy,
        emergency=emergency,
        action="start a rollout",
        now=now,
    )
    steps = plan_steps(strategy, request.get("steps"), request.get("step_size"))
    shadow = strategy == "shadow"
    rollout = Rollout(
        id=new_id("ro"),
        tenant_id=tenant.id,
        candidate_version=candidate.id,
        stable_version=stable.id,
        strategy=strategy,
        steps=steps,
        bake_s=int(request["bake_s"]),
        min_requests=int(request["min_requests"]),
        state=RolloutState.PROGRESSING.value,
        phase="shadow" if shadow else "canary",
        step_index=0,
        weight_bp=0 if shadow else steps[0],
        step_started_at=now,
        analyses=[],
        salt=secrets.token_hex(16),
        emergency=emergency,
        created_by=actor,
    )
    session.add(rollout)
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="rollout.started",
        subject=rollout.id,
        after={
            "candidate": candidate.id,
            "stable": stable.id,
            "strategy": strategy,
            "steps": steps,
            "bake_s": rollout.bake_s,
        },
        evidence={"policy": "fraudrail.deployment", "input": document},
    )
    queue.enqueue(
        session,
        kind=RECONCILE_JOB,
        payload={"tenant_id": tenant.id, "rollout_id": rollout.id},
        tenant_id=tenant.id,
        now=now,
    )
    return rollout


def transition(
    session: Session,
    rollout: Rollout,
    target: RolloutState,
    *,
    actor: str,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
    now: datetime,
) -> None:
    current = RolloutState(rollout.state)
    check_edge(current, target)
    rollout.state = target.value
    rollout.status_reason = reason
    if target in TERMINAL:
        rollout.finished_at = now
    audit.record(
        session,
        tenant_id=rollout.tenant_id,
        actor=actor,
        action=f"rollout.{target.value.lower()}",
        subject=rollout.id,
        reason=reason,
        before={"state": current.value},
        after={"state": target.value, "weight_bp": rollout.weight_bp},
        evidence=evidence,
    )


def weights_for(rollout: Rollout) -> dict[str, int]:
    """The model-host weights a rollout in its current state wants."""
    state = RolloutState(rollout.state)
    if state is RolloutState.PROMOTED:
        return {rollout.candidate_version: 10_000}
    if state in (RolloutState.ABORTED, RolloutState.ROLLING_BACK, RolloutState.ROLLED_BACK):
        return {rollout.stable_version: 10_000, rollout.candidate_version: 0}
    if rollout.phase == "shadow":
        return {rollout.stable_version: 10_000, rollout.candidate_version: 0}
    return {rollout.stable_version: 10_000 - rollout.weight_bp, rollout.candidate_version: rollout.weight_bp}


def finish_promotion(session: Session, rollout: Rollout, *, actor: str, reason: str, now: datetime) -> None:
    """Candidate → PRODUCTION, stable → ARCHIVED, rollout PROMOTED (one transaction)."""
    candidate = registry.get(session, rollout.tenant_id, rollout.candidate_version, for_update=True)
    stable = registry.get(session, rollout.tenant_id, rollout.stable_version, for_update=True)
    if stable.stage == Stage.PRODUCTION.value:
        registry.set_stage(session, stable, Stage.ARCHIVED, actor=actor, reason=f"replaced by {candidate.id}")
    if candidate.stage != Stage.PRODUCTION.value:
        registry.set_stage(
            session, candidate, Stage.PRODUCTION, actor=actor, reason=reason, evidence={"rollout": rollout.id}
        )
    rollout.weight_bp = 10_000
    transition(session, rollout, RolloutState.PROMOTED, actor=actor, reason=reason, now=now)


def schedule(session: Session, rollout: Rollout, *, at: datetime, refresh_serving: bool = False) -> Job:
    """Queue a reconcile tick; ``refresh_serving``: the tick tells every process to reload the
    tenant's routing even when the weights are already right (an operator moved them)."""
    payload: dict[str, Any] = {"tenant_id": rollout.tenant_id, "rollout_id": rollout.id}
    if refresh_serving:
        payload["refresh_serving"] = True
    return queue.enqueue(session, kind=RECONCILE_JOB, payload=payload, tenant_id=rollout.tenant_id, now=at)


def schedule_tenant_traffic(session: Session, tenant_id: str, *, now: datetime) -> Job:
    """Queue a reconcile of the tenant's weights outside any rollout (after a direct promotion:
    the PRODUCTION version at 100 %)."""
    return queue.enqueue(
        session, kind=RECONCILE_JOB, payload={"tenant_id": tenant_id}, tenant_id=tenant_id, now=now
    )


def record_abort(
    session: Session,
    rollout: Rollout,
    *,
    reason: str,
    evidence: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> bool:
    """Record the abort (ROLLING_BACK, its evidence in the audit ledger) and queue the reconcile
    that acts on it, in the caller's transaction. False when the rollout is already rolling back
    or finished: a repeated alarm changes nothing."""
    if RolloutState(rollout.state) not in ABORTABLE:
        return False
    transition(
        session,
        rollout,
        RolloutState.ROLLING_BACK,
        actor=actor,
        reason=reason,
        evidence={**evidence, "rollout_id": rollout.id},
        now=now,
    )
    schedule(session, rollout, at=now)
    return True


def abort_evidence(session: Session, rollout: Rollout) -> dict[str, Any]:
    """The evidence recorded with the rollout's abort (``{}`` if the ledger has none)."""
    stmt = (
        select(AuditEvent.evidence)
        .where(
            AuditEvent.tenant_id == rollout.tenant_id,
            AuditEvent.subject == rollout.id,
            AuditEvent.action == ABORT_ACTION,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return dict(session.scalar(stmt) or {})


def links(rollout: Rollout) -> dict[str, str]:
    return {"rollout": f"/v1/rollouts/{rollout.id}", "audit": f"/v1/tenants/{rollout.tenant_id}/audit"}


def step_window(rollout: Rollout, now: datetime) -> tuple[datetime, datetime]:
    start = rollout.step_started_at or now
    return start, now + timedelta(seconds=1)


def active_candidate(session: Session, tenant_id: str) -> tuple[str, str] | None:
    """The registry's ``ActiveRollout``: (rollout id, candidate version) of the active rollout."""
    rollout = active_for(session, tenant_id)
    return None if rollout is None else (rollout.id, rollout.candidate_version)
