"""The registry of job kinds the worker knows."""

from __future__ import annotations

from collections.abc import Mapping

from control_plane.finops.jobs import finops_job_handlers
from control_plane.finops.metering import MeteredRun
from control_plane.jobs.worker import JobHandler
from control_plane.notifications.rollback_notice import NOTIFY_JOB, NotifyRollout
from control_plane.rollouts.reconcile import ReconcileRollout
from control_plane.rollouts.service import RECONCILE_JOB
from control_plane.scoring.batch import BATCH_JOB, BatchScoring
from control_plane.tenants.jobs import OffboardTenant, ProvisionTenant
from control_plane.tenants.service import OFFBOARD_JOB, PROVISION_JOB
from control_plane.training.service import TRAINING_JOB, TrainingRun


def job_handlers() -> Mapping[str, JobHandler]:
    return {
        PROVISION_JOB: ProvisionTenant(),
        OFFBOARD_JOB: OffboardTenant(),
        TRAINING_JOB: MeteredRun(TrainingRun()),  # adds billable_seconds to the result (FinOps)
        BATCH_JOB: BatchScoring(),
        RECONCILE_JOB: ReconcileRollout(),
        NOTIFY_JOB: NotifyRollout(),
        **finops_job_handlers(),
    }
