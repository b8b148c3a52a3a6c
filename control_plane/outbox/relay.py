"""Recording events in a transaction and relaying them to the bus after it commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.ids import new_id
from control_plane.orm_base import utcnow
from control_plane.outbox.orm import OutboxEvent
from providers.ports import EventBus

log = logging.getLogger(__name__)

_EVENT_IDS = "outbox.event_ids"  # session.info: events this transaction recorded, in order
_JOBS = "outbox.jobs_enqueued"  # session.info: this transaction queued a job
MAX_BACKOFF_S = 300.0
# The request's own relay delivers its events right after the commit; the periodic pass leaves
# them alone for this long so the two rarely deliver the same event twice.
SETTLE_S = 5.0


def emit(session: Session, topic: str, payload: Mapping[str, Any]) -> OutboxEvent:
    """Record ``payload`` for ``topic`` in the caller's transaction; delivered after it commits."""
    tenant_id = payload.get("tenant_id")
    row = OutboxEvent(
        id=new_id("evt"),
        topic=topic,
        tenant_id=tenant_id if isinstance(tenant_id, str) else None,
        payload=dict(payload),
        attempts=0,
        created_at=utcnow(),
        next_attempt_at=utcnow(),
    )
    session.add(row)
    session.info.setdefault(_EVENT_IDS, []).append(row.id)
    return row


def note_job_enqueued(session: Session) -> None:
    """Called by the job queue: wake the worker once this transaction commits."""
    session.info[_JOBS] = True


class OutboxRelay:
    """Delivers outbox rows to the bus; installed once per process on its session factory."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        bus: EventBus,
        *,
        wake_worker: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
        batch: int = 200,
    ) -> None:
        self._factory = factory
        self._bus = bus
        self._clock = clock
        self._batch = batch
        self.wake_worker = wake_worker
        # Re-entrant: a subscriber may itself commit a transaction that emits.
        self._lock = threading.RLock()

    def install(self) -> None:
        from sqlalchemy import event

        event.listen(self._factory, "after_commit", self._after_commit)
        event.listen(self._factory, "after_soft_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        ids: list[str] = session.info.pop(_EVENT_IDS, [])
        jobs = session.info.pop(_JOBS, False)
        if ids:
            try:
                self.deliver(ids)
            except Exception:
                log.exception("outbox: delivery after commit failed; the periodic pass retries")
        if jobs:
            self.wake_worker()

    def _after_rollback(self, session: Session, _previous: Any) -> None:
        session.info.pop(_EVENT_IDS, None)
        session.info.pop(_JOBS, None)

    def deliver(self, ids: list[str]) -> int:
        """Deliver these events (recorded by a transaction that just committed), in order, after
        any older undelivered event of the same tenant and topic (a leftover of a failed delivery)."""
        with self._lock, unit_of_work(self._factory) as session:
            mine = session.execute(
                select(OutboxEvent.tenant_id, OutboxEvent.topic, OutboxEvent.seq).where(
                    OutboxEvent.id.in_(ids)
                )
            ).all()
            if not mine:
                return 0
            last = max(seq for _t, _p, seq in mine)
            pairs = {(tenant, topic) for tenant, topic, _s in mine}
            candidates = session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.seq <= last, OutboxEvent.topic.in_({topic for _t, topic in pairs}))
                .order_by(OutboxEvent.seq)
                .with_for_update(skip_locked=True)
            )
            return self._send(session, [r for r in candidates if (r.tenant_id, r.topic) in pairs])

    def deliver_due(self, *, settle_s: float = SETTLE_S, limit: int | None = None) -> int:
        """Deliver events left by a crash or a failed delivery (the worker calls this each round;
        a starting process with ``settle_s=0``)."""
        now = self._clock()
        with self._lock, unit_of_work(self._factory) as session:
            rows = list(
                session.scalars(
                    select(OutboxEvent)
                    .where(
                        OutboxEvent.next_attempt_at <= now,
                        OutboxEvent.created_at <= now - timedelta(seconds=settle_s),
                    )
                    .order_by(OutboxEvent.seq)
                    .limit(limit or self._batch)
                    .with_for_update(skip_locked=True)
                )
            )
            return self._send(session, rows)

    def _send(self, session: Session, rows: list[OutboxEvent]) -> int:
        sent = 0
        # After a failure, later events of the same tenant and topic wait too: their order holds.
        held: set[tuple[str | None, str]] = set()
        for row in rows:
            if (row.tenant_id, row.topic) in held:
                continue
            try:
                self._bus.publish(row.topic, row.payload, require_delivery=True)
            except Exception as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                delay = min(2.0 ** max(row.attempts - 1, 0), MAX_BACKOFF_S)
                row.next_attempt_at = self._clock() + timedelta(seconds=delay)
                log.warning("outbox: %s %s attempt %d failed: %s", row.topic, row.id, row.attempts, exc)
                held.add((row.tenant_id, row.topic))
                continue
            session.delete(row)
            sent += 1
        return sent
