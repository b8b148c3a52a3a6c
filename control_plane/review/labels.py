"""Analyst labels: queued in an outbox in the verdict's transaction, published after it commits.

Why an outbox: publishing from the request could announce a verdict that then rolls back, and
publishing after the commit loses the label if the process dies in between. The outbox row
commits or rolls back with the verdict; a relay publishes pending rows after every commit that
queued one (a SQLAlchemy ``after_commit`` hook on the process's session factory) and once when
the app starts (rows left by a crash). Delivery is at least once: a consumer keys on
``label_id`` (or ``tenant_id`` + ``txn_id``, last label wins).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.ids import new_id
from control_plane.orm_base import utcnow
from control_plane.review import repository
from control_plane.review.contract import LABEL_TOPIC
from control_plane.review.orm import LabelOutboxRow, ReviewItem
from providers.ports import EventBus

log = logging.getLogger(__name__)

LABELS_QUEUED = "review.labels_queued"  # session.info flag: this transaction wrote outbox rows
LABEL_VALUES = {"fraud": 1, "legit": 0}


def label_message(item: ReviewItem, *, label_id: str, verdict: str, decided_at: datetime) -> dict[str, Any]:
    """The ``label.recorded`` message (contract fields first, then what a consumer needs to dedupe)."""
    return {
        "tenant_id": item.tenant_id,
        "txn_id": item.txn_id,
        "card_token": item.card_token,
        "terminal_id": item.terminal_id,
        "label": LABEL_VALUES[verdict],
        "ts": item.txn_ts.isoformat(),
        "label_id": label_id,
        "verdict": verdict,
        "review_id": item.id,
        "flagged_id": item.flagged_id,
        "decided_at": decided_at.isoformat(),
    }


def queue_label(
    session: Session, item: ReviewItem, *, verdict: str, decided_at: datetime
) -> LabelOutboxRow | None:
    """Write the label into the caller's transaction; escalations carry no label."""
    if verdict not in LABEL_VALUES:
        return None
    label_id = new_id("lbl")
    row = LabelOutboxRow(
        id=label_id,
        tenant_id=item.tenant_id,
        review_id=item.id,
        message=label_message(item, label_id=label_id, verdict=verdict, decided_at=decided_at),
    )
    session.add(row)
    session.info[LABELS_QUEUED] = True
    return row


class LabelRelay:
    """Publishes pending outbox rows in order; a row is marked published only after the bus took it."""

    def __init__(self, factory: sessionmaker[Session], bus: EventBus, batch: int = 500) -> None:
        self._factory = factory
        self._bus = bus
        self._batch = batch
        # Re-entrant: a bus subscriber may itself commit a verdict while the relay runs.
        self._lock = threading.RLock()

    def publish_pending(self) -> int:
        published = 0
        with self._lock:
            while True:
                sent = self._publish_batch()
                published += sent
                if sent < self._batch:
                    return published

    def _publish_batch(self) -> int:
        sent = 0
        with unit_of_work(self._factory) as session:
            rows = repository.pending_labels(session, self._batch)
            for row in rows:
                try:
                    self._bus.publish(LABEL_TOPIC, row.message)
                except Exception:
                    # Stays pending; the next commit that queues a label (or the next start) retries.
                    log.exception("publishing label %s failed", row.id)
                    break
                row.published_at = utcnow()
                sent += 1
        return sent

    def install(self) -> None:
        """Publish after every commit of this factory's sessions that queued a label."""
        event.listen(self._factory, "after_commit", self._after_commit)
        event.listen(self._factory, "after_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(LABELS_QUEUED, False):
            try:
                self.publish_pending()
            except Exception:
                log.exception("label relay failed; the outbox keeps the labels for the next run")

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(LABELS_QUEUED, None)
