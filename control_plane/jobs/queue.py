"""Durable job queue in the database: leases, retries with exponential backoff.

Claiming is one conditional UPDATE per candidate, so it is atomic on PostgreSQL and SQLite
alike: two workers never hold the same live lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from control_plane.errors import NotFound
from control_plane.ids import new_id
from control_plane.jobs.orm import Job
from control_plane.outbox import note_job_enqueued

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
MAX_BACKOFF_S = 300.0


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: Mapping[str, Any],
    tenant_id: str | None,
    max_attempts: int = 5,
    now: datetime,
) -> Job:
    """Queue a job in the caller's transaction (dropped with it if the request fails)."""
    job = Job(
        id=new_id("job"),
        kind=kind,
        payload=dict(payload),
        tenant_id=tenant_id,
        max_attempts=max_attempts,
        run_after=now,
        status=QUEUED,
        attempts=0,
        progress={},
    )
    session.add(job)
    note_job_enqueued(session)  # the outbox relay wakes the worker once this transaction commits
    return job


def _claimable(now: datetime) -> Any:
    return or_(
        and_(Job.status == QUEUED, Job.run_after <= now),
        and_(Job.status == RUNNING, Job.lease_expires_at < now),
    )


def claim(
    session: Session, *, worker_id: str, now: datetime, lease_s: float, job_id: str | None = None
) -> Job | None:
    """Lease the oldest runnable job (or ``job_id``); the caller commits."""
    stmt = select(Job.id).where(_claimable(now)).order_by(Job.run_after, Job.created_at).limit(8)
    if job_id is not None:
        stmt = select(Job.id).where(Job.id == job_id, _claimable(now))
    for candidate in list(session.scalars(stmt)):
        result = session.execute(
            update(Job)
            .where(Job.id == candidate, _claimable(now))
            .values(
                status=RUNNING,
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=Job.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            job = session.get(Job, candidate, populate_existing=True)
            assert job is not None
            return job
    return None


def extend_lease(session: Session, job_id: str, *, worker_id: str, now: datetime, lease_s: float) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == worker_id, Job.status == RUNNING)
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def complete(session: Session, job: Job, *, result: Mapping[str, Any], now: datetime) -> None:
    job.status = SUCCEEDED
    job.result = dict(result)
    job.finished_at = now
    job.lease_owner = None
    job.lease_expires_at = None


def backoff_s(attempts: int) -> float:
    return float(min(2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


def fail(session: Session, job: Job, *, error: str, now: datetime, permanent: bool = False) -> bool:
    """Record a failed attempt; True when the job is out of attempts (terminal)."""
    job.last_error = error[:4000]
    job.lease_owner = None
    job.lease_expires_at = None
    if permanent or job.attempts >= job.max_attempts:
        job.status = FAILED
        job.finished_at = now
        # The status route says where it stopped and why, not the last phase it reached.
        reached = dict(job.progress or {})
        job.progress = {
            **reached,
            "phase": "failed",
            "failed_in": reached.get("phase"),
            "reason": job.last_error,
        }
        return True
    job.status = QUEUED
    job.run_after = now + timedelta(seconds=backoff_s(job.attempts))
    return False


def defer(session: Session, job: Job, *, now: datetime, after_s: float) -> None:
    """Put a running job back in the queue for ``after_s`` without spending an attempt (a poll)."""
    job.status = QUEUED
    job.attempts = max(job.attempts - 1, 0)
    job.run_after = now + timedelta(seconds=max(after_s, 0.0))
    job.lease_owner = None
    job.lease_expires_at = None


def get_job(session: Session, job_id: str, *, tenant_id: str | None) -> Job:
    stmt = select(Job).where(Job.id == job_id)
    if tenant_id is not None:
        stmt = stmt.where(Job.tenant_id == tenant_id)
    job = session.scalar(stmt)
    if job is None:
        raise NotFound(f"job {job_id} not found", field="job_id")
    return job
