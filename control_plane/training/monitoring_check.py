"""The ``monitoring.check`` periodic job: is each tenant's champion still inside its policy?

For every ACTIVE tenant with a monitored PRODUCTION version it computes the latest day's drift
(which also publishes ``fraudrail_feature_psi`` for the score and every feature, so the gauges
stay fresh without anyone asking for a report), the performance over the days whose labels are
mature, and the days since the last retraining, and asks ``fraudrail.monitoring`` (question
"retrain"). Each violated rule is a reason; the thresholds are the tier template's. A reason
starts a retraining (trigger drift, performance or schedule, with the figures as evidence),
unless one is still open or the tier's cool-down since the last one has not passed.

A drift trigger waits for labels: its retraining is recorded ``waiting_for_labels`` until the
stored traffic reaches the drifting window's start plus ``label_maturity_days`` + ``compare_days``
+ ``drift_learn_days`` (the tier's): by then the challenger's training rows (which end
``compare_days`` before its frame, which ends ``label_maturity_days`` before its cut-off) hold
``drift_learn_days`` of the new traffic with mature labels. Each check queues a waiting
retraining whose time has come; nothing sleeps and no thread waits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db import unit_of_work
from control_plane.errors import DomainError, NotFound
from control_plane.jobs.worker import JobContext
from control_plane.monitoring import labels
from control_plane.monitoring import repository as monitoring
from control_plane.monitoring import service as drift_service
from control_plane.registry import service as registry
from control_plane.registry.orm import ModelVersion
from control_plane.tenants.lifecycle import TenantStatus
from control_plane.tenants.orm import Tenant
from control_plane.training import retraining
from guardrails.policy import PolicyEngine, PolicyEngineError
from providers.ports import MetricsSink

log = logging.getLogger(__name__)
CHECK_JOB = "monitoring.check"
POLICY = "fraudrail.monitoring"
ACTOR = "system:monitoring"
DRIFT_RULES = frozenset({"score_drift", "feature_drift"})
PERFORMANCE_RULES = frozenset({"precision_under_floor", "recall_under_floor"})
TRIGGER_RULES = DRIFT_RULES | PERFORMANCE_RULES | {"retrain_due"}


def drift_input(report: Any, ignored: set[str]) -> dict[str, Any]:
    watched = [f for f in report.features if f.feature not in ignored]
    worst = max(watched, key=lambda f: f.psi) if watched else None
    return {
        "volume": report.volume,
        "score_psi": report.score.psi,
        "max_feature_psi": worst.psi if worst else 0.0,
        "feature": worst.feature if worst else None,
        "window_start": report.window_start.isoformat(),
        "window_end": report.window_end.isoformat(),
    }


def performance_input(report: Any, maturity_days: int) -> dict[str, Any] | None:
    """Totals over the days whose labels have had ``maturity_days`` to arrive (None: no such day)."""
    mature = [d for d in report.days if d.label_maturity_days >= maturity_days and d.labelled]
    if not mature:
        return None
    flagged = sum(d.flagged for d in mature)
    fraud = sum(d.fraud for d in mature)
    caught = sum(d.review.fraud + d.suspicious.fraud for d in mature)
    return {
        "mature_days": min(d.label_maturity_days for d in mature),
        "days": len(mature),
        "labelled": sum(d.labelled for d in mature),
        "fraud": fraud,
        "flagged": flagged,
        "precision": round(caught / flagged, 6) if flagged else None,
        "recall": round(caught / fraud, 6) if fraud else None,
    }


def drift_wait(drift_doc: Mapping[str, Any], limits: Mapping[str, Any]) -> dict[str, Any]:
    """When a drift-triggered retraining may start, in traffic time, and why then."""
    maturity = float(limits.get("label_maturity_days", 7))
    compare = float(limits.get("compare_days", 3))
    learn = float(limits.get("drift_learn_days", 5))
    since = datetime.fromisoformat(str(drift_doc["window_start"])).astimezone(UTC)
    return {
        "drift_since": since.isoformat(),
        "start_after": (since + timedelta(days=maturity + compare + learn)).isoformat(),
        "label_maturity_days": maturity,
        "compare_days": compare,
        "drift_learn_days": learn,
    }


def trigger_of(rules: set[str]) -> str:
    if rules & DRIFT_RULES:
        return "drift"
    if rules & PERFORMANCE_RULES:
        return "performance"
    return "schedule"


class MonitoringCheck:
    def __init__(
        self, templates: Mapping[str, Mapping[str, Any]], policy: PolicyEngine, metrics: MetricsSink
    ) -> None:
        self.templates = templates
        self.policy = policy
        self.metrics = metrics

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        now = ctx.clock()
        with ctx.factory() as session:
            stmt = (
                select(Tenant.id)
                .join(ModelVersion, ModelVersion.tenant_id == Tenant.id)
                .where(Tenant.status == TenantStatus.ACTIVE.value, ModelVersion.stage == "PRODUCTION")
                .where(ModelVersion.reference_profile.is_not(None))
            )
            tenant_ids = sorted(set(session.scalars(stmt)))
        started: dict[str, str] = {}
        for tenant_id in tenant_ids:
            try:
                with unit_of_work(ctx.factory) as session:
                    outcome = self.check(session, tenant_id, now)
                if outcome:
                    started[tenant_id] = outcome
            except (PolicyEngineError, DomainError):
                log.warning("monitoring check of %s failed", tenant_id, exc_info=True)
        return {"tenants": len(tenant_ids), "retrainings": started}

    def check(self, session: Session, tenant_id: str, now: datetime) -> str | None:
        """Evaluate one tenant; returns the retraining it started, if any."""
        tenant = session.get(Tenant, tenant_id)
        champion = registry.production(session, tenant_id)
        if tenant is None or champion is None:
            return None
        limits = self.templates[tenant.tier].get("monitoring", {})
        try:
            drift = drift_service.drift(
                session, tenant_id, champion.id, "day", end=None, metrics=self.metrics
            )
            drift_doc: dict[str, Any] | None = drift_input(drift, set(limits.get("ignored_features", [])))
        except NotFound:  # no traffic yet
            drift_doc = None
        perf = labels.performance(session, tenant_id, version=champion.id, days=30, end=None)
        perf_doc = performance_input(perf, int(limits.get("label_maturity_days", 7)))
        last = retraining.latest(session, tenant_id)
        since = last.created_at if last is not None else champion.stage_changed_at
        document = {
            "question": "retrain",
            "tenant": {"tier": tenant.tier},
            "drift": drift_doc,
            "performance": perf_doc,
            "schedule": {"days_since_last": round((now - since.astimezone(UTC)).total_seconds() / 86_400, 4)},
        }
        decision = self.policy.evaluate(POLICY, document)
        waiting = retraining.waiting_for(session, tenant_id)
        if waiting is not None:
            return self._release_if_ready(session, waiting, now)
        rules = set(decision.rules)
        if rules - TRIGGER_RULES:
            log.warning("monitoring policy for %s: %s", tenant_id, [v.message for v in decision.violations])
        reasons = rules & TRIGGER_RULES
        if not reasons:
            return None
        if retraining.open_for(session, tenant_id) is not None:
            return None
        cooldown = timedelta(hours=float(limits.get("cooldown_hours", 24)))
        if last is not None and now - last.created_at.astimezone(UTC) < cooldown:
            return None
        violations = [
            {"rule": v.rule, "field": v.field, "message": v.message}
            for v in decision.violations
            if v.rule in reasons
        ]
        trigger = trigger_of(reasons)
        wait = drift_wait(drift_doc, limits) if trigger == "drift" and drift_doc else None
        row = retraining.start(
            session, tenant_id, trigger=trigger, actor=ACTOR, now=now, wait=wait,
            evidence={"policy": POLICY, "violations": violations, "input": document},
        )  # fmt: skip
        return row.id

    def _release_if_ready(self, session: Session, row: Any, now: datetime) -> str | None:
        """Queue a waiting retraining once the stored traffic has reached its start time."""
        start_after = retraining.start_after(row)
        traffic = monitoring.latest_scored(session, row.tenant_id, None)
        if start_after is None or traffic is None or traffic.astimezone(UTC) < start_after:
            return None
        status = retraining.release(session, row, traffic_time=traffic.astimezone(UTC), now=now, actor=ACTOR)
        return row.id if status == "queued" else None

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        log.warning("monitoring check %s failed: %s", ctx.job_id, error)
