"""Runs the rollback Lambda's handler locally, as a subscriber of the in-process event bus.

The same ``lambdas/rollback/handler.py`` runs on AWS behind SNS; here its callbacks write the
audit ledger and the rollout's state in the control plane's database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.orm_base import utcnow
from control_plane.registry.service import SERVING_TOPIC
from control_plane.rollouts import service
from control_plane.rollouts.states import TERMINAL, RolloutState
from providers.ports import DeliveryResult, RollbackRecord

if TYPE_CHECKING:
    from control_plane.container import Container

HANDLER_ACTOR = "system:rollback-handler"


def register_rollback_handler(c: Container) -> None:
    from control_plane.notifications.contacts import tenant_contacts
    from control_plane.notifications.local_rollback import subscribe_rollback_handler
    from lambdas.rollback.handler import RollbackDeps

    p = c.providers

    def on_rolled_back(alarm: Mapping[str, Any], record: RollbackRecord) -> None:
        with unit_of_work(c.factory) as session:
            rollout = service.get(session, str(alarm["tenant_id"]), str(alarm["rollout_id"]), for_update=True)
            if RolloutState(rollout.state) not in TERMINAL:
                service.transition(
                    session,
                    rollout,
                    RolloutState.ROLLED_BACK,
                    actor=HANDLER_ACTOR,
                    reason=str(alarm["reason"]),
                    evidence={
                        "rollback_id": record.rollback_id,
                        **dict(record.evidence),
                        "weights_after": dict(record.weights_after),
                    },
                    now=utcnow(),
                )
        p.event_bus.publish(SERVING_TOPIC, {"tenant_id": alarm["tenant_id"], "reason": "rolled back"})

    def on_notified(alarm: Mapping[str, Any], results: list[DeliveryResult]) -> None:
        deliveries = [
            {
                "channel": r.channel,
                "url": r.url,
                "ok": r.ok,
                "status": r.status,
                "attempts": r.attempts,
                "error": r.error,
            }
            for r in results
        ]
        with unit_of_work(c.factory) as session:
            audit.record(
                session,
                tenant_id=str(alarm["tenant_id"]),
                actor=HANDLER_ACTOR,
                action="rollout.notified",
                subject=str(alarm["rollout_id"]),
                evidence={"deliveries": deliveries},
            )

    deps = RollbackDeps(
        model_host=p.model_host,
        rollback_log=p.rollback_log,
        notifier=p.notifier,
        contacts_for=tenant_contacts(c.factory),
        on_rolled_back=on_rolled_back,
        on_notified=on_notified,
    )
    subscribe_rollback_handler(p.event_bus, deps, topic=service.ALARM_TOPIC)
