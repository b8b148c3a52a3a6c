"""Request and response bodies of the monitoring routes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Window = Literal["hour", "day"]
LabelValue = Literal["fraud", "legit", "chargeback"]


class Histogram(BaseModel):
    edges: list[float] = Field(
        description="Inner bin edges; bins are (-inf, e0], (e0, e1], …, (e_last, +inf)"
    )
    reference: list[int]
    current: list[int]


class FeatureDrift(BaseModel):
    feature: str
    psi: float
    js_distance: float
    histogram: Histogram


class QualityViolation(BaseModel):
    feature: str
    kind: Literal["nulls", "out_of_range", "unseen"]
    count: int
    rate: float


class DecisionRate(BaseModel):
    decision: str
    reference: float
    current: float
    change: float


class DriftReport(BaseModel):
    model_version: str
    window: Window
    window_start: datetime
    window_end: datetime
    volume: int
    volume_by_cohort: dict[str, int]
    score: FeatureDrift
    features: list[FeatureDrift] = Field(description="Every feature, the largest PSI first")
    decision_rates: list[DecisionRate]
    quality: list[QualityViolation]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    txn_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    label: LabelValue
    known_at: AwareDatetime = Field(description="When the label became known (e.g. the chargeback date)")
    source: str = Field(default="api", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[LabelIn] = Field(min_length=1, max_length=10_000)


class LabelsOut(BaseModel):
    recorded: int = Field(description="New labels")
    updated: int = Field(description="Labels of the same (txn_id, source) that changed")
    unchanged: int = Field(description="Repeats of a label already recorded (idempotent)")
    unknown_txn_ids: list[str] = Field(description="txn_ids this tenant never scored: not recorded")


class DecisionPerformance(BaseModel):
    flagged: int
    fraud: int
    precision: float | None


class DayPerformance(BaseModel):
    day: date
    scored: int
    labelled: int
    fraud: int = Field(description="Transactions labelled fraud or chargeback")
    flagged: int = Field(description="REVIEW + SUSPICIOUS answers")
    precision: float | None = Field(description="Fraud among flagged; an unlabelled flag counts as legit")
    recall: float | None = Field(description="Flagged among labelled fraud")
    review: DecisionPerformance
    suspicious: DecisionPerformance
    fraud_amount_caught: Decimal
    fraud_amount_missed: Decimal
    label_maturity_days: int = Field(
        description="Days of labels that have arrived for this day (latest label known minus the day)"
    )


class PerformanceReport(BaseModel):
    model_version: str | None
    latest_label_known_at: datetime | None
    days: list[DayPerformance]


class BacktestIn(BaseModel):
    """A proposal: any of thresholds and allow / block lists (omitted: as live now)."""

    model_config = ConfigDict(extra="forbid")
    model_version: str | None = Field(default=None, max_length=40)
    review_threshold: Decimal | None = Field(default=None, ge=0, le=1, max_digits=5, decimal_places=4)
    suspicious_threshold: Decimal | None = Field(default=None, ge=0, le=1, max_digits=5, decimal_places=4)
    allow_cards: list[str] | None = Field(default=None, max_length=10_000)
    block_cards: list[str] | None = Field(default=None, max_length=10_000)
    allow_terminals: list[str] | None = Field(default=None, max_length=10_000)
    block_terminals: list[str] | None = Field(default=None, max_length=10_000)
    days: int = Field(default=30, ge=1, le=90)
    end: date | None = Field(default=None, description="Last day replayed (default: the latest scored day)")


class BacktestSide(BaseModel):
    flagged: int
    review: int = Field(description="Review workload: REVIEW answers")
    suspicious: int
    precision: float | None
    recall: float | None
    fraud_amount_caught: Decimal
    fraud_amount_missed: Decimal


class BacktestDay(BaseModel):
    day: date
    transactions: int
    live: BacktestSide
    proposed: BacktestSide


class Flip(BaseModel):
    from_decision: str
    to_decision: str
    count: int
    examples: list[str] = Field(description="Up to five txn_ids")


class BacktestOut(BaseModel):
    window_start: datetime
    window_end: datetime
    transactions: int
    labelled: int
    live: BacktestSide
    proposed: BacktestSide
    flips: list[Flip] = Field(description="Decision changes live -> proposed, the most frequent first")
    days: list[BacktestDay]
    replay_mismatches: int = Field(description="Checks whose live replay differs from the answer given")
