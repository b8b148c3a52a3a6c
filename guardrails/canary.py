"""Canary analysis: compare a canary cohort with the stable cohort and decide a step's outcome.

Outcomes follow Argo Rollouts' analysis vocabulary: ``Successful`` (promote), ``Failed`` (roll
back), ``Inconclusive`` (not enough evidence yet; keep baking or ask a human). Every check is
reported with its metric, threshold and observed value so the audit ledger can carry the evidence.

Traffic assignment is a keyed hash of the card token, so a card stays in the same cohort across
requests and steps, and raising the canary weight only adds cards.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from guardrails.slo import SLO, burn_rate

BUCKETS = 10_000
"""Traffic buckets: weights are in basis points (1 bp = 0.01 % of cards)."""

PSI_EPSILON = 1e-4


def population_stability_index(
    expected_scores: Sequence[float], actual_scores: Sequence[float], bins: int = 10
) -> float:
    """PSI of ``actual`` against ``expected``: ``sum((a - e) * ln(a / e))`` over quantile bins.

    Bin edges are the interior quantiles of ``expected`` (equal-mass, right-closed bins; tied
    edges merge; the outer bins are open), and an empty bin counts as ``PSI_EPSILON`` so the
    logarithm stays finite. Rule of thumb: < 0.1
    stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
    """
    if bins < 2:
        raise ValueError("need at least 2 bins")
    expected = np.asarray(expected_scores, dtype=float)
    actual = np.asarray(actual_scores, dtype=float)
    if expected.size == 0 or actual.size == 0:
        raise ValueError("PSI needs non-empty expected and actual samples")
    if not (np.all(np.isfinite(expected)) and np.all(np.isfinite(actual))):
        raise ValueError("PSI needs finite scores")
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1))[1:-1])
    e_frac = (
        np.bincount(np.searchsorted(edges, expected, side="left"), minlength=edges.size + 1) / expected.size
    )
    a_frac = np.bincount(np.searchsorted(edges, actual, side="left"), minlength=edges.size + 1) / actual.size
    e_frac = np.maximum(e_frac, PSI_EPSILON)
    a_frac = np.maximum(a_frac, PSI_EPSILON)
    return float(np.sum((a_frac - e_frac) * np.log(a_frac / e_frac)))


def flag_rate(flagged: int, scored: int) -> float:
    """Share of scored requests flagged as fraud (0 when nothing was scored)."""
    if flagged < 0 or scored < 0 or flagged > scored:
        raise ValueError(f"need 0 <= flagged <= scored, got flagged={flagged}, scored={scored}")
    return flagged / scored if scored else 0.0


def flag_rate_difference(canary: CohortStats, stable: CohortStats) -> float:
    """Canary flag rate minus stable flag rate (signed; the check compares its magnitude)."""
    return canary.flag_rate - stable.flag_rate


def decision_flip_rate(pairs: Iterable[tuple[bool, bool]]) -> float:
    """Share of (stable decision, canary decision) pairs on the same transaction that differ."""
    total = flips = 0
    for stable_decision, canary_decision in pairs:
        total += 1
        flips += stable_decision != canary_decision
    return flips / total if total else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True)
class CohortStats:
    """What one cohort (canary or stable) did during the step.

    ``flagged`` counts flagged transactions among the successful (scored) requests. Latency can
    be given as raw ``latencies_ms`` or a precomputed ``p95_latency_ms`` (the latter wins).
    """

    requests: int
    errors: int
    latencies_ms: Sequence[float] = ()
    scores: Sequence[float] = ()
    flagged: int = 0
    p95_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.requests < 0 or not 0 <= self.errors <= self.requests:
            raise ValueError(f"need 0 <= errors <= requests, got {self.errors}/{self.requests}")
        if not 0 <= self.flagged <= self.requests - self.errors:
            raise ValueError("flagged must be between 0 and the number of successful requests")

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def flag_rate(self) -> float:
        return flag_rate(self.flagged, self.requests - self.errors)

    @property
    def p95_ms(self) -> float | None:
        if self.p95_latency_ms is not None:
            return self.p95_latency_ms
        return percentile(self.latencies_ms, 95.0) if self.latencies_ms else None


@dataclass(frozen=True)
class AnalysisThresholds:
    slo: SLO
    latency_slo_p95_ms: float
    min_requests: int = 500
    page_burn_rate: float = 14.4
    max_error_ratio_margin: float = 0.005
    max_latency_factor: float = 1.5
    # A canary slower than stable by less than this is not a regression, whatever the ratio: at a
    # p95 of 1-2 ms a ratio is timer and scheduler noise, not the model.
    min_latency_regression_ms: float = 5.0
    max_psi: float = 0.25
    max_flag_rate_difference: float = 0.02
    max_decision_flip_rate: float = 0.05
    psi_bins: int = 10


class AnalysisOutcome(StrEnum):
    SUCCESSFUL = "Successful"
    INCONCLUSIVE = "Inconclusive"
    FAILED = "Failed"


@dataclass(frozen=True)
class Check:
    """One comparison: ``passed`` when ``observed`` is within ``threshold`` (NaN: no data)."""

    metric: str
    threshold: float
    observed: float
    passed: bool

    @property
    def missing_data(self) -> bool:
        return math.isnan(self.observed)


@dataclass(frozen=True)
class AnalysisResult:
    outcome: AnalysisOutcome
    checks: list[Check] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and not c.missing_data]


def _at_most(metric: str, observed: float | None, threshold: float) -> Check:
    if observed is None or math.isnan(observed):
        return Check(metric, threshold, math.nan, passed=False)
    return Check(metric, threshold, observed, passed=observed <= threshold)


def analyse_step(
    canary: CohortStats,
    stable: CohortStats,
    thresholds: AnalysisThresholds,
    decision_pairs: Sequence[tuple[bool, bool]] | None = None,
) -> AnalysisResult:
    """Decide a canary step from the two cohorts.

    Inconclusive while either cohort has fewer than ``min_requests`` (no other check runs), or
    when a check has no data (latency or scores missing). Otherwise Failed if any check fails:
    canary error burn rate at or above the page threshold, canary error ratio above stable's by
    more than the margin, canary p95 over the latency SLO or over stable p95 x factor, score PSI
    over the limit, flag-rate difference beyond the limit, or (with ``decision_pairs`` from
    mirrored traffic) too many flipped decisions. Successful when every check passes.
    """
    t = thresholds
    volume = Check("requests", float(t.min_requests), float(min(canary.requests, stable.requests)), True)
    if volume.observed < t.min_requests:
        return AnalysisResult(
            AnalysisOutcome.INCONCLUSIVE, [Check(volume.metric, volume.threshold, volume.observed, False)]
        )

    canary_burn = burn_rate(canary.error_ratio, t.slo)
    checks = [
        volume,
        Check("error_burn_rate", t.page_burn_rate, canary_burn, passed=canary_burn < t.page_burn_rate),
        _at_most(
            "error_ratio_over_stable", canary.error_ratio - stable.error_ratio, t.max_error_ratio_margin
        ),
        _at_most("latency_p95_ms", canary.p95_ms, t.latency_slo_p95_ms),
    ]
    canary_p95, stable_p95 = canary.p95_ms, stable.p95_ms
    ratio = None if canary_p95 is None or stable_p95 is None or stable_p95 <= 0 else canary_p95 / stable_p95
    versus_stable = _at_most("latency_p95_vs_stable", ratio, t.max_latency_factor)
    gap = None if canary_p95 is None or stable_p95 is None else canary_p95 - stable_p95
    if ratio is not None and gap is not None and gap < t.min_latency_regression_ms:
        versus_stable = Check(versus_stable.metric, versus_stable.threshold, ratio, passed=True)
    checks.append(versus_stable)
    psi = (
        population_stability_index(stable.scores, canary.scores, t.psi_bins)
        if canary.scores and stable.scores
        else None
    )
    checks.append(_at_most("score_psi", psi, t.max_psi))
    checks.append(
        _at_most(
            "flag_rate_difference", abs(flag_rate_difference(canary, stable)), t.max_flag_rate_difference
        )
    )
    if decision_pairs is not None:
        flips = decision_flip_rate(decision_pairs) if decision_pairs else None
        checks.append(_at_most("decision_flip_rate", flips, t.max_decision_flip_rate))

    if any(not c.passed and not c.missing_data for c in checks):
        outcome = AnalysisOutcome.FAILED
    elif any(c.missing_data for c in checks):
        outcome = AnalysisOutcome.INCONCLUSIVE
    else:
        outcome = AnalysisOutcome.SUCCESSFUL
    return AnalysisResult(outcome, checks)


def traffic_bucket(salt: bytes, card_token: str) -> int:
    """The card's traffic bucket in [0, 10000): HMAC-SHA256(salt, card token) mod 10000."""
    if not salt:
        raise ValueError("traffic bucketing needs a non-empty secret salt")
    digest = hmac.new(salt, card_token.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def in_canary(bucket: int, weight_bp: int) -> bool:
    """Whether a bucket is routed to the canary at ``weight_bp`` basis points (bucket < weight)."""
    if not 0 <= bucket < BUCKETS:
        raise ValueError(f"bucket must be in [0, {BUCKETS}), got {bucket}")
    if not 0 <= weight_bp <= BUCKETS:
        raise ValueError(f"weight must be in [0, {BUCKETS}] basis points, got {weight_bp}")
    return bucket < weight_bp
