"""The worker: leases jobs and drives them; every handler step is safe to repeat after a crash."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.jobs import queue
from control_plane.orm_base import utcnow
from providers.ports import PermanentProviderError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class PermanentJobError(PermanentProviderError):
    """A failure that retrying cannot fix (e.g. a policy violation): the job fails at once.

    Adapters raise the port's ``PermanentProviderError`` (they import no domain); both mean the same."""


class JobPending(Exception):
    """A handler waiting on work outside the process (a SageMaker job) raises this: the job goes back
    to the queue, to be claimed again after ``after_s`` by whichever worker is up then, and the wait
    uses no attempt. Nothing sleeps; a restart loses nothing (the handler re-reads the outside job)."""

    def __init__(self, after_s: float, detail: str = "") -> None:
        super().__init__(detail or f"waiting {after_s:g} s")
        self.after_s = after_s


@dataclass
class JobContext:
    """What a handler gets: its job's identity and payload, a way to commit steps, progress."""

    job_id: str
    kind: str
    tenant_id: str | None
    payload: Mapping[str, Any]
    attempt: int
    factory: sessionmaker[Session]
    worker_id: str
    lease_s: float
    clock: Clock

    def progress(self, phase: str, percent: float, **extra: Any) -> None:
        """Record progress and extend the lease, in its own transaction."""
        with unit_of_work(self.factory) as session:
            job = queue.get_job(session, self.job_id, tenant_id=None)
            job.progress = {"phase": phase, "percent": round(float(percent), 1), **extra}
            queue.extend_lease(
                session, self.job_id, worker_id=self.worker_id, now=self.clock(), lease_s=self.lease_s
            )


class JobHandler(Protocol):
    def run(self, ctx: JobContext) -> Mapping[str, Any]: ...

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        """Called in the failing transaction when the job runs out of attempts."""
        ...


@dataclass
class Worker:
    factory: sessionmaker[Session]
    handlers: Mapping[str, JobHandler]
    lease_s: float = 60.0
    clock: Clock = utcnow
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{id(object())}")
    wake: threading.Event = field(default_factory=threading.Event)
    # Run between jobs when the queue is idle (the outbox's periodic delivery, due periodic jobs).
    idle_tasks: list[Callable[[], object]] = field(default_factory=list)

    def run_once(self, *, job_id: str | None = None) -> str | None:
        """Lease and run one job; returns its id, or None when nothing was runnable."""
        with unit_of_work(self.factory) as session:
            job = queue.claim(
                session, worker_id=self.worker_id, now=self.clock(), lease_s=self.lease_s, job_id=job_id
            )
            if job is None:
                return None
            ctx = JobContext(
                job_id=job.id,
                kind=job.kind,
                tenant_id=job.tenant_id,
                payload=dict(job.payload),
                attempt=job.attempts,
                factory=self.factory,
                worker_id=self.worker_id,
                lease_s=self.lease_s,
                clock=self.clock,
            )
        handler = self.handlers.get(ctx.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {ctx.kind!r}")
            result = handler.run(ctx)
        except JobPending as pending:
            with unit_of_work(self.factory) as session:
                job = queue.get_job(session, ctx.job_id, tenant_id=None)
                queue.defer(session, job, now=self.clock(), after_s=pending.after_s)
            return ctx.job_id
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("job %s (%s) attempt %d failed: %s", ctx.job_id, ctx.kind, ctx.attempt, error)
            log.debug("%s", traceback.format_exc())
            with unit_of_work(self.factory) as session:
                job = queue.get_job(session, ctx.job_id, tenant_id=None)
                permanent = isinstance(exc, PermanentProviderError)
                if queue.fail(session, job, error=error, now=self.clock(), permanent=permanent) and handler:
                    handler.on_exhausted(ctx, session, error)
            return ctx.job_id
        with unit_of_work(self.factory) as session:
            job = queue.get_job(session, ctx.job_id, tenant_id=None)
            queue.complete(session, job, result=result, now=self.clock())
        return ctx.job_id

    def run_or_await(self, job_id: str, *, wait_s: float = 10.0, poll_s: float = 0.05) -> None:
        """Run ``job_id`` in this thread, or, when another worker claimed it first (the outbox wakes
        the worker as soon as the job commits), wait a bounded time for that attempt to end."""
        if self.run_once(job_id=job_id) is not None:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self.factory() as session:
                if queue.get_job(session, job_id, tenant_id=None).status != queue.RUNNING:
                    return
            time.sleep(poll_s)

    def drain(self, max_jobs: int = 1000) -> int:
        """Run runnable jobs until none is left (tests and the CLI's ``--once``)."""
        done = 0
        while done < max_jobs and self.run_once() is not None:
            done += 1
        return done

    def run_forever(self, stop: threading.Event, idle_s: float = 0.5) -> None:
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("worker loop error")
                ran = None
            if ran is None:
                self.run_idle_tasks()
                self.wake.wait(idle_s)
                self.wake.clear()

    def run_idle_tasks(self) -> None:
        for task in self.idle_tasks:
            try:
                task()
            except Exception:
                log.exception("worker idle task %r failed; it runs again next round", task)
