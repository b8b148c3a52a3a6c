"""Rollout API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RolloutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidate_version: str = Field(min_length=1, max_length=40)
    strategy: Literal["canary", "linear", "shadow"] = "canary"
    steps: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Canary weights in basis points, ending at 10000",
    )
    step_size: int | None = Field(default=None, ge=100, le=5000, description="Linear step in basis points")
    bake_s: int = Field(default=600, ge=1, le=86_400, description="Seconds each step bakes before analysis")
    min_requests: int = Field(default=500, ge=1, le=10_000_000)
    emergency: bool = Field(default=False, description="An emergency fix: passes an error-budget freeze")


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class RolloutOut(BaseModel):
    id: str
    candidate_version: str
    stable_version: str
    strategy: str
    steps: list[int]
    bake_s: int
    min_requests: int
    state: str
    phase: str
    step_index: int
    weight_bp: int
    weights: dict[str, int] = Field(description="The weights the rollout's state wants (basis points)")
    weights_read_back: dict[str, int] | None = Field(
        default=None,
        description="The weights read back from the model host (on AWS, the endpoint): after a control "
        "action once it took them, and on GET for the rollout's two versions; null when unknown",
    )
    step_started_at: datetime | None
    analyses: list[dict[str, Any]]
    emergency: bool
    status_reason: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None
