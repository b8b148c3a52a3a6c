"""Review queue tables: one item per flagged transaction, and the outbox of labels to publish."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class ReviewItem(Base):
    """A flagged transaction waiting for (or carrying) an analyst's verdict.

    ``status`` is stored as open | claimed | escalated | decided; a claim whose lease has passed
    counts as open (see ``repository.open_condition``), so nothing has to sweep expired claims.
    An escalated item waits for a tenant-admin's resolution (``escalated_*`` say who sent it up).
    """

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("tenant_id", "flagged_id", name="uq_review_items_tenant_flagged"),
        Index("ix_review_items_queue", "tenant_id", "status", "score"),
        Index("ix_review_items_card", "tenant_id", "card_token", "txn_ts"),
        Index("ix_review_items_txn_ts", "tenant_id", "txn_ts"),
        Index("ix_review_items_created", "tenant_id", "created_at"),
        Index("ix_review_items_decided", "tenant_id", "decided_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    flagged_id: Mapped[str] = mapped_column(String(80))
    txn_id: Mapped[str] = mapped_column(String(80))
    decision: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(Float)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    card_token: Mapped[str] = mapped_column(String(128))
    terminal_id: Mapped[str] = mapped_column(String(128))
    txn_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    model_version: Mapped[str | None] = mapped_column(String(80), default=None)
    status: Mapped[str] = mapped_column(String(20), default="open")
    claimed_by: Mapped[str | None] = mapped_column(String(40), default=None)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    verdict: Mapped[str | None] = mapped_column(String(20), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(40), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    escalated_by: Mapped[str | None] = mapped_column(String(40), default=None)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    escalation_note: Mapped[str | None] = mapped_column(Text, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
