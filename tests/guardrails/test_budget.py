"""FinOps math: forecasts, thresholds, anomalies and the token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrails.budget import (
    AnomalyMethod,
    BudgetLevel,
    BudgetThreshold,
    TokenBucket,
    budget_status,
    cost_anomaly,
    forecast_month_end,
    month_bounds,
    refill,
    take,
    thresholds_to_notify,
)

JUNE = (datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))
money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)


# --- forecast -------------------------------------------------------------------------------


def test_forecast_is_linear_in_elapsed_time() -> None:
    start, end = JUNE
    assert forecast_month_end(Decimal("300"), start + timedelta(days=10), start, end) == Decimal("900.00")
    assert forecast_month_end(Decimal("100"), start + timedelta(days=7, hours=12), start, end) == Decimal(
        "400.00"
    )


def test_forecast_edges() -> None:
    start, end = JUNE
    assert forecast_month_end(Decimal("12.345"), start, start, end) == Decimal("12.35")
    assert forecast_month_end(Decimal("950"), end + timedelta(days=2), start, end) == Decimal("950.00")
    with pytest.raises(ValueError, match="timezone-aware"):
        forecast_month_end(Decimal(1), datetime(2024, 6, 5), start, end)
    with pytest.raises(ValueError):
        forecast_month_end(Decimal(1), start, end, start)


@given(money, st.integers(min_value=1, max_value=30 * 24 * 3600 - 1))
def test_forecast_never_below_cost_so_far(cost: Decimal, elapsed_s: int) -> None:
    start, end = JUNE
    forecast = forecast_month_end(cost, start + timedelta(seconds=elapsed_s), start, end)
    assert forecast >= cost.quantize(Decimal("0.01"))


def test_month_bounds_across_year_end_and_offsets() -> None:
    assert month_bounds(datetime(2024, 12, 31, 23, 0, tzinfo=UTC)) == (
        datetime(2024, 12, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    # 00:30 on 1 July in UTC+2 is still June in UTC.
    assert month_bounds(datetime(2024, 7, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))))[0] == JUNE[0]


# --- thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "forecast", "crossed", "level"),
    [
        ("100", "400", (), BudgetLevel.OK),
        ("500", "900", (BudgetThreshold.ACTUAL_50,), BudgetLevel.WARNING),
        ("800", "990", (BudgetThreshold.ACTUAL_50, BudgetThreshold.ACTUAL_80), BudgetLevel.WARNING),
        ("300", "1000", (BudgetThreshold.FORECAST_100,), BudgetLevel.WARNING),
        (
            "1000",
            "1400",
            (
                BudgetThreshold.ACTUAL_50,
                BudgetThreshold.ACTUAL_80,
                BudgetThreshold.FORECAST_100,
                BudgetThreshold.ACTUAL_100,
            ),
            BudgetLevel.FROZEN,
        ),
    ],
)
def test_budget_status_thresholds(
    actual: str, forecast: str, crossed: tuple[BudgetThreshold, ...], level: BudgetLevel
) -> None:
    status = budget_status(Decimal(actual), Decimal(forecast), Decimal("1000"))
    assert status.crossed == crossed
    assert status.level == level
    assert status.frozen == (level == BudgetLevel.FROZEN)
    assert status.headroom == Decimal("1000") - Decimal(actual)


def test_budget_level_values_match_the_deployment_policy() -> None:
    assert {level.value for level in BudgetLevel} == {"ok", "warning", "frozen"}


def test_each_threshold_notifies_once_a_month() -> None:
    budget = Decimal("1000")
    notified: set[BudgetThreshold] = set()
    sent: list[BudgetThreshold] = []
    for actual, forecast in [
        ("100", "300"),
        ("520", "900"),
        ("530", "950"),
        ("810", "1100"),
        ("1000", "1050"),
    ]:
        new = thresholds_to_notify(notified, budget_status(Decimal(actual), Decimal(forecast), budget))
        sent.extend(new)
        notified.update(new)
    assert sent == [
        BudgetThreshold.ACTUAL_50,
        BudgetThreshold.ACTUAL_80,
        BudgetThreshold.FORECAST_100,
        BudgetThreshold.ACTUAL_100,
    ]
    next_month: set[BudgetThreshold] = set()
    assert thresholds_to_notify(next_month, budget_status(Decimal("600"), Decimal("700"), budget)) == [
        BudgetThreshold.ACTUAL_50
    ]


@given(money, money, money, money)
def test_more_spend_never_uncrosses_a_threshold(a1: Decimal, a2: Decimal, f1: Decimal, f2: Decimal) -> None:
    budget = Decimal("5000")
    low = budget_status(min(a1, a2), min(f1, f2), budget)
    high = budget_status(max(a1, a2), max(f1, f2), budget)
    assert set(low.crossed) <= set(high.crossed)


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        budget_status(Decimal(1), Decimal(1), Decimal(0))


# --- anomalies ------------------------------------------------------------------------------

HISTORY = [Decimal(x) for x in ("100", "104", "98", "101", "97", "103", "99", "102")]


def test_spike_is_an_anomaly_by_robust_z() -> None:
    result = cost_anomaly(Decimal("140"), HISTORY)
    assert result.method == AnomalyMethod.ROBUST_Z
    assert result.is_anomaly
    assert result.median == Decimal("100.5")
    assert result.mad == Decimal("2")
    assert result.score == Decimal("0.6745") * (Decimal("140") - Decimal("100.5")) / Decimal("2")


def test_normal_day_and_drops_are_not_anomalies() -> None:
    assert not cost_anomaly(Decimal("104"), HISTORY).is_anomaly
    assert not cost_anomaly(Decimal("0"), HISTORY).is_anomaly


def test_one_past_outlier_does_not_mask_a_new_spike() -> None:
    history = [*HISTORY[:-1], Decimal("5000")]  # a median/MAD baseline shrugs off one outlier
    assert cost_anomaly(Decimal("140"), history).is_anomaly


def test_flat_spend_falls_back_to_ratio_to_median() -> None:
    flat = [Decimal("50")] * 10
    spike = cost_anomaly(Decimal("100"), flat)
    assert (spike.method, spike.is_anomaly, spike.score) == (AnomalyMethod.RATIO_TO_MEDIAN, True, Decimal(2))
    assert not cost_anomaly(Decimal("60"), flat).is_anomaly
    zero = [Decimal(0)] * 10
    assert cost_anomaly(Decimal("0.01"), zero).is_anomaly
    assert not cost_anomaly(Decimal("0"), zero).is_anomaly


def test_short_history_is_never_an_anomaly() -> None:
    result = cost_anomaly(Decimal("1000"), HISTORY[:3])
    assert (result.is_anomaly, result.method) == (False, AnomalyMethod.INSUFFICIENT_HISTORY)


@given(st.lists(money, min_size=7, max_size=30), money, money)
def test_spending_more_today_never_clears_an_anomaly(history: list[Decimal], x: Decimal, y: Decimal) -> None:
    low, high = sorted((x, y))
    if cost_anomaly(low, history).is_anomaly:
        assert cost_anomaly(high, history).is_anomaly


# --- token bucket ---------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_throttles_with_retry_after() -> None:
    bucket = TokenBucket(rate=10.0, burst=20.0)
    tokens, now = 20.0, 100.0
    allowed = 0
    for _ in range(25):
        result = bucket.take(tokens, now, now)
        tokens = result.tokens
        allowed += result.allowed
    assert allowed == 20
    denied = bucket.take(tokens, now, now)
    assert not denied.allowed
    assert denied.retry_after_s == pytest.approx(0.1)
    later = bucket.take(denied.tokens, now, now + denied.retry_after_s)
    assert later.allowed


def test_refill_caps_at_burst_and_ignores_clock_going_back() -> None:
    assert refill(0.0, 0.0, 1000.0, rate=5.0, burst=40.0) == 40.0
    assert refill(3.0, 10.0, 5.0, rate=5.0, burst=40.0) == 3.0
    with pytest.raises(ValueError):
        take(10.0, 0.0, 0.0, rate=1.0, burst=5.0, cost=6.0)


@given(
    st.floats(min_value=0.1, max_value=1000),
    st.floats(min_value=1, max_value=1000),
    st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200),
)
def test_bucket_never_admits_more_than_burst_plus_rate_times_time(
    rate: float, burst: float, gaps: list[float]
) -> None:
    tokens, last, now, admitted = burst, 0.0, 0.0, 0
    for gap in gaps:
        now += gap
        result = take(tokens, last, now, rate, burst)
        tokens, last = result.tokens, now
        admitted += result.allowed
        assert 0.0 <= result.tokens <= burst
        assert result.allowed == (result.retry_after_s == 0.0)
    assert admitted <= burst + rate * now + 1e-6


@given(
    st.floats(min_value=0.1, max_value=1000),
    st.floats(min_value=1, max_value=1000),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0.01, max_value=1),
)
def test_waiting_retry_after_is_enough(rate: float, burst: float, fill: float, cost_share: float) -> None:
    cost = burst * cost_share
    result = take(burst * fill, 0.0, 0.0, rate, burst, cost)
    if not result.allowed:
        assert take(result.tokens, 0.0, result.retry_after_s, rate, burst, cost).allowed
