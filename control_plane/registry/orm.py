"""Model versions per tenant, with lineage and stage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20), index=True)
    artifact_key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    training_job_id: Mapped[str | None] = mapped_column(String(40))
    # Where the run was computed: backend job name, SageMaker ARN, spot, billable seconds, output.
    training_run: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    dataset_id: Mapped[str | None] = mapped_column(String(40))
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    feature_set_version: Mapped[str] = mapped_column(String(40))
    code_version: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    gate: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What production monitoring compares traffic with (fraud_model.profile); None before issue 17.
    reference_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    analyst_labels: Mapped[int] = mapped_column(Integer, default=0)
    approved_by: Mapped[str | None] = mapped_column(String(80))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
