"""The budget state machine of a tenant's month: ok → warning → frozen → throttled, lifted by a
budget raise or a new month. Thresholds notify once a month; a day's cost spike alerts once.

``evaluate`` is idempotent: a repeat recomputes the same state and sends nothing twice (a
notification is claimed in one transaction and marked delivered in the next; a claim left
undelivered by a crash is sent again after ``notify_resend_s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane import events
from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.errors import InvalidInput
from control_plane.finops import repository as repo
from control_plane.finops import service
from control_plane.finops.notices import THRESHOLD_TEXT, deliver_notices
from control_plane.finops.orm import BudgetMonth
from control_plane.finops.prices import cents
from control_plane.finops.settings import FinOpsSettings
from control_plane.jobs import queue
from control_plane.outbox import emit
from control_plane.tenants import repository as tenants
from control_plane.tenants.orm import Tenant
from guardrails.budget import (
    BudgetLevel,
    BudgetThreshold,
    budget_status,
    cost_anomaly,
    forecast_month_end,
    month_bounds,
    thresholds_to_notify,
)
from providers.ports import Notifier

EVALUATE_JOB = "finops.evaluate"
THRESHOLD_TOPIC = events.BUDGET_THRESHOLD  # re-exported: tests and docs name them here
ANOMALY_TOPIC = events.COST_ANOMALY
LIMITS_TOPIC = events.FINOPS_LIMITS
ACTOR = "system:finops"
THROTTLED = "throttled"
EVALUATED = ("ACTIVE", "SUSPENDED")


def status_of(row: BudgetMonth, level: BudgetLevel) -> str:
    if row.throttled_at is not None:
        return THROTTLED
    if row.frozen_at is not None:
        return BudgetLevel.FROZEN.value
    return BudgetLevel.WARNING.value if level is BudgetLevel.FROZEN else level.value


def ensure_evaluation(session: Session, tenant_id: str, *, now: datetime) -> bool:
    """Queue ``finops.evaluate`` for the tenant unless one is already waiting."""
    if repo.job_queued(session, EVALUATE_JOB, tenant_id):
        return False
    queue.enqueue(session, kind=EVALUATE_JOB, payload={"tenant_id": tenant_id}, tenant_id=tenant_id, now=now)
    return True


@dataclass
class _Outbox:
    thresholds: list[tuple[str, dict[str, Any]]]
    anomalies: list[tuple[str, dict[str, Any]]]


class BudgetEnforcer:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: FinOpsSettings,
        notifier: Notifier,
        *,
        templates: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.notifier = notifier
        self.templates = templates

    # --- evaluation (the finops.evaluate job) --------------------------------------------------

    def evaluate(self, tenant_id: str, *, now: datetime) -> dict[str, Any]:
        with unit_of_work(self.factory) as session:
            tenant = tenants.get(session, tenant_id)
            if tenant.status not in EVALUATED:
                return {"tenant_id": tenant_id, "skipped": True, "status": tenant.status}
            row, transitions, outbox = self._evaluate(session, tenant, now)
            contacts = dict(tenant.contacts or {})
            result = {
                "tenant_id": tenant_id,
                "month": row.month,
                "status": row.status,
                "actual": str(row.actual),
                "forecast": str(row.forecast),
                "budget": str(row.budget),
                "transitions": transitions,
                "notified": [t for t, _ in outbox.thresholds],
                "anomalies": [d for d, _ in outbox.anomalies],
            }
            if any(t.get("limits_changed") for t in transitions):
                emit(session, LIMITS_TOPIC, {"tenant_id": tenant_id, "reason": row.status})
        self._deliver(tenant_id, row.month, contacts, outbox, now)
        return result

    def _evaluate(
        self, session: Session, tenant: Tenant, now: datetime
    ) -> tuple[BudgetMonth, list[dict[str, Any]], _Outbox]:
        start, end = month_bounds(now)
        month = service.month_key(now)
        budget = Decimal(tenant.budget_amount)
        row = repo.lock_month(session, tenant.id, month, budget=budget, now=now)
        transitions: list[dict[str, Any]] = []
        if row.evaluated_at is None:
            transitions += self._new_month(session, tenant, month)
        actual = cents(service.month_to_date_cost(session, tenant.id, now))
        projected = forecast_month_end(actual, now, start, end)
        status = budget_status(actual, projected, budget)
        figures = {
            "actual": str(actual),
            "forecast": str(projected),
            "budget": str(budget),
            "currency": tenant.budget_currency,
            "actual_fraction": str(round(status.actual_fraction, 4)),
            "forecast_fraction": str(round(status.forecast_fraction, 4)),
        }
        before = row.status
        reason = None
        if status.level is BudgetLevel.FROZEN and row.frozen_at is None:
            row.frozen_at, reason = now, "actual spend reached 100% of the monthly budget"
        elif status.level is not BudgetLevel.FROZEN and row.frozen_at is not None:
            row.frozen_at, row.throttled_at, reason = (
                None,
                None,
                "spend is below the budget again (budget raised)",
            )
        grace = timedelta(seconds=self.settings.freeze_grace_s)
        if row.frozen_at is not None and row.throttled_at is None and now >= row.frozen_at + grace:
            row.throttled_at = now
            reason = (
                f"frozen for longer than the grace of {self.settings.freeze_grace_s:g} s: floor rate applies"
            )
        after = status_of(row, status.level)
        if after != before:
            transitions.append(self._transition(session, tenant, row, before, after, reason, figures))
        row.status = after
        row.actual, row.forecast, row.budget, row.evaluated_at = actual, projected, budget, now

        notified = {k: dict(v) for k, v in (row.notified or {}).items()}
        outbox = _Outbox([], [])
        already = {BudgetThreshold(k) for k in notified}
        for threshold in thresholds_to_notify(already, status):
            notified[threshold.value] = {"claimed_at": now.isoformat(), "delivered_at": None, **figures}
            audit.record(
                session,
                tenant_id=tenant.id,
                actor=ACTOR,
                action="finops.threshold_crossed",
                subject=tenant.id,
                reason=THRESHOLD_TEXT[threshold][0],
                after={"threshold": threshold.value, "month": month},
                evidence=figures,
            )
            outbox.thresholds.append((threshold.value, notified[threshold.value]))
        resend_before = now - timedelta(seconds=self.settings.notify_resend_s)
        for key, claim in notified.items():
            stale = (
                claim.get("delivered_at") is None
                and datetime.fromisoformat(claim["claimed_at"]) <= resend_before
            )
            if stale and all(k != key for k, _ in outbox.thresholds):
                claim["claimed_at"] = now.isoformat()
                outbox.thresholds.append((key, claim))
        row.notified = notified
        outbox.anomalies = self._anomaly(session, tenant, row, now)
        return row, transitions, outbox

    def _new_month(self, session: Session, tenant: Tenant, month: str) -> list[dict[str, Any]]:
        previous = repo.previous_month(session, tenant.id, month)
        if previous is None or previous.frozen_at is None:
            return []
        audit.record(
            session,
            tenant_id=tenant.id,
            actor=ACTOR,
            action="finops.budget.ok",
            subject=tenant.id,
            reason=f"a new month ({month}) lifts the freeze of {previous.month}",
            before={"status": previous.status, "month": previous.month},
            after={"status": BudgetLevel.OK.value, "month": month},
        )
        return [
            {
                "from": previous.status,
                "to": BudgetLevel.OK.value,
                "reason": "new month",
                "limits_changed": True,
            }
        ]

    def _transition(
        self,
        session: Session,
        tenant: Tenant,
        row: BudgetMonth,
        before: str,
        after: str,
        reason: str | None,
        figures: Mapping[str, str],
    ) -> dict[str, Any]:
        evidence: dict[str, Any] = dict(figures)
        if after == THROTTLED:
            evidence.update(floor_rps=self.settings.floor_rps, grace_s=self.settings.freeze_grace_s)
        audit.record(
            session,
            tenant_id=tenant.id,
            actor=ACTOR,
            action=f"finops.budget.{after}",
            subject=tenant.id,
            reason=reason or f"spend moved the budget from {before} to {after}",
            before={"status": before, "month": row.month},
            after={
                "status": after,
                "month": row.month,
                "frozen_at": row.frozen_at.isoformat() if row.frozen_at else None,
                "throttled_at": row.throttled_at.isoformat() if row.throttled_at else None,
            },
            evidence=evidence,
        )
        return {"from": before, "to": after, "reason": reason, "limits_changed": THROTTLED in (before, after)}

    def _anomaly(
        self, session: Session, tenant: Tenant, row: BudgetMonth, now: datetime
    ) -> list[tuple[str, dict[str, Any]]]:
        """Today's cost so far against the tenant's recent full days (robust z-score)."""
        today = now.date()
        first = max(today - timedelta(days=self.settings.anomaly_history_days), tenant.created_at.date())
        costs = repo.daily_costs(session, tenant.id, first, today)
        history = [costs.get(first + timedelta(days=i), Decimal("0")) for i in range((today - first).days)]
        today_cost = costs.get(today, Decimal("0"))
        found = cost_anomaly(
            today_cost,
            history,
            self.settings.anomaly_threshold,
            ratio_threshold=self.settings.anomaly_ratio,
            min_history=self.settings.anomaly_min_history,
        )
        day = today.isoformat()
        if not found.is_anomaly or day in (row.anomalies or {}):
            return []
        figures = {
            "day": day,
            "cost": str(cents(today_cost)),
            "median": str(cents(found.median or Decimal("0"))),
            "mad": str(found.mad),
            "score": str(round(found.score, 3)) if found.score is not None else None,
            "threshold": str(found.threshold),
            "method": found.method.value,
            "history_days": len(history),
            "currency": tenant.budget_currency,
        }
        row.anomalies = {**(row.anomalies or {}), day: {**figures, "claimed_at": now.isoformat()}}
        audit.record(
            session,
            tenant_id=tenant.id,
            actor=ACTOR,
            action="finops.cost_anomaly",
            subject=tenant.id,
            reason=f"cost of {day} is far above the recent days ({found.method.value})",
            evidence=figures,
        )
        return [(day, figures)]

    def _deliver(
        self, tenant_id: str, month: str, contacts: Mapping[str, Any], outbox: _Outbox, now: datetime
    ) -> None:
        deliver_notices(
            self.factory, self.notifier, tenant_id, month, contacts, outbox.thresholds, outbox.anomalies, now
        )

    # --- a budget change (PUT /v1/tenants/{id}/budget) -----------------------------------------

    def change_budget(
        self,
        session: Session,
        tenant_id: str,
        *,
        amount: Decimal,
        currency: str,
        actor: str,
        reason: str | None,
        now: datetime,
    ) -> bool:
        """Set the budget (audited); a raise above this month's spend lifts a freeze at once.

        Returns True when the tenant's rate limits change (a throttle lifted)."""
        tenant = tenants.get(session, tenant_id, for_update=True)
        cap = self.templates[tenant.tier].get("budget_cap") or {}
        if amount <= 0:
            raise InvalidInput("amount must be positive", field="amount")
        if cap and currency != cap.get("currency"):
            raise InvalidInput(
                f"the {tenant.tier} tier budgets in {cap.get('currency')}, not {currency}", field="currency"
            )
        if cap and amount > Decimal(str(cap["amount"])):
            raise InvalidInput(
                f"amount {amount} exceeds the {tenant.tier} tier cap of "
                f"{cap['amount']} {cap.get('currency')}",
                field="amount",
            )
        before = {"amount": str(tenant.budget_amount), "currency": tenant.budget_currency}
        tenant.budget_amount, tenant.budget_currency = amount, currency
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="finops.budget_changed",
            subject=tenant_id,
            reason=reason,
            before=before,
            after={"amount": str(amount), "currency": currency},
        )
        limits_changed = False
        row = repo.get_month(session, tenant_id, service.month_key(now), for_update=True)
        if row is not None:
            start, end = month_bounds(now)
            actual = cents(service.month_to_date_cost(session, tenant_id, now))
            status = budget_status(actual, forecast_month_end(actual, now, start, end), amount)
            row.budget = amount
            if row.frozen_at is not None and status.level is not BudgetLevel.FROZEN:
                was = row.status
                row.frozen_at, row.throttled_at = None, None
                row.status = status_of(row, status.level)
                figures = {"actual": str(actual), "budget": str(amount), "currency": currency}
                self._transition(
                    session, tenant, row, was, row.status, "budget raised above the spend", figures
                )
                limits_changed = was == THROTTLED
        if limits_changed:
            emit(session, LIMITS_TOPIC, {"tenant_id": tenant_id, "reason": "budget raised"})
        ensure_evaluation(session, tenant_id, now=now)
        return limits_changed
