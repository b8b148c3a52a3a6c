"""Labels go out through the outbox: only for committed verdicts, after the commit, in order, and
they survive a failed publish and a crash."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from control_plane.app import create_app
from control_plane.auth.scopes import Principal, Scope
from control_plane.bootstrap.state import State
from control_plane.orm_base import utcnow
from control_plane.outbox.orm import OutboxEvent
from control_plane.review import service
from control_plane.settings import AppSettings
from tests.control_plane.review.conftest import IngestFn, flagged, key_id


def _admin(tenant: dict[str, Any]) -> Principal:
    return Principal(key_id=key_id(tenant["admin"]), scope=Scope.TENANT_ADMIN, tenant_id=tenant["id"])


def _outbox(container: State) -> list[OutboxEvent]:
    with container.factory() as s:
        return list(s.scalars(select(OutboxEvent).order_by(OutboxEvent.seq)))


def test_a_rolled_back_verdict_publishes_nothing(
    container: State, tenant: dict[str, Any], ingest: IngestFn, labels_seen: list[dict[str, Any]]
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    session = container.factory()
    service.decide(
        session, tenant["id"], rid, principal=_admin(tenant), verdict="fraud", note=None, now=utcnow()
    )
    session.flush()
    assert labels_seen == []  # not before the commit
    session.rollback()
    session.close()
    assert labels_seen == [] and _outbox(container) == []


def test_a_committed_verdict_publishes_after_commit_once(
    container: State, tenant: dict[str, Any], ingest: IngestFn, labels_seen: list[dict[str, Any]]
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    with container.factory() as session:
        service.decide(
            session, tenant["id"], rid, principal=_admin(tenant), verdict="legit", note=None, now=utcnow()
        )
        session.flush()
        assert labels_seen == []
        session.commit()
    assert [m["txn_id"] for m in labels_seen] == ["tx_0001"]
    assert _outbox(container) == []  # delivered rows leave the table
    assert labels_seen[0]["label_id"].startswith("lbl_")


def test_a_failed_publish_keeps_the_label_for_the_next_run(
    container: State,
    tenant: dict[str, Any],
    ingest: IngestFn,
    labels_seen: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r1, r2 = ingest(tenant["id"], flagged(1), flagged(2))
    bus = container.providers.event_bus
    real_publish = bus.publish

    def broken(topic: str, message: Any, **_kw: Any) -> None:
        raise ConnectionError("bus unreachable")

    monkeypatch.setattr(bus, "publish", broken)
    with container.factory() as session:
        service.decide(
            session, tenant["id"], r1, principal=_admin(tenant), verdict="fraud", note=None, now=utcnow()
        )
        session.commit()  # the verdict stands even though its label could not go out yet
    (kept,) = _outbox(container)
    assert labels_seen == [] and kept.attempts == 1 and "bus unreachable" in (kept.last_error or "")
    monkeypatch.setattr(bus, "publish", real_publish)
    with container.factory() as session:
        service.decide(
            session, tenant["id"], r2, principal=_admin(tenant), verdict="legit", note=None, now=utcnow()
        )
        session.commit()
    assert [m["txn_id"] for m in labels_seen] == ["tx_0001", "tx_0002"]  # in order, the leftover first
    assert _outbox(container) == []


def test_labels_left_by_a_crash_go_out_when_the_app_starts(
    settings: AppSettings,
    container: State,
    tenant: dict[str, Any],
    ingest: IngestFn,
    labels_seen: list[dict[str, Any]],
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    # A process that committed the verdict and died before its relay ran: a factory without the hook.
    crashed = sessionmaker(bind=container.engine, expire_on_commit=False)
    with crashed() as session:
        service.decide(
            session, tenant["id"], rid, principal=_admin(tenant), verdict="fraud", note=None, now=utcnow()
        )
        session.commit()
    assert labels_seen == []
    with TestClient(create_app(settings, container)):
        assert [m["txn_id"] for m in labels_seen] == ["tx_0001"]
