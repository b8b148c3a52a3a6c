"""Metering off the hot path.

- Fraud checks: counted in memory per tenant (one dict increment under a lock) and written by a
  background flusher as one usage event per tenant per flush. A flush's id is deterministic
  (process, flush sequence, tenant), and a failed flush is retried with the same ids, so a
  write that committed but looked failed is deduplicated, never double counted.
- Batch rows and training seconds: read from succeeded jobs' results (idempotent by job id).
- Hosting hours and storage GB-days: a daily durable job, idempotent per tenant per day.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.finops import repository as repo
from control_plane.finops.enforcement import ensure_evaluation
from control_plane.finops.prices import Meter, PriceTable
from control_plane.finops.service import UsageRecord, record_usage
from control_plane.jobs import queue
from control_plane.jobs.worker import JobContext
from providers.ports import ObjectStore

log = logging.getLogger(__name__)

METER_DAILY_JOB = "finops.meter_daily"
METER_JOBS_JOB = "finops.meter_jobs"
TRAINING_JOB = "training.run"  # control_plane.training.service.TRAINING_JOB
BATCH_JOB = "scoring.batch"  # control_plane.scoring.tasks.BATCH_JOB
GB = Decimal(1024**3)


class UsageCounter:
    """Per-tenant fraud-check counts since the last flush (the hot path's only metering cost)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def fraud_check(self, tenant_id: str) -> None:
        with self._lock:
            self._counts[tenant_id] = self._counts.get(tenant_id, 0) + 1

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def peek(self, tenant_id: str) -> int:
        with self._lock:
            return self._counts.get(tenant_id, 0)


@dataclass
class _Batch:
    seq: int
    at: datetime
    counts: dict[str, int]


class UsageWriter:
    """Writes counted fraud checks and job usage, and queues budget evaluations."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        prices: PriceTable,
        templates: Mapping[str, Mapping[str, Any]],
        *,
        evaluate_min_interval_s: float,
    ) -> None:
        self.factory = factory
        self.prices = prices
        self.templates = templates
        self.evaluate_min_interval_s = evaluate_min_interval_s
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._seq = 0
        self._pending: list[_Batch] = []
        self._lock = threading.Lock()
        self._last_evaluation: dict[str, float] = {}

    def flush(self, counter: UsageCounter, *, now: datetime) -> int:
        """Write every pending batch (oldest first); returns the fraud checks written now."""
        with self._lock:
            counts = counter.take()
            if counts:
                self._seq += 1
                self._pending.append(_Batch(self._seq, now, counts))
            written = 0
            while self._pending:
                batch = self._pending[0]
                self._write_batch(batch, now)  # raises: the batch stays pending, same ids next time
                self._pending.pop(0)
                written += sum(batch.counts.values())
            return written

    def pending(self) -> int:
        with self._lock:
            return sum(sum(b.counts.values()) for b in self._pending)

    def _write_batch(self, batch: _Batch, now: datetime) -> None:
        with unit_of_work(self.factory) as session:
            tiers = repo.tenant_tiers(session, list(batch.counts))
            touched = []
            for tenant_id, count in sorted(batch.counts.items()):
                tier = tiers.get(tenant_id)
                if tier is None:
                    continue  # deleted meanwhile: nothing left to bill
                rec = UsageRecord(
                    id=f"fc:{self.instance}:{batch.seq}:{tenant_id}",
                    tenant_id=tenant_id,
                    meter=Meter.FRAUD_CHECKS,
                    quantity=Decimal(count),
                    occurred_at=batch.at,
                    source="fraud-check",
                )
                if record_usage(session, self.prices, self.templates[tier], rec, now=now):
                    touched.append(tenant_id)
            self._queue_evaluations(session, touched, now)

    def _queue_evaluations(self, session: Session, tenant_ids: list[str], now: datetime) -> None:
        clock = now.timestamp()
        for tenant_id in tenant_ids:
            last = self._last_evaluation.get(tenant_id)
            if last is not None and clock - last < self.evaluate_min_interval_s:
                continue
            ensure_evaluation(session, tenant_id, now=now)
            self._last_evaluation[tenant_id] = clock

    def meter_finished_jobs(self, *, since: datetime, now: datetime) -> dict[str, int]:
        """Batch rows and training seconds of succeeded jobs not metered yet (idempotent by job id)."""
        recorded = {Meter.BATCH_ROWS.value: 0, Meter.TRAINING_SECONDS.value: 0}
        with unit_of_work(self.factory) as session:
            jobs = repo.finished_jobs(session, (TRAINING_JOB, BATCH_JOB), since)
            ids = {_job_event_id(j.id, j.kind): j for j in jobs}
            done = repo.existing_event_ids(session, list(ids))
            todo = [(event_id, job) for event_id, job in ids.items() if event_id not in done]
            tiers = repo.tenant_tiers(session, sorted({str(j.tenant_id) for _, j in todo}))
            touched: set[str] = set()
            for event_id, job in todo:
                tenant_id = str(job.tenant_id)
                if tenant_id not in tiers or job.finished_at is None:
                    continue
                meter, quantity = job_usage(job.kind, job.result or {}, job.created_at, job.finished_at)
                rec = UsageRecord(event_id, tenant_id, meter, quantity, job.finished_at, f"job:{job.kind}")
                if record_usage(session, self.prices, self.templates[tiers[tenant_id]], rec, now=now):
                    recorded[meter.value] += 1
                    touched.add(tenant_id)
            self._queue_evaluations(session, sorted(touched), now)
        return recorded


def _job_event_id(job_id: str, kind: str) -> str:
    return f"job:{job_id}:{Meter.TRAINING_SECONDS.value if kind == TRAINING_JOB else Meter.BATCH_ROWS.value}"


def job_usage(
    kind: str, result: Mapping[str, Any], created_at: datetime, finished_at: datetime
) -> tuple[Meter, Decimal]:
    """What a succeeded job bills: rows scored, or seconds of training.

    Training seconds are the run's measured wall time (``billable_seconds``, added by
    ``metered``); a result without it falls back to queued-to-finished time, an upper bound."""
    if kind == BATCH_JOB:
        return Meter.BATCH_ROWS, Decimal(int(result.get("rows", 0)))
    seconds = result.get("billable_seconds")
    if seconds is None:
        seconds = max(0.0, (finished_at - created_at).total_seconds())
    return Meter.TRAINING_SECONDS, Decimal(str(round(float(seconds), 3)))


class MeteredRun:
    """Wraps a job handler to add its measured wall time to the result as ``billable_seconds``."""

    def __init__(self, inner: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.clock = clock

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        started = self.clock()
        result = self.inner.run(ctx)
        # A run on SageMaker reports the seconds AWS bills; the wall time here is only the poll.
        return {"billable_seconds": round(self.clock() - started, 3), **result}

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        self.inner.on_exhausted(ctx, session, error)


def hosted_hours(day: date, created_at: datetime) -> Decimal:
    """Hours of ``day`` (UTC) the tenant existed: 24, or less on the day it was created."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    begin = max(start, created_at.astimezone(UTC))
    if begin >= end:
        return Decimal("0")
    return (Decimal((end - begin) // timedelta(seconds=1)) / Decimal(3600)).quantize(Decimal("0.000001"))


def meter_day(
    factory: sessionmaker[Session],
    prices: PriceTable,
    templates: Mapping[str, Mapping[str, Any]],
    store: ObjectStore,
    day: date,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Hosting hours and storage GB-days of ``day`` for every billable tenant (each once)."""
    with unit_of_work(factory) as session:
        tenants = [(t.id, t.tier, t.created_at) for t in repo.billable_tenants(session)]
    at = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
    metered: dict[str, Any] = {}
    for tenant_id, tier, created_at in tenants:
        hours = hosted_hours(day, created_at)
        if hours <= 0:
            continue
        gb = Decimal(store.total_bytes(f"tenants/{tenant_id}/")) / GB
        gb_days = (gb * hours / Decimal(24)).quantize(Decimal("0.000001"))
        template = templates[tier]
        with unit_of_work(factory) as session:
            new = [
                record_usage(
                    session,
                    prices,
                    template,
                    UsageRecord(
                        f"hosting:{tenant_id}:{day}", tenant_id, Meter.HOSTING_HOURS, hours, at, "daily"
                    ),
                    now=now,
                ),
                record_usage(
                    session,
                    prices,
                    template,
                    UsageRecord(
                        f"storage:{tenant_id}:{day}", tenant_id, Meter.STORAGE_GB_DAYS, gb_days, at, "daily"
                    ),
                    now=now,
                ),
            ]
            if any(new):
                ensure_evaluation(session, tenant_id, now=now)
        metered[tenant_id] = {"hosting_hours": str(hours), "storage_gb_days": str(gb_days), "new": any(new)}
    return {"day": day.isoformat(), "tenants": metered}


def day_needs_metering(factory: sessionmaker[Session], day: date) -> bool:
    """True when some billable tenant has no hosting record for ``day`` yet."""
    with factory() as session:
        ids = [f"hosting:{t.id}:{day}" for t in repo.billable_tenants(session) if t.created_at.date() <= day]
        return bool(ids) and len(repo.existing_event_ids(session, ids)) < len(ids)


def queue_daily_metering(factory: sessionmaker[Session], day: date, *, now: datetime) -> bool:
    """Queue ``finops.meter_daily`` for ``day`` unless nothing needs it or one already waits."""
    if not day_needs_metering(factory, day):
        return False
    with unit_of_work(factory) as session:
        if repo.job_queued(session, METER_DAILY_JOB, None):
            return False
        queue.enqueue(
            session, kind=METER_DAILY_JOB, payload={"day": day.isoformat()}, tenant_id=None, now=now
        )
    return True
