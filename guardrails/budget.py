"""FinOps guardrails: month-end forecasts, budget thresholds, cost anomalies, rate-limit buckets.

Money is ``Decimal`` throughout; times are timezone-aware. The token bucket works in floats
(tokens and seconds, not money) because it sits on the request path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import NamedTuple

CENT = Decimal("0.01")
MAD_TO_SIGMA = Decimal("0.6745")  # robust z = 0.6745 * (x - median) / MAD (Iglewicz & Hoaglin)


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"datetime must be timezone-aware, got {moment!r}")


def _microseconds(delta: timedelta) -> Decimal:
    return Decimal(delta // timedelta(microseconds=1))


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month containing ``now``: [first instant, first instant of next month)."""
    _require_aware(now)
    utc = now.astimezone(UTC)
    start = utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def forecast_month_end(
    cost_to_date: Decimal, now: datetime, month_start: datetime, month_end: datetime
) -> Decimal:
    """Linear month-end forecast: cost so far scaled by (whole month / elapsed), to the cent (half up).

    Before any time has elapsed there is nothing to extrapolate and the forecast is the cost so
    far; at or after the month end it is the actual cost.
    """
    _require_aware(now, month_start, month_end)
    if month_end <= month_start:
        raise ValueError("month_end must be after month_start")
    if cost_to_date < 0:
        raise ValueError(f"cost to date must be >= 0, got {cost_to_date}")
    elapsed = _microseconds(min(now, month_end) - month_start)
    if elapsed <= 0 or now >= month_end:
        return cost_to_date.quantize(CENT, rounding=ROUND_HALF_UP)
    return (cost_to_date * _microseconds(month_end - month_start) / elapsed).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


class BudgetThreshold(StrEnum):
    """Notification thresholds, in escalation order."""

    ACTUAL_50 = "actual_50"
    ACTUAL_80 = "actual_80"
    FORECAST_100 = "forecast_100"
    ACTUAL_100 = "actual_100"


class BudgetLevel(StrEnum):
    """Matches ``tenant.budget_status`` in the deployment policy."""

    OK = "ok"
    WARNING = "warning"
    FROZEN = "frozen"


_THRESHOLD_RULES: tuple[tuple[BudgetThreshold, str, Decimal], ...] = (
    (BudgetThreshold.ACTUAL_50, "actual", Decimal("0.5")),
    (BudgetThreshold.ACTUAL_80, "actual", Decimal("0.8")),
    (BudgetThreshold.FORECAST_100, "forecast", Decimal("1")),
    (BudgetThreshold.ACTUAL_100, "actual", Decimal("1")),
)


@dataclass(frozen=True)
class BudgetStatus:
    budget: Decimal
    actual: Decimal
    forecast: Decimal
    actual_fraction: Decimal
    forecast_fraction: Decimal
    crossed: tuple[BudgetThreshold, ...]
    level: BudgetLevel

    @property
    def frozen(self) -> bool:
        return self.level == BudgetLevel.FROZEN

    @property
    def headroom(self) -> Decimal:
        """Budget left this month (negative when overspent)."""
        return self.budget - self.actual


def budget_status(actual: Decimal, forecast: Decimal, budget: Decimal) -> BudgetStatus:
    """Which thresholds spend has crossed (inclusive): 50 % and 80 % actual, 100 % forecast, 100 %
    actual. 100 % actual freezes; any other crossed threshold is a warning."""
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    if actual < 0 or forecast < 0:
        raise ValueError("actual and forecast must be >= 0")
    fractions = {"actual": actual / budget, "forecast": forecast / budget}
    crossed = tuple(t for t, basis, limit in _THRESHOLD_RULES if fractions[basis] >= limit)
    if BudgetThreshold.ACTUAL_100 in crossed:
        level = BudgetLevel.FROZEN
    elif crossed:
        level = BudgetLevel.WARNING
    else:
        level = BudgetLevel.OK
    return BudgetStatus(budget, actual, forecast, fractions["actual"], fractions["forecast"], crossed, level)


def thresholds_to_notify(
    already_notified: Set[BudgetThreshold], status: BudgetStatus
) -> list[BudgetThreshold]:
    """Crossed thresholds not yet notified, in escalation order.

    The caller keeps ``already_notified`` per tenant and calendar month (empty at the start of a
    month) and adds what it sends, so each threshold notifies at most once a month.
    """
    return [t for t in status.crossed if t not in already_notified]


