"""Labels go out only for committed verdicts, after the commit, and survive a failed publish."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from control_plane.app import create_app
from control_plane.auth.scopes import Principal, Scope
from control_plane.container import Container
from control_plane.orm_base import utcnow
from control_plane.review import service
from control_plane.review.orm import LabelOutboxRow
from control_plane.review.subscribers import RELAY_KEY
from control_plane.settings import AppSettings
from tests.control_plane.review.conftest import IngestFn, flagged, key_id


def _admin(tenant: dict[str, Any]) -> Principal:
    return Principal(key_id=key_id(tenant["admin"]), scope=Scope.TENANT_ADMIN, tenant_id=tenant["id"])


def _outbox(container: Container) -> list[LabelOutboxRow]:
    with container.factory() as s:
        return list(s.scalars(select(LabelOutboxRow).order_by(LabelOutboxRow.seq)))


def test_a_rolled_back_verdict_publishes_nothing(
    container: Container, tenant: dict[str, Any], ingest: IngestFn, labels_seen: list[dict[str, Any]]
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
    container: Container, tenant: dict[str, Any], ingest: IngestFn, labels_seen: list[dict[str, Any]]
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
    (row,) = _outbox(container)
    assert row.published_at is not None and labels_seen[0]["label_id"] == row.id


def test_a_failed_publish_keeps_the_label_for_the_next_run(
    container: Container,
    tenant: dict[str, Any],
    ingest: IngestFn,
    labels_seen: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r1, r2 = ingest(tenant["id"], flagged(1), flagged(2))
    bus = container.providers.event_bus
    real_publish = bus.publish

    def broken(topic: str, message: Any) -> None:
        raise ConnectionError("bus unreachable")

    monkeypatch.setattr(bus, "publish", broken)
    with container.factory() as session:
        service.decide(
            session, tenant["id"], r1, principal=_admin(tenant), verdict="fraud", note=None, now=utcnow()
        )
        session.commit()  # the verdict stands even though its label could not go out yet
    assert labels_seen == [] and _outbox(container)[0].published_at is None
    monkeypatch.setattr(bus, "publish", real_publish)
    with container.factory() as session:
        service.decide(
            session, tenant["id"], r2, principal=_admin(tenant), verdict="legit", note=None, now=utcnow()
        )
        session.commit()
    assert [m["txn_id"] for m in labels_seen] == ["tx_0001", "tx_0002"]  # in order, the leftover first
    assert all(r.published_at is not None for r in _outbox(container))


def test_labels_left_by_a_crash_go_out_when_the_app_starts(
    settings: AppSettings,
    container: Container,
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
    assert container.extras[RELAY_KEY] is not None
    with TestClient(create_app(settings, container)):
        assert [m["txn_id"] for m in labels_seen] == ["tx_0001"]
