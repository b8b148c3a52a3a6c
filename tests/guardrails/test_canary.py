"""Canary analysis: drift, flag rates, step outcomes and sticky traffic buckets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrails.canary import (
    BUCKETS,
    AnalysisOutcome,
    AnalysisThresholds,
    Check,
    CohortStats,
    analyse_step,
    decision_flip_rate,
    flag_rate_difference,
    in_canary,
    percentile,
    population_stability_index,
    traffic_bucket,
)
from guardrails.slo import SLO

RNG_SEED = 20240611
THRESHOLDS = AnalysisThresholds(slo=SLO(0.999), latency_slo_p95_ms=200.0, min_requests=500)


def _scores(n: int, a: float, b: float, seed: int) -> list[float]:
    return list(np.random.default_rng(seed).beta(a, b, size=n))


def cohort(
    requests: int = 5000,
    errors: int = 1,
    latency_ms: float = 80.0,
    scores: list[float] | None = None,
    flag_rate: float = 0.02,
    seed: int = RNG_SEED,
) -> CohortStats:
    rng = np.random.default_rng(seed)
    latencies = list(rng.normal(latency_ms, latency_ms * 0.1, size=400).clip(min=1.0))
    return CohortStats(
        requests=requests,
        errors=errors,
        latencies_ms=latencies,
        scores=scores if scores is not None else _scores(2000, 1, 12, seed),
        flagged=round((requests - errors) * flag_rate),
    )


def _check(checks: list[Check], metric: str) -> Check:
    return next(c for c in checks if c.metric == metric)


# --- PSI ------------------------------------------------------------------------------------


def test_psi_of_a_sample_against_itself_is_zero() -> None:
    sample = _scores(1000, 2, 5, 1)
    assert population_stability_index(sample, sample) == 0.0


def test_psi_separates_noise_from_drift() -> None:
    baseline = _scores(5000, 2, 5, 1)
    same_distribution = _scores(5000, 2, 5, 2)
    shifted = _scores(5000, 5, 2, 3)
    assert population_stability_index(baseline, same_distribution) < 0.1
    assert population_stability_index(baseline, shifted) > 0.25


def test_psi_handles_ties_and_empty_bins() -> None:
    constant = [0.5] * 100
    assert population_stability_index(constant, constant) == 0.0
    assert population_stability_index(constant, [0.9] * 100) > 0.25
    spread = [i / 100 for i in range(100)]
    concentrated = population_stability_index(spread, [0.99] * 100)  # nine empty bins
    assert 0.25 < concentrated < float("inf")
    with pytest.raises(ValueError):
        population_stability_index([], [0.1])


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=200),
    st.lists(st.floats(0, 1), min_size=1, max_size=200),
    st.integers(min_value=2, max_value=20),
)
def test_psi_is_never_negative(expected: list[float], actual: list[float], bins: int) -> None:
    assert population_stability_index(expected, actual, bins) >= 0.0


# --- rates ----------------------------------------------------------------------------------


def test_flag_rate_difference_is_signed() -> None:
    canary = CohortStats(requests=1000, errors=0, flagged=50)
    stable = CohortStats(requests=2000, errors=0, flagged=40)
    assert flag_rate_difference(canary, stable) == pytest.approx(0.03)
    assert flag_rate_difference(stable, canary) == pytest.approx(-0.03)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200))
def test_decision_flip_rate_counts_disagreements(pairs: list[tuple[bool, bool]]) -> None:
    rate = decision_flip_rate(pairs)
    assert 0.0 <= rate <= 1.0
    if pairs:
        assert rate * len(pairs) == pytest.approx(sum(a != b for a, b in pairs))
    else:
        assert rate == 0.0


def test_percentile_nearest_rank() -> None:
    assert percentile(list(range(1, 101)), 95) == 95.0
    assert percentile([5.0], 95) == 5.0


# --- analyse_step ---------------------------------------------------------------------------


def test_healthy_canary_is_successful() -> None:
    result = analyse_step(cohort(seed=1), cohort(seed=2), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.SUCCESSFUL
    assert result.failed_checks == []
    assert {c.metric for c in result.checks} == {
        "requests",
        "error_burn_rate",
        "error_ratio_over_stable",
        "latency_p95_ms",
        "latency_p95_vs_stable",
        "score_psi",
        "flag_rate_difference",
    }


def test_too_little_traffic_is_inconclusive_even_if_it_looks_bad() -> None:
    result = analyse_step(cohort(requests=499, errors=400), cohort(), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.INCONCLUSIVE
    assert [(c.metric, c.threshold, c.observed, c.passed) for c in result.checks] == [
        ("requests", 500.0, 499.0, False)
    ]


def test_error_burn_at_page_rate_fails_with_evidence() -> None:
    # 0.999 SLO: a 1.5 % error ratio burns the budget 15x faster than allowed (page: 14.4).
    result = analyse_step(
        cohort(requests=10_000, errors=150), cohort(requests=10_000, errors=150), THRESHOLDS
    )
    assert result.outcome == AnalysisOutcome.FAILED
    burn = _check(result.checks, "error_burn_rate")
    assert (burn.threshold, burn.passed) == (14.4, False)
    assert burn.observed == pytest.approx(15.0)
    assert [c.metric for c in result.failed_checks] == ["error_burn_rate"]


def test_error_ratio_above_stable_by_a_margin_fails() -> None:
    result = analyse_step(cohort(requests=10_000, errors=80), cohort(requests=10_000, errors=10), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.FAILED
    assert [c.metric for c in result.failed_checks] == ["error_ratio_over_stable"]
    assert _check(result.checks, "error_ratio_over_stable").observed == pytest.approx(0.007)


def test_latency_over_the_slo_fails() -> None:
    result = analyse_step(cohort(latency_ms=190), cohort(latency_ms=185), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.FAILED
    assert [c.metric for c in result.failed_checks] == ["latency_p95_ms"]


def test_latency_much_slower_than_stable_fails() -> None:
    result = analyse_step(cohort(latency_ms=120), cohort(latency_ms=60), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.FAILED
    assert [c.metric for c in result.failed_checks] == ["latency_p95_vs_stable"]
    assert _check(result.checks, "latency_p95_vs_stable").observed == pytest.approx(2.0, rel=0.1)


def test_twice_as_slow_by_a_millisecond_is_noise_not_a_regression() -> None:
    # p95 2 ms vs 1 ms: a ratio of 2, but under the 5 ms floor of a real regression.
    result = analyse_step(cohort(latency_ms=2), cohort(latency_ms=1), THRESHOLDS)
    check = _check(result.checks, "latency_p95_vs_stable")
    assert check.passed and check.observed == pytest.approx(2.0, rel=0.2)
    assert result.outcome == AnalysisOutcome.SUCCESSFUL
    # The same ratio with a real gap fails.
    assert not _check(
        analyse_step(cohort(latency_ms=20), cohort(latency_ms=10), THRESHOLDS).checks, "latency_p95_vs_stable"
    ).passed


def test_score_drift_fails() -> None:
    drifted = cohort(scores=_scores(2000, 4, 4, 9))
    result = analyse_step(drifted, cohort(), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.FAILED
    assert "score_psi" in {c.metric for c in result.failed_checks}
    assert _check(result.checks, "score_psi").observed > 0.25


def test_flag_rate_difference_fails() -> None:
    result = analyse_step(cohort(flag_rate=0.06), cohort(flag_rate=0.02), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.FAILED
    assert [c.metric for c in result.failed_checks] == ["flag_rate_difference"]


def test_decision_flips_on_mirrored_traffic_fail() -> None:
    pairs = [(True, True)] * 90 + [(False, True)] * 10
    result = analyse_step(cohort(seed=1), cohort(seed=2), THRESHOLDS, decision_pairs=pairs)
    assert result.outcome == AnalysisOutcome.FAILED
    assert [c.metric for c in result.failed_checks] == ["decision_flip_rate"]
    few_flips = [(True, True)] * 99 + [(False, True)]
    assert analyse_step(cohort(seed=1), cohort(seed=2), THRESHOLDS, few_flips).outcome == "Successful"


def test_missing_latency_is_inconclusive_not_successful() -> None:
    no_latency = replace(cohort(), latencies_ms=())
    result = analyse_step(no_latency, cohort(), THRESHOLDS)
    assert result.outcome == AnalysisOutcome.INCONCLUSIVE
    assert _check(result.checks, "latency_p95_ms").missing_data


def test_precomputed_p95_is_used() -> None:
    result = analyse_step(replace(cohort(), latencies_ms=(), p95_latency_ms=90.0), cohort(), THRESHOLDS)
    assert _check(result.checks, "latency_p95_ms").observed == 90.0


def test_a_failed_check_outweighs_missing_data() -> None:
    bad = replace(cohort(requests=10_000, errors=500), latencies_ms=())
    assert analyse_step(bad, cohort(), THRESHOLDS).outcome == AnalysisOutcome.FAILED


# --- traffic buckets ------------------------------------------------------------------------

SALT = b"tenant-secret-salt"


def test_bucket_is_a_keyed_stable_hash() -> None:
    assert traffic_bucket(SALT, "tok_123") == traffic_bucket(SALT, "tok_123")
    buckets = {traffic_bucket(SALT, f"tok_{i}") for i in range(2000)}
    assert all(0 <= b < BUCKETS for b in buckets)
    other_salt = [traffic_bucket(b"other", f"tok_{i}") for i in range(200)]
    assert other_salt != [traffic_bucket(SALT, f"tok_{i}") for i in range(200)]
    with pytest.raises(ValueError):
        traffic_bucket(b"", "tok")


def test_canary_share_tracks_the_weight() -> None:
    buckets = [traffic_bucket(SALT, f"card-{i}") for i in range(20_000)]
    for weight_bp in (100, 1000, 5000):
        share = sum(in_canary(b, weight_bp) for b in buckets) / len(buckets)
        assert share == pytest.approx(weight_bp / BUCKETS, abs=0.01)
    assert not any(in_canary(b, 0) for b in buckets)
    assert all(in_canary(b, BUCKETS) for b in buckets)


@given(
    st.binary(min_size=1, max_size=32),
    st.lists(st.text(min_size=1, max_size=24), min_size=1, max_size=50),
    st.integers(0, BUCKETS),
    st.integers(0, BUCKETS),
)
def test_raising_the_weight_only_adds_cards(salt: bytes, cards: list[str], w1: int, w2: int) -> None:
    low, high = sorted((w1, w2))
    at_low = {c for c in cards if in_canary(traffic_bucket(salt, c), low)}
    at_high = {c for c in cards if in_canary(traffic_bucket(salt, c), high)}
    assert at_low <= at_high


def test_in_canary_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        in_canary(BUCKETS, 100)
    with pytest.raises(ValueError):
        in_canary(0, BUCKETS + 1)
