"""Rollouts: a candidate version against the PRODUCTION one, driven step by step by the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class Rollout(Base):
    __tablename__ = "rollouts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    candidate_version: Mapped[str] = mapped_column(String(40))
    stable_version: Mapped[str] = mapped_column(String(40))
    strategy: Mapped[str] = mapped_column(String(10))
    steps: Mapped[list[int]] = mapped_column(JSON)
    bake_s: Mapped[int] = mapped_column(Integer)
    min_requests: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), index=True)
    phase: Mapped[str] = mapped_column(String(10))  # shadow | canary
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    weight_bp: Mapped[int] = mapped_column(Integer, default=0)
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    analyses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    salt: Mapped[str] = mapped_column(String(64))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
