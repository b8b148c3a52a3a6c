"""The rollout reconcile step: one durable job per step, each safe to repeat after a crash.

Each run reads the rollout, makes the model host's weights match it (idempotent), and either
waits for the step's bake time (checking the scaled page burn-rate alerts meanwhile), or
analyses the step: Successful advances (or promotes after the last step), Inconclusive holds,
Failed raises an alarm on the event bus, which the rollback handler acts on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.jobs.worker import JobContext
from control_plane.registry.service import SERVING_TOPIC
from control_plane.rollouts import service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.states import TERMINAL, RolloutState
from control_plane.slo import service as slo
from control_plane.tenants import repository as tenants
from guardrails.canary import AnalysisOutcome, AnalysisResult, AnalysisThresholds, Check, analyse_step
from guardrails.slo import scaled_windows

WORKER = "system:rollout-controller"
EARLY_CHECK_MIN_REQUESTS = 20


def _checks(result: AnalysisResult) -> list[dict[str, Any]]:
    return [
        {
            "metric": c.metric,
            "threshold": c.threshold,
            "observed": None if c.missing_data else round(c.observed, 6),
            "passed": c.passed,
        }
        for c in result.checks
    ]


class ReconcileRollout:
    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        c: Container = ctx.services
        now = ctx.clock()
        with unit_of_work(ctx.factory) as session:
            rollout = service.get(
                session, str(ctx.payload["tenant_id"]), str(ctx.payload["rollout_id"]), for_update=True
            )
            state = RolloutState(rollout.state)
            if state not in TERMINAL and self._rolled_back_elsewhere(c, rollout):
                service.transition(
                    session,
                    rollout,
                    RolloutState.ROLLED_BACK,
                    actor=WORKER,
                    reason="rolled back by the rollback handler",
                    now=now,
                )
                state = RolloutState.ROLLED_BACK
            desired = service.weights_for(rollout)
            tenant_id, rollout_id = rollout.tenant_id, rollout.id
        self._apply(c, tenant_id, desired)
        if state in TERMINAL or state is RolloutState.PAUSED:
            return {"state": state.value, "weights": desired}
        with unit_of_work(ctx.factory) as session:
            rollout = service.get(session, tenant_id, rollout_id, for_update=True)
            outcome, alarm = self._step(session, c, rollout, now)
        if alarm is not None:
            # Published after the commit: the handler's callback then sees the recorded analysis.
            c.providers.event_bus.publish(service.ALARM_TOPIC, alarm)
        return outcome

    def _apply(self, c: Container, tenant_id: str, desired: Mapping[str, int]) -> None:
        host = c.providers.model_host
        if host.weights(tenant_id) == dict(desired):
            return  # already applied: no reload, no weight change
        # Every process reloads the tenant (this one synchronously): both versions get deployed
        # on the model host before the weights reference them.
        c.providers.event_bus.publish(SERVING_TOPIC, {"tenant_id": tenant_id, "reason": "rollout"})
        if host.weights(tenant_id) != dict(desired):
            host.set_weights(tenant_id, desired)

    def _rolled_back_elsewhere(self, c: Container, rollout: Rollout) -> bool:
        log = c.providers.rollback_log
        return any(r.evidence.get("rollout_id") == rollout.id for r in log.list(rollout.tenant_id, limit=50))

    def _step(
        self, session: Session, c: Container, rollout: Rollout, now: datetime
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        tenant = tenants.get(session, rollout.tenant_id)
        objective, latency_ms = slo.slo_for(c.template(tenant.tier))
        start, until = service.step_window(rollout, now)
        # Samples are bucketed: a bucket that began just before the step started still counts.
        since = start - timedelta(seconds=c.scoring.recorder.bucket_s)
        cohort = "shadow" if rollout.phase == "shadow" else "canary"
        canary = slo.totals(
            session,
            rollout.tenant_id,
            since=since,
            until=until,
            version=rollout.candidate_version,
            cohort=cohort,
        )
        # The stable baseline covers the whole rollout: at a 100% step the stable cohort gets no traffic.
        stable = slo.totals(
            session,
            rollout.tenant_id,
            since=rollout.created_at - timedelta(seconds=c.scoring.recorder.bucket_s),
            until=until,
            version=rollout.stable_version,
            cohort="stable",
        )
        bake_end = start + timedelta(seconds=rollout.bake_s)
        early = self._early_failure(
            session, rollout, objective, now, cohort, canary.requests, c.scoring.recorder.bucket_s
        )
        if now < bake_end and early is None:
            tick = min(max(rollout.bake_s / 6.0, 0.5), 5.0)
            service.schedule(session, rollout, at=min(bake_end, now + timedelta(seconds=tick)))
            return {
                "state": rollout.state,
                "waiting_until": bake_end.isoformat(),
                "canary_requests": canary.requests,
            }, None
        thresholds = AnalysisThresholds(
            slo=objective, latency_slo_p95_ms=latency_ms, min_requests=rollout.min_requests
        )
        pairs = None
        if cohort == "shadow":
            pairs = [(True, False)] * canary.flips + [(True, True)] * (canary.pairs - canary.flips)
        result = early or analyse_step(slo.cohort_stats(canary), slo.cohort_stats(stable), thresholds, pairs)
        record: dict[str, Any] = {
            "step_index": rollout.step_index,
            "phase": rollout.phase,
            "weight_bp": rollout.weight_bp,
            "outcome": result.outcome.value,
            "checks": _checks(result),
            "at": now.isoformat(),
            "window": [start.isoformat(), now.isoformat()],
            "canary_requests": canary.requests,
            "stable_requests": stable.requests,
        }
        rollout.analyses = [*rollout.analyses, record]
        audit.record(
            session,
            tenant_id=rollout.tenant_id,
            actor=WORKER,
            action="rollout.analysis",
            subject=rollout.id,
            reason=result.outcome.value,
            evidence=record,
        )
        if result.outcome is AnalysisOutcome.FAILED:
            failed = [ch for ch in record["checks"] if not ch["passed"] and ch["observed"] is not None]
            first = failed[0] if failed else {"metric": "analysis", "threshold": None, "observed": None}
            reason = (
                f"canary analysis failed: {first['metric']} observed {first['observed']} against "
                f"threshold {first['threshold']}"
            )
            evidence = {**first, "rollout_id": rollout.id, "checks": failed, "step_index": rollout.step_index}
            alarm = service.alarm_message(rollout, reason=reason, severity="page", evidence=evidence)
            service.schedule(session, rollout, at=now + timedelta(seconds=2))
            return {"state": rollout.state, "outcome": "Failed", "reason": reason}, alarm
        if result.outcome is AnalysisOutcome.INCONCLUSIVE:
            service.schedule(session, rollout, at=now + timedelta(seconds=max(rollout.bake_s / 2.0, 0.5)))
            return {"state": rollout.state, "outcome": "Inconclusive"}, None
        return self._advance(session, rollout, now), None

    def _early_failure(
        self,
        session: Session,
        rollout: Rollout,
        objective: Any,
        now: datetime,
        cohort: str,
        canary_requests: int,
        bucket_s: int,
    ) -> AnalysisResult | None:
        """The workbook's page rules, scaled to the bake time, on the canary cohort alone."""
        if canary_requests < EARLY_CHECK_MIN_REQUESTS:
            return None
        rules = scaled_windows(float(rollout.bake_s), min_window_s=float(bucket_s))
        alerts, _ratios = slo.burn_alerts(
            session,
            rollout.tenant_id,
            objective,
            now=now,
            rules=rules,
            version=rollout.candidate_version,
            cohort=cohort,
            bucket_s=bucket_s,
        )
        if not alerts:
            return None
        a = alerts[0]
        return AnalysisResult(
            AnalysisOutcome.FAILED,
            [
                Check(f"burn_rate_{int(a.long_window_s)}s", a.threshold, a.burn_rate_long, False),
                Check(f"burn_rate_{int(a.short_window_s)}s", a.threshold, a.burn_rate_short, False),
            ],
        )

    def _advance(self, session: Session, rollout: Rollout, now: datetime) -> dict[str, Any]:
        if rollout.phase == "shadow":
            rollout.phase = "canary"
            rollout.step_index = 0
            rollout.weight_bp = rollout.steps[0]
        elif rollout.step_index + 1 >= len(rollout.steps):
            service.finish_promotion(
                session, rollout, actor=WORKER, reason="every step passed its analysis", now=now
            )
            service.schedule(session, rollout, at=now)
            return {"state": RolloutState.PROMOTED.value}
        else:
            rollout.step_index += 1
            rollout.weight_bp = rollout.steps[rollout.step_index]
        rollout.step_started_at = now
        audit.record(
            session,
            tenant_id=rollout.tenant_id,
            actor=WORKER,
            action="rollout.step",
            subject=rollout.id,
            after={"phase": rollout.phase, "step_index": rollout.step_index, "weight_bp": rollout.weight_bp},
        )
        service.schedule(session, rollout, at=now)
        return {"state": rollout.state, "phase": rollout.phase, "weight_bp": rollout.weight_bp}

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor=WORKER,
            action="rollout.reconcile_failed",
            subject=str(ctx.payload.get("rollout_id")),
            reason=error,
        )


if TYPE_CHECKING:
    from control_plane.container import Container
