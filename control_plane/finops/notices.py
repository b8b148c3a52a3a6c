"""Budget notices: the threshold and cost-anomaly messages a budget evaluation claimed, sent once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane import events
from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.finops import repository as repo
from control_plane.outbox import emit
from guardrails.budget import BudgetThreshold
from providers.ports import DeliveryResult, Notification, Notifier

ACTOR = "system:finops"
THRESHOLD_TOPIC = events.BUDGET_THRESHOLD
ANOMALY_TOPIC = events.COST_ANOMALY

THRESHOLD_TEXT = {
    BudgetThreshold.ACTUAL_50: ("50% of the monthly budget spent", "info"),
    BudgetThreshold.ACTUAL_80: ("80% of the monthly budget spent", "warning"),
    BudgetThreshold.FORECAST_100: ("Forecast to exceed the monthly budget", "warning"),
    BudgetThreshold.ACTUAL_100: ("Monthly budget spent: new spend is frozen", "critical"),
}


def deliver_notices(
    factory: sessionmaker[Session],
    notifier: Notifier,
    tenant_id: str,
    month: str,
    contacts: Mapping[str, Any],
    thresholds: list[tuple[str, dict[str, Any]]],
    anomalies_due: list[tuple[str, dict[str, Any]]],
    now: datetime,
) -> None:
    """Send the claimed threshold and anomaly notices, then mark them delivered (with each
    channel's result) and announce them on the bus through the outbox, in one transaction."""
    if not thresholds and not anomalies_due:
        return
    delivered: dict[str, list[DeliveryResult]] = {}
    announced: list[tuple[str, dict[str, Any]]] = []
    for key, figures in thresholds:
        title, severity = THRESHOLD_TEXT[BudgetThreshold(key)]
        note = Notification(
            title=f"Fraudrail budget: {title}",
            text=(
                f"Tenant {tenant_id}, {month}: spent {figures['actual']} {figures['currency']} of "
                f"{figures['budget']}; forecast to month end {figures['forecast']}."
            ),
            severity=severity,
            facts={k: str(v) for k, v in figures.items() if k not in ("claimed_at", "delivered_at")},
        )
        delivered[key] = notifier.send(contacts, note)
        announced.append(
            (
                THRESHOLD_TOPIC,
                {"tenant_id": tenant_id, "month": month, "threshold": key, **_public(figures)},
            )
        )
    for day, figures in anomalies_due:
        note = Notification(
            title="Fraudrail cost anomaly",
            text=(
                f"Tenant {tenant_id}: {day} has cost {figures['cost']} {figures['currency']} so far, "
                f"against a median of {figures['median']} over the last {figures['history_days']} days."
            ),
            severity="warning",
            facts={k: str(v) for k, v in figures.items()},
        )
        delivered[f"anomaly:{day}"] = notifier.send(contacts, note)
        announced.append((ANOMALY_TOPIC, {"tenant_id": tenant_id, **figures}))
    with unit_of_work(factory) as session:
        for topic, message in announced:
            emit(session, topic, message)
        row = repo.get_month(session, tenant_id, month, for_update=True)
        if row is None:
            return
        notified = {k: dict(v) for k, v in (row.notified or {}).items()}
        anomalies = {k: dict(v) for k, v in (row.anomalies or {}).items()}
        for key, results in delivered.items():
            summary = [
                {"channel": r.channel, "ok": r.ok, "status": r.status, "error": r.error} for r in results
            ]
            target = (
                anomalies.get(key.removeprefix("anomaly:"))
                if key.startswith("anomaly:")
                else notified.get(key)
            )
            if target is not None:
                target["delivered_at"] = now.isoformat()
                target["deliveries"] = summary
        row.notified, row.anomalies = notified, anomalies
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=ACTOR,
            action="finops.notified",
            subject=tenant_id,
            after={"sent": sorted(delivered)},
            evidence={k: [r.ok for r in v] for k, v in delivered.items()},
        )


def _public(figures: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in ("claimed_at", "delivered_at", "deliveries")}
