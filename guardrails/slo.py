"""SLO error budgets and multiwindow, multi-burn-rate alerts (Google SRE workbook, ch. 5).

Burn rate is how fast the error budget is being spent relative to spending it exactly over the
SLO period: ``error_ratio / (1 - target)``. A rule fires when *both* its long and its short window
burn at or above the threshold: the long window proves the burn is significant, the short window
proves it is still happening, so an alert clears soon after the errors stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S
DEFAULT_PERIOD_S = 28 * DAY_S
_RATIO_TOLERANCE = 1e-9  # ratios from summed floats may overshoot [0, 1] by rounding


@dataclass(frozen=True)
class SLO:
    """An availability objective: ``target`` of requests good over ``period_s``."""

    target: float
    period_s: float = DEFAULT_PERIOD_S

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"SLO target must be in (0, 1), got {self.target}")
        if not self.period_s > 0:
            raise ValueError(f"SLO period must be positive, got {self.period_s}")

    @property
    def error_budget(self) -> float:
        """The fraction of requests allowed to fail, ``1 - target``."""
        return 1.0 - self.target


def burn_rate(error_ratio: float, slo: SLO) -> float:
    """How many times faster than "exactly on budget" errors are spending the budget."""
    if not -_RATIO_TOLERANCE <= error_ratio <= 1.0 + _RATIO_TOLERANCE:
        raise ValueError(f"error ratio must be in [0, 1], got {error_ratio}")
    return min(max(error_ratio, 0.0), 1.0) / slo.error_budget


def budget_consumed(burn_rate: float, window_s: float, period_s: float) -> float:
    """Fraction of the period's error budget spent by burning at ``burn_rate`` for ``window_s``."""
    if burn_rate < 0 or window_s < 0 or period_s <= 0:
        raise ValueError("burn rate and window must be >= 0 and the period > 0")
    return burn_rate * window_s / period_s


class Severity(StrEnum):
    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True)
class BurnRateRule:
    severity: Severity
    long_window_s: float
    short_window_s: float
    threshold: float


# The workbook's recommended table: 2% of a 30-day budget in 1 h (14.4), 5% in 6 h (6),
# 10% in 3 days (1). With the default 28-day period the same burn rates spend slightly more
# of the budget (14.4 over 1 h = 2.1%), which errs on the side of alerting.
DEFAULT_BURN_RATE_RULES: tuple[BurnRateRule, ...] = (
    BurnRateRule(Severity.PAGE, long_window_s=HOUR_S, short_window_s=5 * 60.0, threshold=14.4),
    BurnRateRule(Severity.PAGE, long_window_s=6 * HOUR_S, short_window_s=30 * 60.0, threshold=6.0),
    BurnRateRule(Severity.TICKET, long_window_s=3 * DAY_S, short_window_s=6 * HOUR_S, threshold=1.0),
)


@dataclass(frozen=True)
class Alert:
    severity: Severity
    long_window_s: float
    short_window_s: float
    burn_rate_long: float
    burn_rate_short: float
    threshold: float


def required_windows(rules: Sequence[BurnRateRule] = DEFAULT_BURN_RATE_RULES) -> tuple[float, ...]:
    """Every window (seconds) the rules need an error ratio for, ascending."""
    return tuple(sorted({w for r in rules for w in (r.long_window_s, r.short_window_s)}))


def evaluate_burn_alerts(
    window_error_ratios: Mapping[float, float],
    slo: SLO,
    rules: Sequence[BurnRateRule] = DEFAULT_BURN_RATE_RULES,
) -> list[Alert]:
    """The alerts whose long *and* short window both burn at or above the rule's threshold.

    ``window_error_ratios`` maps a window length in seconds to the error ratio observed over the
    most recent window of that length. A window the rules need but the mapping lacks raises
    ``ValueError``: a missing measurement must not read as "no alert". Pages come first.
    """
    missing = [w for w in required_windows(rules) if w not in window_error_ratios]
    if missing:
        raise ValueError(f"error ratios missing for windows {missing} (seconds)")
    alerts = []
    for rule in rules:
        long_burn = burn_rate(window_error_ratios[rule.long_window_s], slo)
        short_burn = burn_rate(window_error_ratios[rule.short_window_s], slo)
        if long_burn >= rule.threshold and short_burn >= rule.threshold:
            alerts.append(
                Alert(
                    rule.severity,
                    rule.long_window_s,
                    rule.short_window_s,
                    long_burn,
                    short_burn,
                    rule.threshold,
                )
            )
    return sorted(alerts, key=lambda a: (a.severity != Severity.PAGE, a.long_window_s))


def scaled_windows(
    bake_time_s: float,
    rules: Sequence[BurnRateRule] = DEFAULT_BURN_RATE_RULES,
    *,
    min_window_s: float = 1.0,
) -> tuple[BurnRateRule, ...]:
    """The page rules with their windows scaled so they all fit inside a canary step's bake time.

    Every window is multiplied by ``k = bake_time_s / longest page long window`` (6 h in the
    default table): the 6 h/30 min rule becomes bake/(bake/12) and the 1 h/5 min rule
    bake/6 and bake/72. Ratios between windows and the thresholds are unchanged (a burn rate is
    dimensionless); short windows are floored at ``min_window_s``. Ticket rules are dropped: a
    canary step either passes or fails within its bake time, and a 3-day window would outlast it.
    """
    if bake_time_s <= 0:
        raise ValueError(f"bake time must be positive, got {bake_time_s}")
    pages = [r for r in rules if r.severity == Severity.PAGE]
    if not pages:
        raise ValueError("no page rules to scale")
    k = bake_time_s / max(r.long_window_s for r in pages)
    return tuple(
        BurnRateRule(
            r.severity,
            long_window_s=max(r.long_window_s * k, min_window_s),
            short_window_s=max(r.short_window_s * k, min_window_s),
            threshold=r.threshold,
        )
        for r in pages
    )


@dataclass(frozen=True)
class ErrorBudget:
    """The error budget of ``slo`` after ``good`` of ``total`` requests in the current period."""

    slo: SLO
    good: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 0 or not 0 <= self.good <= self.total:
            raise ValueError(f"need 0 <= good <= total, got good={self.good}, total={self.total}")

    @property
    def errors(self) -> int:
        return self.total - self.good

    @property
    def allowed_errors(self) -> float:
        return self.slo.error_budget * self.total

    @property
    def consumed_fraction(self) -> float:
        """Fraction of the budget spent (above 1 once overspent); 0 before any traffic."""
        if self.total == 0:
            return 0.0
        return self.errors / self.allowed_errors

    @property
    def remaining_fraction(self) -> float:
        """``1 - consumed``: 1 untouched, 0 exhausted, negative when overspent."""
        return 1.0 - self.consumed_fraction

    @property
    def frozen(self) -> bool:
        """Rollouts freeze once the budget is exhausted (remaining <= 0)."""
        # Tolerate float error exactly at the boundary (errors == allowed_errors).
        return self.remaining_fraction <= 0 or math.isclose(self.remaining_fraction, 0.0, abs_tol=1e-12)
