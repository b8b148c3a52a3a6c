"""Per-tenant scoring configuration: thresholds, allow / block lists, fallback."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class ScoringConfig(Base):
    __tablename__ = "scoring_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    review_threshold: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    suspicious_threshold: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    fallback: Mapped[str] = mapped_column(String(10), default="none")
    allow_cards: Mapped[list[str]] = mapped_column(JSON, default=list)
    block_cards: Mapped[list[str]] = mapped_column(JSON, default=list)
    allow_terminals: Mapped[list[str]] = mapped_column(JSON, default=list)
    block_terminals: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
