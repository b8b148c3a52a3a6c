"""FinOps durable jobs: budget evaluation per tenant, daily metering, finished-job metering."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from control_plane.finops.enforcement import EVALUATE_JOB
from control_plane.finops.metering import METER_DAILY_JOB, METER_JOBS_JOB
from control_plane.jobs.worker import JobContext, JobHandler

if TYPE_CHECKING:
    from control_plane.finops.runtime import FinOpsRuntime

log = logging.getLogger(__name__)


def _finops(ctx: JobContext) -> FinOpsRuntime:
    return ctx.services.finops  # type: ignore[no-any-return]


class _Handler:
    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        log.error("finops job %s (%s) gave up: %s", ctx.job_id, ctx.kind, error)


class EvaluateBudget(_Handler):
    """Thresholds, freeze, grace → throttle, lift, anomaly for one tenant (idempotent)."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        return _finops(ctx).evaluate(str(ctx.payload["tenant_id"]), now=ctx.clock())


class MeterDaily(_Handler):
    """Hosting hours and storage GB-days of one day (default: yesterday), once per tenant."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        now = ctx.clock()
        raw = ctx.payload.get("day")
        day = date.fromisoformat(str(raw)) if raw else now.date() - timedelta(days=1)
        return _finops(ctx).meter_day(day, now=now)


class MeterJobs(_Handler):
    """Batch rows and training seconds of recently succeeded jobs (idempotent by job id)."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        return _finops(ctx).meter_jobs(now=ctx.clock())


def finops_job_handlers() -> dict[str, JobHandler]:
    return {EVALUATE_JOB: EvaluateBudget(), METER_DAILY_JOB: MeterDaily(), METER_JOBS_JOB: MeterJobs()}
