"""Review API shapes, and the flagged record as the review domain validates it on ingest."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from control_plane.orm_base import utc_representable

Decision = Literal["REVIEW", "SUSPICIOUS"]
StatusFilter = Literal["open", "claimed", "escalated", "decided"]
Verdict = Literal["fraud", "legit", "escalate"]
Resolution = Literal["fraud", "legit"]
SortKey = Literal["score", "amount", "age"]
SortOrder = Literal["asc", "desc"]

MAX_PAGE = 200
BULK_MAX = 1000
TOP_REASONS = 3
MAX_CLAIM_MINUTES = 480
DEFAULT_CLAIM_MINUTES = 60


def _not_below(value: Any, info: ValidationInfo, lower_field: str) -> Any:
    lower = info.data.get(lower_field)
    if value is not None and lower is not None and value < lower:
        raise ValueError(f"must not be below {lower_field} ({lower})")
    return value


class ReviewFilter(BaseModel):
    """Which review items a list or a bulk verdict applies to (all criteria must hold)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision | None = None
    status: StatusFilter | None = Field(
        default=None,
        description="open = unclaimed or claim expired; claimed = live claim; "
        "escalated = waiting for a tenant-admin; decided",
    )
    ids: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] | None = Field(
        default=None, min_length=1, max_length=BULK_MAX, description="Only these review ids (a selection)"
    )
    score_min: float | None = Field(default=None, ge=0, le=1)
    score_max: float | None = Field(default=None, ge=0, le=1)
    amount_min: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    amount_max: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    since: AwareDatetime | None = Field(default=None, description="Transaction time, inclusive")
    until: AwareDatetime | None = Field(default=None, description="Transaction time, exclusive")
    card_token: str | None = Field(default=None, min_length=1, max_length=128)
    terminal_id: str | None = Field(default=None, min_length=1, max_length=128)

    @field_validator("since", "until")
    @classmethod
    def _in_utc_range(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc_representable(value)

    @field_validator("score_max")
    @classmethod
    def _score_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        return _not_below(value, info, "score_min")  # type: ignore[no-any-return]

    @field_validator("amount_max")
    @classmethod
    def _amount_range(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        return _not_below(value, info, "amount_min")  # type: ignore[no-any-return]

    @field_validator("until")
    @classmethod
    def _time_range(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if value is not None and since is not None and value <= since:
            raise ValueError("must be after since")
        return value

    def criteria(self) -> dict[str, Any]:
        """The criteria that are set (for audit evidence and links)."""
        return self.model_dump(mode="json", include=set(ReviewFilter.model_fields), exclude_none=True)


class ReviewQuery(ReviewFilter):
    """A page of the queue: the filter, a sort key and direction, and a cursor from the last page."""

    sort: SortKey = Field(default="score", description="score | amount | age (time since the transaction)")
    order: SortOrder = "desc"
    cursor: str | None = Field(default=None, max_length=512, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: int = Field(default=DEFAULT_CLAIM_MINUTES, ge=1, le=MAX_CLAIM_MINUTES)


class VerdictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    note: str | None = Field(default=None, max_length=2000)


class ResolveRequest(BaseModel):
    """A tenant-admin's final verdict on an escalated item."""

    model_config = ConfigDict(extra="forbid")
    verdict: Resolution
    note: str | None = Field(default=None, max_length=2000)


class ReopenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _narrowed(value: ReviewFilter) -> ReviewFilter:
    if not value.criteria():
        raise ValueError("set at least one criterion (a bulk action never applies to everything)")
    return value


class BulkClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: ReviewFilter
    minutes: int = Field(default=DEFAULT_CLAIM_MINUTES, ge=1, le=MAX_CLAIM_MINUTES)
    expected_count: int | None = Field(
        default=None, ge=0, description="Refuse (409) unless the filter matches exactly this many items"
    )

    @field_validator("filter")
    @classmethod
    def _narrowing(cls, value: ReviewFilter) -> ReviewFilter:
        return _narrowed(value)


class BulkVerdictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter: ReviewFilter
    verdict: Verdict
    note: str | None = Field(default=None, max_length=2000)
    expected_count: int | None = Field(
        default=None, ge=0, description="Refuse (409) unless the filter matches exactly this many items"
    )

    @field_validator("filter")
    @classmethod
    def _narrowing(cls, value: ReviewFilter) -> ReviewFilter:
        return _narrowed(value)


class ReviewOut(BaseModel):
    id: str
    flagged_id: str
    txn_id: str
    decision: str
    score: float
    amount: Decimal
    currency: str
    card_token: str
    terminal_id: str
    txn_ts: datetime
    model_version: str | None
    status: StatusFilter = Field(description="Effective status: an expired claim reads as open")
    claimed_by: str | None
    claim_expires_at: datetime | None
    verdict: Verdict | None = Field(description="escalate while escalated; fraud | legit once decided")
    note: str | None
    decided_by: str | None
    decided_at: datetime | None
    escalated_by: str | None = None
    escalated_at: datetime | None = None
    escalation_note: str | None = None
    top_reasons: list[str] = Field(default_factory=list, description="The top reason codes (≤ 3)")
    created_at: datetime


class ReasonOut(BaseModel):
    code: str
    feature: str
    text: str
    contribution: float


class TransactionOut(BaseModel):
    txn_id: str
    card_token: str
    terminal_id: str
    ts: datetime
    amount: Decimal
    currency: str
    channel: str | None = None
    country: str | None = None
    mcc: str | None = None


class ReviewDetailOut(ReviewOut):
    cohort: str
    degraded: bool
    scored_at: datetime
    reasons: list[ReasonOut]
    features: dict[str, float] = Field(description="The features as the model scored them")
    transaction: TransactionOut
    history: list[ReviewOut] = Field(description="The card's other review items, newest first (≤ 20)")


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")
    limit: int
    total: int = Field(description="How many items the filter matches (every page)")
    oldest_open_since: datetime | None = Field(
        description="When the longest-waiting open item entered the queue (null: none open)"
    )


class BulkClaimOut(BaseModel):
    count: int
    ids: list[str]
    claim_expires_at: datetime


class BulkVerdictOut(BaseModel):
    verdict: Verdict
    count: int
    ids: list[str]


# -- the flagged record (control_plane.review.contract.FlaggedPayload), validated on ingest --


class FlaggedTransactionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    txn_id: str = Field(min_length=1, max_length=80)
    card_token: str = Field(min_length=1, max_length=128)
    terminal_id: str = Field(min_length=1, max_length=128)
    ts: AwareDatetime
    amount: Decimal = Field(max_digits=18, decimal_places=4)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    channel: str | None = None
    country: str | None = None
    mcc: str | None = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str
    feature: str
    text: str
    contribution: float


class FlaggedPayloadIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    flagged_id: str = Field(min_length=1, max_length=80)
    txn_id: str = Field(min_length=1, max_length=80)
    decision: Decision
    score: float
    model_version: str | None = Field(default=None, max_length=80)
    cohort: str
    reasons: list[ReasonIn]
    features: dict[str, float]
    degraded: bool
    transaction: FlaggedTransactionIn
    scored_at: AwareDatetime
