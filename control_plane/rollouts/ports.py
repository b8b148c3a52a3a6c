"""What the rollouts domain uses from the process, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane.registry.deployment import DeploymentServices
from control_plane.slo.recorder import RequestRecorder
from providers.ports import EventBus, MetricsSink, ModelHost, Notifier, RollbackLog


@dataclass(frozen=True)
class RolloutPorts:
    factory: sessionmaker[Session]
    model_host: ModelHost
    rollback_log: RollbackLog
    metrics: MetricsSink
    event_bus: EventBus
    notifier: Notifier
    templates: Mapping[str, Mapping[str, Any]]
    # The process's request samples: an analysis flushes them and starts its window one bucket early.
    recorder: RequestRecorder
    # The one deployment decision's inputs (policy, artifact store, FinOps context).
    deployment: DeploymentServices

    def template(self, tier: str) -> Mapping[str, Any]:
        return self.templates[tier]
