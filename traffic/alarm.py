"""``handle_alarm``: a rollout alarm moves the tenant's traffic to stable and records the rollback once.

Shared by the rollback Lambda (an SNS alarm, on AWS) and the control plane's rollout reconcile (an
aborted rollout). Order: weights first (written, read back, verified), then one ``RollbackRecord``
(id ``rb_<rollout_id>``) in the rollback log. A repeat (a redelivered alarm, or the Lambda and the
control plane both acting) re-asserts the weights and finds the record already there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers.ports import MetricsSink, ModelHost, RollbackLog, RollbackRecord
from traffic.weights import FULL_WEIGHT, set_weights

log = logging.getLogger(__name__)

ALARM_TYPE = "rollout.alarm"
ROLLBACKS_METRIC = "fraudrail_rollbacks_total"
SEVERITIES = ("page", "ticket", "analysis")
_REQUIRED = ("tenant_id", "rollout_id", "stable_version", "canary_version", "reason")


class InvalidAlarm(ValueError):
    """A message that is not a well-formed ``rollout.alarm`` (retrying cannot fix it)."""


@dataclass(frozen=True)
class RolloutAlarm:
    """A canary failed: its rollout must go back to the stable version."""

    tenant_id: str
    rollout_id: str
    stable_version: str
    canary_version: str
    reason: str
    severity: str = "page"
    evidence: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: object) -> RolloutAlarm:
        """The alarm in a bus / SNS message body, validated; ``InvalidAlarm`` when it is not one."""
        if not isinstance(message, Mapping):
            raise InvalidAlarm("the message is not a JSON object")
        if message.get("type", ALARM_TYPE) != ALARM_TYPE:
            raise InvalidAlarm(f"message type is {message.get('type')!r}, not {ALARM_TYPE!r}")
        missing = [k for k in _REQUIRED if not isinstance(message.get(k), str) or not message[k].strip()]
        if missing:
            raise InvalidAlarm(f"missing or empty fields: {', '.join(missing)}")
        if message["stable_version"] == message["canary_version"]:
            raise InvalidAlarm("stable_version and canary_version are the same version")
        severity = message.get("severity", "page")
        if severity not in SEVERITIES:
            raise InvalidAlarm(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        evidence, links = message.get("evidence") or {}, message.get("links") or {}
        if not isinstance(evidence, Mapping) or not isinstance(links, Mapping):
            raise InvalidAlarm("evidence and links must be objects")
        return cls(
            tenant_id=message["tenant_id"],
            rollout_id=message["rollout_id"],
            stable_version=message["stable_version"],
            canary_version=message["canary_version"],
            reason=message["reason"],
            severity=str(severity),
            evidence=dict(evidence),
            links={str(k): str(v) for k, v in links.items()},
        )

    def to_message(self) -> dict[str, Any]:
        return {
            "type": ALARM_TYPE,
            "tenant_id": self.tenant_id,
            "rollout_id": self.rollout_id,
            "stable_version": self.stable_version,
            "canary_version": self.canary_version,
            "reason": self.reason,
            "severity": self.severity,
            "evidence": dict(self.evidence),
            "links": dict(self.links),
        }

    @property
    def metric(self) -> str:
        """What failed, as the ``reason`` label of ``fraudrail_rollbacks_total`` (few values)."""
        metric = self.evidence.get("metric")
        if self.evidence.get("manual"):
            return "manual"
        return metric if isinstance(metric, str) and metric else "alarm"


def rollback_id_for(rollout_id: str) -> str:
    """One rollback id per rollout: a repeated alarm records (and counts) once."""
    return f"rb_{rollout_id}"


def rollback_weights(alarm: RolloutAlarm) -> dict[str, int]:
    return {alarm.stable_version: FULL_WEIGHT, alarm.canary_version: 0}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AlarmDeps:
    """Ports ``handle_alarm`` uses: the Lambda builds them from env, the control plane from its own."""

    model_host: ModelHost
    rollback_log: RollbackLog
    metrics: MetricsSink | None = None
    clock: Callable[[], datetime] = _utcnow


@dataclass(frozen=True)
class AlarmOutcome:
    record: RollbackRecord
    first: bool  # False: the rollback log already had it (a repeat: weights re-asserted only)
    weights: dict[str, int]  # read back from the model host


def handle_alarm(alarm: RolloutAlarm | Mapping[str, Any], deps: AlarmDeps) -> AlarmOutcome:
    """Stable at 100 %, verified, then the rollback recorded once.

    Raises ``InvalidAlarm`` for a malformed message and ``WeightChangeFailed`` when the weights
    did not move (nothing is recorded then); a failing rollback log raises too, so the caller's
    retry repeats both steps (the weights step is a no-op the second time).
    """
    if not isinstance(alarm, RolloutAlarm):
        alarm = RolloutAlarm.from_message(alarm)
    weights = set_weights(
        deps.model_host,
        alarm.tenant_id,
        rollback_weights(alarm),
        canary=alarm.canary_version,
        metrics=deps.metrics,
    )
    record = RollbackRecord(
        tenant_id=alarm.tenant_id,
        rollback_id=rollback_id_for(alarm.rollout_id),
        at=deps.clock().astimezone(UTC).isoformat(),
        reason=alarm.reason,
        evidence={**alarm.evidence, "rollout_id": alarm.rollout_id},
        weights_after=weights,
    )
    first = deps.rollback_log.append(record)
    if first:
        log.warning(
            "rolled back rollout %s of tenant %s to %s: %s",
            alarm.rollout_id,
            alarm.tenant_id,
            alarm.stable_version,
            alarm.reason,
        )
        if deps.metrics is not None:
            deps.metrics.increment(ROLLBACKS_METRIC, tenant=alarm.tenant_id, reason=alarm.metric)
    else:
        log.info("rollback %s already recorded: weights re-asserted only", record.rollback_id)
    return AlarmOutcome(record=record, first=first, weights=weights)
