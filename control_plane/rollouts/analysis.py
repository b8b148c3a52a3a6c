"""The analysis half of a rollout's reconcile tick: bake, check the page rules early, analyse.

Successful advances the step (or promotes after the last), Inconclusive holds, Failed records
the abort (argo's ``abort``: state ROLLING_BACK, evidence in the audit ledger) and queues the
reconcile that moves the traffic. Nothing here touches the model host.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.rollouts import service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.states import RolloutState
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


def step(session: Session, c: RolloutPorts, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """One analysis tick of a PROGRESSING rollout (in the caller's transaction): wait, hold,
    advance, promote, or, when the step failed, record the abort and queue its reconcile."""
    tenant = tenants.get(session, rollout.tenant_id)
    objective, latency_ms = slo.slo_for(c.template(tenant.tier))
    start, until = service.step_window(rollout, now)
    # Samples are bucketed: a bucket that began just before the step started still counts.
    since = start - timedelta(seconds=c.recorder.bucket_s)
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
        since=rollout.created_at - timedelta(seconds=c.recorder.bucket_s),
        until=until,
        version=rollout.stable_version,
        cohort="stable",
    )
    bake_end = start + timedelta(seconds=rollout.bake_s)
    early = _early_failure(session, rollout, objective, now, cohort, canary.requests, c.recorder.bucket_s)
    if now < bake_end and early is None:
        tick = min(max(rollout.bake_s / 6.0, 0.5), 5.0)
        service.schedule(session, rollout, at=min(bake_end, now + timedelta(seconds=tick)))
        return {
            "state": rollout.state,
            "waiting_until": bake_end.isoformat(),
            "canary_requests": canary.requests,
        }
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
        evidence = {**first, "checks": failed, "step_index": rollout.step_index, "severity": "page"}
        service.record_abort(session, rollout, reason=reason, evidence=evidence, actor=WORKER, now=now)
        return {"state": rollout.state, "outcome": "Failed", "reason": reason}
    if result.outcome is AnalysisOutcome.INCONCLUSIVE:
        service.schedule(session, rollout, at=now + timedelta(seconds=max(rollout.bake_s / 2.0, 0.5)))
        return {"state": rollout.state, "outcome": "Inconclusive"}
    return _advance(session, rollout, now)


def _early_failure(
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


def _advance(session: Session, rollout: Rollout, now: datetime) -> dict[str, Any]:
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
