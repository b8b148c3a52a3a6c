"""Retraining tables: each retraining (its trigger, the champion / challenger comparison and the
decision) and each tenant's retraining settings.

No foreign key to ``tenants``: like the audit ledger, a retraining's record outlives nothing it
points to, and offboarding deletes the rows by tenant (``RetrainingPurger``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class Retraining(Base):
    """One retraining: why it started, what it trained, how the challenger compared, what followed."""

    __tablename__ = "retrainings"
    __table_args__ = (Index("ix_retrainings_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20))  # manual | drift | performance | schedule
    # The figures that triggered it: the policy's violations with the drift / performance input.
    trigger_evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    # queued | training | canary | awaiting_approval | rejected | failed
    status: Mapped[str] = mapped_column(String(20))
    champion_version: Mapped[str | None] = mapped_column(String(40))
    challenger_version: Mapped[str | None] = mapped_column(String(40))
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    job_id: Mapped[str | None] = mapped_column(String(40))
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    rollout_id: Mapped[str | None] = mapped_column(String(40), nullable=True, default=None)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True, default=None)
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=None)


class RetrainingSettings(Base):
    """A tenant's choice: may a challenger that wins the gate start a canary by itself?"""

    __tablename__ = "retraining_settings"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    auto_rollout: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
