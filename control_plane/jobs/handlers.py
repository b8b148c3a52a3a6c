"""The registry of job kinds the worker knows."""

from __future__ import annotations

from collections.abc import Mapping

from control_plane.jobs.worker import JobHandler
from control_plane.tenants.jobs import OffboardTenant, ProvisionTenant
from control_plane.tenants.service import OFFBOARD_JOB, PROVISION_JOB


def job_handlers() -> Mapping[str, JobHandler]:
    return {PROVISION_JOB: ProvisionTenant(), OFFBOARD_JOB: OffboardTenant()}
