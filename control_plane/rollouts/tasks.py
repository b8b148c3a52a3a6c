"""The rollouts domain's job handlers, for the composition root's job registry."""

from __future__ import annotations

from control_plane.jobs.worker import JobHandler
from control_plane.notifications.rollback_notice import NOTIFY_JOB, NotifyRollout
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.reconcile import ReconcileRollout
from control_plane.rollouts.service import RECONCILE_JOB


def rollout_tasks(ports: RolloutPorts) -> dict[str, JobHandler]:
    """``rollout.reconcile`` (the one writer of weights) and ``rollout.notify`` (Slack / Teams)."""
    return {RECONCILE_JOB: ReconcileRollout(ports), NOTIFY_JOB: NotifyRollout(ports.notifier)}
