"""API key shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["tenant-admin", "app", "analyst", "sre"]
    name: str = Field(min_length=1, max_length=100)


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_s: int = Field(
        default=0,
        ge=0,
        le=7 * 86_400,
        description="Seconds the old secret keeps working after the rotation (0: it stops at once; "
        "at most 7 days), so clients can switch without an outage. The old key's `revoked_at` says when.",
    )


class KeyOut(BaseModel):
    id: str
    prefix: str = Field(description="The non-secret start of the token, to recognise it")
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    replaced_by: str | None


class KeyIssued(KeyOut):
    key: str = Field(description="The secret token. Shown once; store it now.")
