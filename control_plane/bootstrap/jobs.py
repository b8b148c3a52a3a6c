"""Every job kind the worker knows, each handler built with what it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_plane.finops.metering import MeteredRun
from control_plane.finops.tasks import finops_tasks
from control_plane.jobs.worker import JobHandler
from control_plane.rollouts.tasks import rollout_tasks
from control_plane.scoring.tasks import BATCH_JOB, BatchScoring
from control_plane.tenants.service import OFFBOARD_JOB, PROVISION_JOB
from control_plane.tenants.tasks import OffboardTenant, ProvisionTenant
from control_plane.training.retraining_tasks import retraining_tasks
from control_plane.training.service import TRAINING_JOB, TrainingRun
from control_plane.training.tracking import MLFLOW_SYNC_JOB, MlflowSync
from providers.local.jobs import InProcessBatchRunner, InProcessTrainingBackend

if TYPE_CHECKING:
    from control_plane.bootstrap.state import State


def job_handlers(state: State) -> dict[str, JobHandler]:
    p = state.providers
    training = p.training or InProcessTrainingBackend(p.object_store)
    batch = p.batch_runner or InProcessBatchRunner(p.object_store, p.model_host)
    return {
        PROVISION_JOB: ProvisionTenant(p.provisioner, state.templates),
        OFFBOARD_JOB: OffboardTenant(p.provisioner, state.templates, state.purgers, state.verifier),
        # MeteredRun adds billable_seconds to the result (FinOps).
        TRAINING_JOB: MeteredRun(TrainingRun(p.object_store, state.templates, p.tracker, training)),
        MLFLOW_SYNC_JOB: MlflowSync(p.tracker, p.object_store),  # retries MLflow logging (issue 19)
        BATCH_JOB: BatchScoring(
            state.scoring.serving, state.scoring.checker, p.object_store, p.model_host, batch
        ),
        **rollout_tasks(state.rollouts),  # rollout.reconcile and rollout.notify
        **finops_tasks(state.finops),
        # monitoring.check (periodic), retraining.run and retraining.notify (issue 17 section 5)
        **retraining_tasks(
            p.object_store, state.templates, state.policy, state.rollouts, p.notifier, p.metrics
        ),
    }
