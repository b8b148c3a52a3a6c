"""Fraud-check request and answer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from control_plane.orm_base import utc_representable
from fraud_model.validation import looks_like_pan


class FraudCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    txn_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    card_token: str = Field(
        min_length=1, max_length=128, description="The tenant's card token, never a raw PAN"
    )
    terminal_id: str = Field(min_length=1, max_length=64)
    timestamp: AwareDatetime = Field(description="When the transaction happened, with a timezone")
    amount: Decimal = Field(ge=0, le=Decimal("10000000"), max_digits=12, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    channel: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    device: str | None = Field(default=None, max_length=128)
    mcc: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    attributes: dict[str, str | float | bool | None] | None = Field(
        default=None,
        max_length=200,
        description="The tenant's own attributes, checked against its active feature set (docs/features.md)",
    )

    @field_validator("timestamp")
    @classmethod
    def _in_utc_range(cls, value: datetime) -> datetime:
        return utc_representable(value)

    @field_validator("card_token")
    @classmethod
    def _not_a_pan(cls, value: str) -> str:
        if looks_like_pan(value):
            raise ValueError("looks like a raw card number (PAN); send the tenant's card token instead")
        return value


class Reason(BaseModel):
    code: str
    feature: str
    text: str
    contribution: float


class FraudCheckResponse(BaseModel):
    txn_id: str
    decision: Literal["LEGIT", "REVIEW", "SUSPICIOUS"]
    score: float
    model_version: str | None
    cohort: str
    reasons: list[Reason]
    degraded: bool
    degraded_inputs: list[str]
    server_time_ms: float
    replayed: bool = False


class ScoringConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    review_threshold: Decimal = Field(ge=0, le=1, max_digits=5, decimal_places=4)
    suspicious_threshold: Decimal = Field(ge=0, le=1, max_digits=5, decimal_places=4)
    fallback: Literal["none", "rules"] = "none"
    allow_cards: list[str] = Field(default_factory=list, max_length=10_000)
    block_cards: list[str] = Field(default_factory=list, max_length=10_000)
    allow_terminals: list[str] = Field(default_factory=list, max_length=10_000)
    block_terminals: list[str] = Field(default_factory=list, max_length=10_000)


class ScoringConfigOut(ScoringConfigIn):
    updated_by: str | None
    updated_at: datetime | None


class BatchScoringOut(BaseModel):
    job_id: str
    status: str
    progress: dict[str, Any]
    result: dict[str, Any] | None
