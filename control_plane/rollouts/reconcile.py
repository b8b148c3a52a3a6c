"""The rollout reconcile step: the only control-plane code that sets traffic weights.

One durable ``rollout.reconcile`` job per tick, safe to repeat after a crash. Each run reads the
rollout and makes the model host serve what its state wants, through ``traffic.set_weights``
(written, read back, verified; a mismatch fails the job, which retries). Then, by state:

* PROGRESSING: one analysis tick (``analysis.step``); a failed step records the abort;
* ROLLING_BACK (an abort recorded by an alarm, a failed analysis or an operator):
  ``traffic.handle_alarm`` puts stable at 100 % and records the rollback once, then the rollout
  becomes ROLLED_BACK (audited) and a durable ``rollout.notify`` job is queued, in one transaction;
* PAUSED and the terminal states: the weights only.

The rollout routes call ``converge`` and ``complete_rollback`` in the request's transaction, so
the API answers with the weights read back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

import traffic
from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.errors import NotFound
from control_plane.jobs.worker import JobContext
from control_plane.notifications.rollback_notice import enqueue_rollback_notice
from control_plane.outbox import emit
from control_plane.registry import service as registry
from control_plane.registry.service import SERVING_TOPIC
from control_plane.rollouts import analysis, service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.states import TERMINAL, RolloutState
from providers.ports import HostedModel, ModelHost
from traffic import AlarmDeps, AlarmOutcome, RolloutAlarm
from traffic.alarm import SEVERITIES

log = logging.getLogger(__name__)

WORKER = analysis.WORKER
LAMBDA_ROLLED_BACK = "rolled back by the rollback Lambda (found in the rollback log)"


def traffic_deps(c: RolloutPorts) -> AlarmDeps:
    return AlarmDeps(model_host=c.model_host, rollback_log=c.rollback_log, metrics=c.metrics)


def _deploy(session: Session, host: ModelHost, tenant_id: str, version_ids: Iterable[str]) -> None:
    """Every version the weights name must be deployed on the host first (idempotent); only those:
    on SageMaker a deployed version is a variant of the tenant's endpoint."""
    for version_id in version_ids:
        mv = registry.get(session, tenant_id, version_id)
        host.deploy(HostedModel(tenant_id, mv.id, mv.artifact_key, mv.sha256))


def _canary(rollout: Rollout) -> str | None:
    active = RolloutState(rollout.state) in (RolloutState.PROGRESSING, RolloutState.PAUSED)
    return rollout.candidate_version if active else None


def converge(session: Session, c: RolloutPorts, rollout: Rollout) -> dict[str, int]:
    """Make the host serve the weights the rollout's state wants; returns them as read back.

    Raises ``traffic.WeightChangeFailed`` (or the host's ``ProviderError``) when they did not move.
    """
    host = c.model_host
    desired = service.weights_for(rollout)
    _deploy(session, host, rollout.tenant_id, desired)
    return traffic.set_weights(
        host,
        rollout.tenant_id,
        desired,
        canary=_canary(rollout),
        metrics=c.metrics,
    )


def rollback_alarm(session: Session, rollout: Rollout) -> RolloutAlarm:
    """The alarm a ROLLING_BACK rollout acts on: its recorded abort reason and evidence."""
    evidence = service.abort_evidence(session, rollout)
    severity = evidence.get("severity")
    return RolloutAlarm(
        tenant_id=rollout.tenant_id,
        rollout_id=rollout.id,
        stable_version=rollout.stable_version,
        canary_version=rollout.candidate_version,
        reason=rollout.status_reason or "rollout aborted",
        severity=severity if severity in SEVERITIES else "page",
        evidence=evidence,
        links=service.links(rollout),
    )


def finish_rollback(
    session: Session,
    rollout: Rollout,
    alarm: RolloutAlarm,
    outcome: AlarmOutcome,
    *,
    actor: str,
    now: datetime,
) -> None:
    """ROLLING_BACK → ROLLED_BACK (audited) and the durable notice, in the caller's transaction."""
    service.transition(
        session,
        rollout,
        RolloutState.ROLLED_BACK,
        actor=actor,
        reason=alarm.reason,
        evidence={
            **dict(outcome.record.evidence),
            "rollback_id": outcome.record.rollback_id,
            "weights_after": outcome.weights,
        },
        now=now,
    )
    enqueue_rollback_notice(
        session, alarm, now=now, rollback_id=outcome.record.rollback_id, weights_after=outcome.weights
    )


def complete_rollback(
    session: Session, c: RolloutPorts, rollout: Rollout, *, actor: str, now: datetime
) -> AlarmOutcome:
    """A ROLLING_BACK rollout, in one go in the caller's transaction (the emergency route)."""
    alarm = rollback_alarm(session, rollout)
    _deploy(
        session,
        c.model_host,
        rollout.tenant_id,
        (rollout.stable_version, rollout.candidate_version),
    )
    outcome = traffic.handle_alarm(alarm, traffic_deps(c))
    finish_rollback(session, rollout, alarm, outcome, actor=actor, now=now)
    return outcome


