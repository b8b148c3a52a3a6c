"""The retraining loop's job handlers and periodic job, for the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control_plane.jobs.periodic import PeriodicJob
from control_plane.jobs.worker import JobHandler
from control_plane.rollouts.ports import RolloutPorts
from control_plane.training.monitoring_check import CHECK_JOB, MonitoringCheck
from control_plane.training.retrain_job import RetrainingJob
from control_plane.training.retraining import RETRAIN_JOB
from control_plane.training.retraining_notice import NOTIFY_JOB, NotifyRetraining
from guardrails.policy import PolicyEngine
from providers.ports import MetricsSink, Notifier, ObjectStore


def retraining_tasks(
    object_store: ObjectStore,
    templates: Mapping[str, Mapping[str, Any]],
    policy: PolicyEngine,
    rollouts: RolloutPorts,
    notifier: Notifier,
    metrics: MetricsSink,
) -> dict[str, JobHandler]:
    """``monitoring.check`` (periodic), ``retraining.run`` and ``retraining.notify``."""
    return {
        CHECK_JOB: MonitoringCheck(templates, policy, metrics),
        RETRAIN_JOB: RetrainingJob(object_store, templates, policy, rollouts),
        NOTIFY_JOB: NotifyRetraining(notifier),
    }


def retraining_periodic_jobs(every_s: float) -> list[PeriodicJob]:
    return [PeriodicJob(CHECK_JOB, every_s, max_attempts=1)]
