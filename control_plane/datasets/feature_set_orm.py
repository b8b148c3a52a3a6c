"""A tenant's feature-set documents, one row per (name, version)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class FeatureSetVersion(Base):
    """One version of a named feature set. ``locked`` once a model is trained on it (never edited
    again); ``active`` marks the one version per tenant that checks and uploads are validated
    against and that training uses."""

    __tablename__ = "feature_sets"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "version", name="uq_feature_sets_version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def label(self) -> str:
        """How lineage names this version: ``name@vN``."""
        return f"{self.name}@v{self.version}"