def median(values: Sequence[Decimal]) -> Decimal:
    if not values:
        raise ValueError("median of an empty sample")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


class AnomalyMethod(StrEnum):
    ROBUST_Z = "robust_z"
    RATIO_TO_MEDIAN = "ratio_to_median"
    INSUFFICIENT_HISTORY = "insufficient_history"


@dataclass(frozen=True)
class CostAnomaly:
    is_anomaly: bool
    method: AnomalyMethod
    score: Decimal | None
    threshold: Decimal
    median: Decimal | None
    mad: Decimal | None


def cost_anomaly(
    today_cost: Decimal,
    recent_daily_costs: Sequence[Decimal],
    threshold: Decimal = Decimal("3.5"),
    *,
    ratio_threshold: Decimal = Decimal("2"),
    min_history: int = 7,
) -> CostAnomaly:
    """Is today's spend an upward outlier against recent days?

    Robust z-score ``0.6745 * (today - median) / MAD`` against ``threshold`` (3.5 is the usual
    cut-off). When MAD is 0 (flat spend) the z-score is undefined, so it falls back to
    ``today / median`` against ``ratio_threshold`` (with a zero median, any spend is anomalous).
    Only increases count: a spend drop is not a cost risk. Fewer than ``min_history`` days of
    history is never an anomaly.
    """
    if today_cost < 0 or any(c < 0 for c in recent_daily_costs):
        raise ValueError("costs must be >= 0")
    if len(recent_daily_costs) < min_history:
        return CostAnomaly(False, AnomalyMethod.INSUFFICIENT_HISTORY, None, threshold, None, None)
    med = median(recent_daily_costs)
    mad = median([abs(c - med) for c in recent_daily_costs])
    if mad > 0:
        score = MAD_TO_SIGMA * (today_cost - med) / mad
        return CostAnomaly(score > threshold, AnomalyMethod.ROBUST_Z, score, threshold, med, mad)
    if med == 0:
        return CostAnomaly(today_cost > 0, AnomalyMethod.RATIO_TO_MEDIAN, None, ratio_threshold, med, mad)
    ratio = today_cost / med
    return CostAnomaly(
        ratio >= ratio_threshold, AnomalyMethod.RATIO_TO_MEDIAN, ratio, ratio_threshold, med, mad
    )


class TakeResult(NamedTuple):
    allowed: bool
    tokens: float
    retry_after_s: float


_TOKEN_EPSILON = 1e-9  # absorbs float error when a caller waits exactly retry_after_s


def refill(tokens: float, last_ts: float, now: float, rate: float, burst: float) -> float:
    """Tokens after refilling at ``rate``/s since ``last_ts``, capped at ``burst``.

    A clock that went backwards refills nothing (it never removes tokens either).
    """
    if rate <= 0 or burst <= 0:
        raise ValueError("rate and burst must be positive")
    elapsed = max(0.0, now - last_ts)
    return min(burst, max(0.0, tokens) + elapsed * rate)


def take(
    tokens: float, last_ts: float, now: float, rate: float, burst: float, cost: float = 1.0
) -> TakeResult:
    """Refill, then try to take ``cost`` tokens.

    Returns (allowed, tokens left, seconds until ``cost`` tokens will be available); the caller
    stores the tokens with ``now`` as the new ``last_ts`` whether or not the take was allowed.
    """
    if not 0 < cost <= burst:
        raise ValueError(f"cost must be in (0, burst={burst}], got {cost}")
    available = refill(tokens, last_ts, now, rate, burst)
    if available + _TOKEN_EPSILON >= cost:
        return TakeResult(True, max(0.0, available - cost), 0.0)
    return TakeResult(False, available, (cost - available) / rate)


@dataclass(frozen=True)
class TokenBucket:
    """A rate limit as pure math: the state (tokens, last_ts) lives with the caller (e.g. Redis)."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst > 0 and math.isfinite(self.rate) and math.isfinite(self.burst)):
            raise ValueError("rate and burst must be positive and finite")

    def refill(self, tokens: float, last_ts: float, now: float) -> float:
        return refill(tokens, last_ts, now, self.rate, self.burst)

    def take(self, tokens: float, last_ts: float, now: float, cost: float = 1.0) -> TakeResult:
        return take(tokens, last_ts, now, self.rate, self.burst, cost)
