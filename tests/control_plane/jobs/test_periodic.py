"""Periodic work is periodic jobs: each slot is queued once, whatever the number of workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from control_plane.bootstrap.state import State
from control_plane.jobs.orm import Job
from control_plane.jobs.periodic import PeriodicJob, PeriodicSchedule

T0 = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def jobs_of(container: State, kind: str) -> list[Job]:
    with container.factory() as s:
        return list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.run_after)))


def test_each_slot_is_queued_once_across_workers(container: State) -> None:
    clock = Clock()
    every = PeriodicJob("test.every_minute", 60.0, lambda now: {"at": now.isoformat()})
    a = PeriodicSchedule(container.factory, [every], clock=clock)
    b = PeriodicSchedule(container.factory, [every], clock=clock)  # another worker process
    assert len(a.enqueue_due()) == 1
    assert b.enqueue_due() == []  # the same slot: its insert loses to a's
    assert a.enqueue_due() == []
    clock.now = T0 + timedelta(seconds=59)
    assert a.enqueue_due() == [] and b.enqueue_due() == []
    clock.now = T0 + timedelta(seconds=61)
    assert len(b.enqueue_due()) == 1 and a.enqueue_due() == []
    queued = jobs_of(container, "test.every_minute")
    assert len(queued) == 2 and queued[0].payload == {"at": T0.isoformat()}


def test_a_missed_stretch_is_caught_up_once_not_once_per_slot(container: State) -> None:
    clock = Clock()
    hourly = PeriodicJob("test.hourly", 3600.0)
    schedule = PeriodicSchedule(container.factory, [hourly], clock=clock)
    schedule.enqueue_due()
    clock.now = T0 + timedelta(hours=10)  # no worker ran for ten hours
    assert len(schedule.enqueue_due()) == 1
    assert len(jobs_of(container, "test.hourly")) == 2


def test_the_worker_queues_due_periodic_jobs_between_jobs(container: State) -> None:
    kinds = {job.kind for job in container.periodic.jobs}
    assert {"finops.meter_jobs", "finops.meter_daily"} <= kinds
    container.worker.run_idle_tasks()
    with container.factory() as s:
        queued = {j.kind for j in s.scalars(select(Job))}
    assert kinds <= queued
