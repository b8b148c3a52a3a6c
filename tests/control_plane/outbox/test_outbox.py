"""The outbox: events recorded in a transaction are delivered after its commit, once it commits,
in order, and survive a failed delivery and a crash between the commit and the delivery."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from control_plane.bootstrap.state import State
from control_plane.jobs import queue
from control_plane.orm_base import utcnow
from control_plane.outbox import OutboxRelay, emit
from control_plane.outbox.orm import OutboxEvent
from providers.local.event_bus import InProcessEventBus

TOPIC = "test.happened"


class Recorder:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.fail = False

    def __call__(self, _topic: str, message: Mapping[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("subscriber down")
        self.seen.append(dict(message))


@pytest.fixture
def seen(container: State) -> Recorder:
    recorder = Recorder()
    container.providers.event_bus.subscribe(TOPIC, recorder)
    return recorder


def rows(container: State) -> list[OutboxEvent]:
    with container.factory() as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))


def test_delivered_after_the_commit_and_never_for_a_rollback(container: State, seen: Recorder) -> None:
    with container.factory() as session:
        emit(session, TOPIC, {"tenant_id": "t1", "n": 1})
        session.flush()
        assert seen.seen == []  # not before the commit
        session.rollback()
    assert seen.seen == [] and rows(container) == []
    with container.factory() as session:
        emit(session, TOPIC, {"tenant_id": "t1", "n": 2})
        emit(session, TOPIC, {"tenant_id": "t1", "n": 3})
        session.commit()
    assert [m["n"] for m in seen.seen] == [2, 3]
    assert rows(container) == []  # delivered rows leave the table


def test_a_failed_delivery_stays_and_goes_first_next_time(container: State, seen: Recorder) -> None:
    seen.fail = True
    with container.factory() as session:
        emit(session, TOPIC, {"tenant_id": "t1", "n": 1})
        session.commit()  # the business change stands; its event waits
    (kept,) = rows(container)
    assert kept.attempts == 1 and "subscriber down" in (kept.last_error or "")
    assert kept.next_attempt_at > kept.created_at
    seen.fail = False
    with container.factory() as session:
        emit(session, TOPIC, {"tenant_id": "t1", "n": 2})
        session.commit()
    assert [m["n"] for m in seen.seen] == [1, 2]  # the leftover first, in order
    assert rows(container) == []


def test_a_crash_between_commit_and_delivery_loses_nothing(container: State, seen: Recorder) -> None:
    # A process that committed and died before its relay ran: a factory without the hook.
    crashed = sessionmaker(bind=container.engine, expire_on_commit=False)
    with crashed() as session:
        emit(session, TOPIC, {"tenant_id": "t1", "n": 7})
        session.commit()
    assert seen.seen == []
    assert container.outbox.deliver_due() == 0  # too fresh: its own relay may still be at work
    assert container.outbox.deliver_due(settle_s=0) == 1  # what a starting process does
    assert [m["n"] for m in seen.seen] == [7] and rows(container) == []


def test_the_worker_round_delivers_leftovers_once_settled(container: State, seen: Recorder) -> None:
    crashed = sessionmaker(bind=container.engine, expire_on_commit=False)
    with crashed() as session:
        row = emit(session, TOPIC, {"tenant_id": "t1", "n": 9})
        row.created_at = row.next_attempt_at = utcnow() - timedelta(minutes=1)
        session.commit()
    container.worker.run_idle_tasks()
    assert [m["n"] for m in seen.seen] == [9]


def test_a_queued_job_wakes_the_worker_only_after_the_commit(container: State) -> None:
    container.worker.wake.clear()
    with container.factory() as session:
        queue.enqueue(session, kind="noop", payload={}, tenant_id=None, now=utcnow())
        session.flush()
        assert not container.worker.wake.is_set()
        session.rollback()
    assert not container.worker.wake.is_set()
    with container.factory() as session:
        queue.enqueue(session, kind="noop", payload={}, tenant_id=None, now=utcnow())
        session.commit()
    assert container.worker.wake.is_set()


def test_relays_of_two_processes_deliver_an_event_once(container: State, seen: Recorder) -> None:
    other_bus = InProcessEventBus()
    other_seen = Recorder()
    other_bus.subscribe(TOPIC, other_seen)
    other = OutboxRelay(container.factory, other_bus)  # another process's relay, not installed
    crashed = sessionmaker(bind=container.engine, expire_on_commit=False)
    with crashed() as session:
        emit(session, TOPIC, {"tenant_id": "t1", "n": 1})
        session.commit()
    assert container.outbox.deliver_due(settle_s=0) + other.deliver_due(settle_s=0) == 1
    assert len(seen.seen) + len(other_seen.seen) == 1
