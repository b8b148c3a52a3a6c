"""Bus subscribers of the rollouts domain: they record intent and queue reconciles, nothing more.

* ``rollout.alarm`` (the in-process bus, or SNS through the control plane's receiver when
  ``bus_backend=sns``): argo's abort. The rollout becomes ROLLING_BACK with the alarm's evidence
  and a reconcile is queued, in one transaction; a repeated alarm changes nothing. The weights
  move in the reconcile (and, on AWS, in the rollback Lambda, which acts on the same alarm).
* ``serving.changed``: when no rollout is active and the host's weights are not "PRODUCTION at
  100 %" (a direct promotion), queue the tenant's traffic reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from control_plane.db import unit_of_work
from control_plane.orm_base import utcnow
from control_plane.registry import service as registry
from control_plane.registry.service import SERVING_TOPIC
from control_plane.rollouts import service
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.ports import RolloutPorts
from traffic import FULL_WEIGHT, InvalidAlarm, RolloutAlarm, served

log = logging.getLogger(__name__)

ALARM_ACTOR = "system:rollout-alarm"


def register_alarm_receiver(c: RolloutPorts) -> None:
    def on_alarm(_topic: str, message: Mapping[str, Any]) -> None:
        try:
            alarm = RolloutAlarm.from_message(message)
        except InvalidAlarm as exc:
            log.error("ignoring a malformed rollout alarm (%s): %s", exc, dict(message))
            return  # a redelivery cannot fix it
        with unit_of_work(c.factory) as session:
            rollout = session.scalar(
                select(Rollout)
                .where(Rollout.tenant_id == alarm.tenant_id, Rollout.id == alarm.rollout_id)
                .with_for_update()
            )
            if rollout is None:
                log.warning("alarm for unknown rollout %s of tenant %s", alarm.rollout_id, alarm.tenant_id)
                return
            service.record_abort(
                session,
                rollout,
                reason=alarm.reason,
                evidence={**alarm.evidence, "severity": alarm.severity, "source": "alarm"},
                actor=ALARM_ACTOR,
                now=utcnow(),
            )

    def on_serving_changed(_topic: str, message: Mapping[str, Any]) -> None:
        tenant_id = message.get("tenant_id")
        if not isinstance(tenant_id, str):
            return
        with unit_of_work(c.factory) as session:
            if service.active_for(session, tenant_id) is not None:
                return  # the rollout's reconcile owns the weights
            production = registry.production(session, tenant_id)
            if production is None:
                return
            if served(c.model_host.weights(tenant_id)) == {production.id: FULL_WEIGHT}:
                return
            service.schedule_tenant_traffic(session, tenant_id, now=utcnow())

    c.event_bus.subscribe(service.ALARM_TOPIC, on_alarm)
    c.event_bus.subscribe(SERVING_TOPIC, on_serving_changed)
