"""Periodic work as jobs on the queue: no scheduler thread, no timer in the web process.

A ``PeriodicJob`` is due once per slot (``every_s`` long, aligned to the epoch). The worker asks
``PeriodicSchedule.enqueue_due`` between jobs; each due slot is queued as a job whose id names the
kind and the slot, so several workers (or a restarted one) queue it once: the second insert of
the same id fails and is ignored. A slot missed while no worker ran is queued once, late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from control_plane.jobs.orm import Job
from control_plane.jobs.queue import QUEUED
from control_plane.orm_base import utcnow
from control_plane.outbox import note_job_enqueued

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    kind: str
    every_s: float
    payload: Callable[[datetime], Mapping[str, Any]] = field(default=lambda _now: {})
    max_attempts: int = 3


def slot_of(job: PeriodicJob, now: datetime) -> int:
    return int(now.timestamp() // job.every_s)


def job_id_for(job: PeriodicJob, slot: int) -> str:
    return f"per_{job.kind}_{slot}"[:40]


class PeriodicSchedule:
    def __init__(
        self,
        factory: sessionmaker[Session],
        jobs: Sequence[PeriodicJob],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = factory
        self._jobs = list(jobs)
        self._clock = clock
        self._queued_slot: dict[str, int] = {}  # per process: skip the insert once a slot is queued

    @property
    def jobs(self) -> list[PeriodicJob]:
        return list(self._jobs)

    def enqueue_due(self) -> list[str]:
        """Queue every periodic job whose current slot is not queued yet; returns the new job ids."""
        now = self._clock()
        queued: list[str] = []
        for job in self._jobs:
            slot = slot_of(job, now)
            if self._queued_slot.get(job.kind) == slot:
                continue
            if self._insert(job, slot, now):
                queued.append(job_id_for(job, slot))
            self._queued_slot[job.kind] = slot
        return queued

    def _insert(self, job: PeriodicJob, slot: int, now: datetime) -> bool:
        session = self._factory()
        try:
            row = Job(
                id=job_id_for(job, slot),
                kind=job.kind,
                payload=dict(job.payload(now)),
                tenant_id=None,
                max_attempts=job.max_attempts,
                run_after=now,
                status=QUEUED,
                attempts=0,
                progress={"periodic_slot": slot},
            )
            session.add(row)
            note_job_enqueued(session)
            session.commit()
            return True
        except IntegrityError:
            session.rollback()  # another worker queued this slot first
            return False
        finally:
            session.close()
