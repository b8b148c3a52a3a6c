"""Wiring of the review domain into a process: the flagged-record subscriber and the offboarding
purger for review data (labels leave through the outbox)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.review import repository, service
from control_plane.review.contract import FLAGGED_TOPIC
from providers.ports import EventBus

log = logging.getLogger(__name__)


class FlaggedSubscriber:
    """``flagged.stored`` → a review item, upserted by (tenant_id, flagged_id) in its own transaction."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __call__(self, topic: str, message: Mapping[str, Any]) -> None:
        tenant_id = message.get("tenant_id")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise ValueError(f"{topic} message without a tenant_id (flagged_id={message.get('flagged_id')})")
        with unit_of_work(self._factory) as session:
            service.ingest(session, tenant_id, message)


class ReviewPurger:
    """Offboarding: a tenant's review items and its unpublished labels."""

    name = "review_items"

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def purge(self, tenant_id: str) -> int:
        with unit_of_work(self._factory) as session:
            return repository.purge_tenant(session, tenant_id)

    def remaining(self, tenant_id: str) -> list[str]:
        with self._factory() as session:
            return repository.remaining(session, tenant_id)


def register_review_subscribers(bus: EventBus, factory: sessionmaker[Session]) -> ReviewPurger:
    """Subscribe to flagged records (one consumer acts on each); return the purger of review data."""
    bus.subscribe(FLAGGED_TOPIC, FlaggedSubscriber(factory))
    return ReviewPurger(factory)