class ReconcileRollout:
    def __init__(self, ports: RolloutPorts) -> None:
        self.ports = ports

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        c = self.ports
        now = ctx.clock()
        tenant_id = str(ctx.payload["tenant_id"])
        if ctx.payload.get("rollout_id") is None:
            return self._tenant_traffic(ctx, c, tenant_id)
        rollout_id = str(ctx.payload["rollout_id"])
        host = c.model_host
        alarm: RolloutAlarm | None = None
        with unit_of_work(ctx.factory) as session:
            rollout = service.get(session, tenant_id, rollout_id, for_update=True)
            if RolloutState(rollout.state) in service.ABORTABLE and self._rolled_back_elsewhere(c, rollout):
                evidence = {"source": "rollback log", "rollback_id": traffic.rollback_id_for(rollout.id)}
                service.record_abort(
                    session, rollout, reason=LAMBDA_ROLLED_BACK, evidence=evidence, actor=WORKER, now=now
                )
            state = RolloutState(rollout.state)
            if state is RolloutState.ROLLING_BACK:
                alarm = rollback_alarm(session, rollout)
            desired, canary = service.weights_for(rollout), _canary(rollout)
            _deploy(session, host, tenant_id, desired)
        if alarm is not None:
            return self._roll_back(ctx, c, alarm, now)
        before = traffic.served(host.weights(tenant_id))
        weights = traffic.set_weights(host, tenant_id, desired, canary=canary, metrics=c.metrics)
        if traffic.served(weights) != before or ctx.payload.get("refresh_serving"):
            # Every process refreshes the tenant's routing (salt, shadow version, PRODUCTION).
            with unit_of_work(ctx.factory) as session:
                emit(session, SERVING_TOPIC, {"tenant_id": tenant_id, "reason": "rollout"})
        if state in TERMINAL or state is RolloutState.PAUSED:
            return {"state": state.value, "weights": weights}
        with unit_of_work(ctx.factory) as session:
            rollout = service.get(session, tenant_id, rollout_id, for_update=True)
            if RolloutState(rollout.state) is not RolloutState.PROGRESSING:
                return {"state": rollout.state, "weights": weights}  # an operator acted meanwhile
            return {**analysis.step(session, c, rollout, now), "weights": weights}

    def _roll_back(
        self, ctx: JobContext, c: RolloutPorts, alarm: RolloutAlarm, now: datetime
    ) -> dict[str, Any]:
        # The weight change runs outside any transaction (SageMaker may take minutes); a second
        # reconcile racing this one repeats it harmlessly and finds the rollout finished below.
        outcome = traffic.handle_alarm(alarm, traffic_deps(c))
        with unit_of_work(ctx.factory) as session:
            rollout = service.get(session, alarm.tenant_id, alarm.rollout_id, for_update=True)
            if RolloutState(rollout.state) is RolloutState.ROLLING_BACK:
                finish_rollback(session, rollout, alarm, outcome, actor=WORKER, now=now)
            emit(session, SERVING_TOPIC, {"tenant_id": alarm.tenant_id, "reason": "rolled back"})
        return {
            "state": RolloutState.ROLLED_BACK.value,
            "weights": outcome.weights,
            "rollback_id": outcome.record.rollback_id,
        }

    def _tenant_traffic(self, ctx: JobContext, c: RolloutPorts, tenant_id: str) -> dict[str, Any]:
        """No rollout named: the PRODUCTION version at 100 %, unless a rollout owns the weights."""
        host = c.model_host
        with unit_of_work(ctx.factory) as session:
            active = service.active_for(session, tenant_id)
            if active is not None:
                return {"skipped": f"rollout {active.id} owns the weights"}
            production = registry.production(session, tenant_id)
            if production is None:
                return {"skipped": "no PRODUCTION version"}
            _deploy(session, host, tenant_id, (production.id,))
        weights = traffic.set_weights(
            host, tenant_id, {production.id: traffic.FULL_WEIGHT}, metrics=c.metrics
        )
        return {"weights": weights}

    def _rolled_back_elsewhere(self, c: RolloutPorts, rollout: Rollout) -> bool:
        """The rollback Lambda acted on an alarm this process never saw (a shared rollback log)."""
        wanted = traffic.rollback_id_for(rollout.id)
        return any(r.rollback_id == wanted for r in c.rollback_log.list(rollout.tenant_id, limit=50))

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        rollout_id = ctx.payload.get("rollout_id")
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor=WORKER,
            action="rollout.reconcile_failed",
            subject=str(rollout_id),
            reason=error,
        )
        if rollout_id is None or ctx.tenant_id is None:
            return
        try:
            rollout = service.get(session, ctx.tenant_id, str(rollout_id))
        except NotFound:
            return  # the tenant was offboarded meanwhile
        if RolloutState(rollout.state) is RolloutState.ROLLING_BACK:
            # The traffic did not move after every retry: page the tenant's channels about it.
            enqueue_rollback_notice(session, rollback_alarm(session, rollout), now=ctx.clock(), error=error)
