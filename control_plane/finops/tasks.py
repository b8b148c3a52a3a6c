"""FinOps job handlers: budget evaluation per tenant, daily metering, finished-job metering."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from control_plane.finops.enforcement import EVALUATE_JOB
from control_plane.finops.metering import METER_DAILY_JOB, METER_JOBS_JOB
from control_plane.finops.runtime import FinOpsRuntime
from control_plane.jobs.worker import JobContext, JobHandler

log = logging.getLogger(__name__)


class _Handler:
    def __init__(self, finops: FinOpsRuntime) -> None:
        self.finops = finops

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        log.error("finops job %s (%s) gave up: %s", ctx.job_id, ctx.kind, error)


class EvaluateBudget(_Handler):
    """Thresholds, freeze, grace → throttle, lift, anomaly for one tenant (idempotent)."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        return self.finops.evaluate(str(ctx.payload["tenant_id"]), now=ctx.clock())


class MeterDaily(_Handler):
    """Hosting hours and storage GB-days of one day (default: yesterday), once per tenant."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        now = ctx.clock()
        raw = ctx.payload.get("day")
        day = date.fromisoformat(str(raw)) if raw else now.date() - timedelta(days=1)
        return self.finops.meter_day(day, now=now)


class MeterJobs(_Handler):
    """Batch rows and training seconds of recently succeeded jobs (idempotent by job id)."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        return self.finops.meter_jobs(now=ctx.clock())


def finops_tasks(finops: FinOpsRuntime) -> dict[str, JobHandler]:
    return {
        EVALUATE_JOB: EvaluateBudget(finops),
        METER_DAILY_JOB: MeterDaily(finops),
        METER_JOBS_JOB: MeterJobs(finops),
    }
