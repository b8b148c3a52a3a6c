"""Burn rates, multiwindow alerts and error budgets, on simulated per-minute traffic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrails.slo import (
    DAY_S,
    DEFAULT_BURN_RATE_RULES,
    HOUR_S,
    SLO,
    ErrorBudget,
    Severity,
    budget_consumed,
    burn_rate,
    evaluate_burn_alerts,
    required_windows,
    scaled_windows,
)

SLO_999 = SLO(0.999)
HEALTHY = 0.0002  # burn 0.2
HISTORY_MIN = int(3 * DAY_S // 60) + 60  # enough for the 3-day window


class Traffic:
    """Per-minute error ratios at constant volume; windows end at (and include) minute ``t``."""

    def __init__(self, minutes: int, baseline: float) -> None:
        self.ratios = np.full(minutes, baseline)
        self._cumulative: np.ndarray | None = None

    def set(self, start: int, stop: int, ratio: float) -> Traffic:
        self.ratios[start:stop] = ratio
        self._cumulative = None
        return self

    def window_ratios(self, t: int) -> dict[float, float]:
        if self._cumulative is None:
            self._cumulative = np.concatenate([[0.0], np.cumsum(self.ratios)])
        out = {}
        for window_s in required_windows():
            lo = max(0, t + 1 - int(window_s // 60))
            out[window_s] = float((self._cumulative[t + 1] - self._cumulative[lo]) / (t + 1 - lo))
        return out

    def alerts(self, t: int) -> list[tuple[Severity, float]]:
        return [(a.severity, a.long_window_s) for a in evaluate_burn_alerts(self.window_ratios(t), SLO_999)]


def _fires(traffic: Traffic, t: int, long_window_s: float) -> bool:
    return (Severity.PAGE, long_window_s) in traffic.alerts(t)


def test_healthy_traffic_raises_nothing() -> None:
    traffic = Traffic(HISTORY_MIN, HEALTHY)
    assert all(traffic.alerts(t) == [] for t in range(HISTORY_MIN - 120, HISTORY_MIN))


def test_full_outage_pages_within_the_short_window() -> None:
    start = HISTORY_MIN
    traffic = Traffic(HISTORY_MIN + 60, HEALTHY).set(start, HISTORY_MIN + 60, 1.0)
    first_page = next(
        t for t in range(start, start + 60) if any(s == Severity.PAGE for s, _ in traffic.alerts(t))
    )
    assert first_page - start < 5  # the 1 h / 5 min rule, inside its 5-minute short window
    assert _fires(traffic, first_page, HOUR_S)
    alert = evaluate_burn_alerts(traffic.window_ratios(first_page), SLO_999)[0]
    assert alert.burn_rate_long >= 14.4 and alert.burn_rate_short >= 14.4


def test_slow_burn_only_tickets() -> None:
    slow = 2 * SLO_999.error_budget  # burn rate 2: the month's budget gone in two weeks
    traffic = Traffic(HISTORY_MIN, slow)
    for t in range(0, HISTORY_MIN, 60):
        assert all(severity != Severity.PAGE for severity, _ in traffic.alerts(t))
    alerts = evaluate_burn_alerts(traffic.window_ratios(HISTORY_MIN - 1), SLO_999)
    assert [(a.severity, a.long_window_s, a.short_window_s) for a in alerts] == [
        (Severity.TICKET, 3 * DAY_S, 6 * HOUR_S)
    ]
    assert alerts[0].burn_rate_long == pytest.approx(2.0)
    assert alerts[0].burn_rate_short == pytest.approx(2.0)


def test_page_clears_once_the_short_window_is_clean() -> None:
    start, stop = HISTORY_MIN, HISTORY_MIN + 10  # a 10-minute outage
    traffic = Traffic(HISTORY_MIN + 120, HEALTHY).set(start, stop, 1.0)
    last_bad = stop - 1
    assert _fires(traffic, last_bad, HOUR_S) and _fires(traffic, last_bad, 6 * HOUR_S)

    # 1 h / 5 min: still firing while the 5-minute window holds an outage minute, clear after.
    assert _fires(traffic, last_bad + 4, HOUR_S)
    assert not _fires(traffic, last_bad + 5, HOUR_S)
    # ...although the 1-hour window alone still burns far above 14.4.
    assert burn_rate(traffic.window_ratios(last_bad + 5)[HOUR_S], SLO_999) > 14.4

    # 6 h / 30 min clears the same way once its 30-minute window is clean.
    assert _fires(traffic, last_bad + 29, 6 * HOUR_S)
    assert not _fires(traffic, last_bad + 30, 6 * HOUR_S)
    assert burn_rate(traffic.window_ratios(last_bad + 30)[6 * HOUR_S], SLO_999) > 6.0
    assert all(s != Severity.PAGE for s, _ in traffic.alerts(last_bad + 30))


def test_missing_window_is_an_error_not_silence() -> None:
    ratios = dict.fromkeys(required_windows(), 1.0)
    del ratios[300.0]
    with pytest.raises(ValueError, match="300"):
        evaluate_burn_alerts(ratios, SLO_999)


def test_slo_validation() -> None:
    with pytest.raises(ValueError):
        SLO(1.0)
    with pytest.raises(ValueError):
        SLO(0.99, period_s=0)
    with pytest.raises(ValueError):
        burn_rate(1.5, SLO_999)


# --- properties -----------------------------------------------------------------------------

targets = st.floats(min_value=0.5, max_value=0.99999)
ratios = st.floats(min_value=0.0, max_value=1.0)


@given(targets, ratios)
def test_burn_rate_is_error_ratio_over_budget(target: float, ratio: float) -> None:
    slo = SLO(target)
    assert burn_rate(ratio, slo) * slo.error_budget == pytest.approx(ratio, abs=1e-12)


@given(st.floats(min_value=0, max_value=1000), st.floats(min_value=1, max_value=1e7))
def test_burning_at_rate_one_for_a_period_spends_the_budget(burn: float, period: float) -> None:
    assert budget_consumed(1.0, period, period) == pytest.approx(1.0)
    assert budget_consumed(burn, period / 2, period) == pytest.approx(burn / 2)


@given(targets, ratios)
def test_uniform_burn_alerts_follow_the_table(target: float, ratio: float) -> None:
    slo = SLO(target)
    rate = burn_rate(ratio, slo)
    severities = {a.severity for a in evaluate_burn_alerts(dict.fromkeys(required_windows(), ratio), slo)}
    assert (Severity.PAGE in severities) == (rate >= 6.0)
    assert (Severity.TICKET in severities) == (rate >= 1.0)


@given(
    targets,
    st.lists(ratios, min_size=len(required_windows()), max_size=len(required_windows())),
    st.lists(
        st.floats(min_value=0, max_value=1),
        min_size=len(required_windows()),
        max_size=len(required_windows()),
    ),
)
def test_more_errors_never_clear_an_alert(target: float, base: list[float], extra: list[float]) -> None:
    slo = SLO(target)
    windows = required_windows()
    before = dict(zip(windows, base, strict=True))
    after = {w: min(1.0, r + e * (1.0 - r)) for (w, r), e in zip(before.items(), extra, strict=True)}
    fired_before = {(a.severity, a.long_window_s) for a in evaluate_burn_alerts(before, slo)}
    fired_after = {(a.severity, a.long_window_s) for a in evaluate_burn_alerts(after, slo)}
    assert fired_before <= fired_after


@given(st.floats(min_value=10, max_value=7 * DAY_S))
def test_scaled_windows_fit_the_bake_and_keep_the_table_shape(bake_s: float) -> None:
    scaled = scaled_windows(bake_s)
    pages = [r for r in DEFAULT_BURN_RATE_RULES if r.severity == Severity.PAGE]
    assert len(scaled) == len(pages)
    assert max(r.long_window_s for r in scaled) == pytest.approx(bake_s)
    for original, rule in zip(pages, scaled, strict=True):
        assert rule.threshold == original.threshold
        assert rule.long_window_s <= bake_s * (1 + 1e-12)
        if rule.short_window_s > 1.0:  # above the floor the long/short ratio is the table's
            assert rule.long_window_s / rule.short_window_s == pytest.approx(
                original.long_window_s / original.short_window_s
            )


def test_scaled_windows_for_a_ten_minute_bake() -> None:
    scaled = scaled_windows(600)
    assert [(r.long_window_s, r.short_window_s, r.threshold) for r in scaled] == [
        pytest.approx((100.0, 600 / 72, 14.4)),
        pytest.approx((600.0, 50.0, 6.0)),
    ]
    canary_ratios = {w: 0.5 for r in scaled for w in (r.long_window_s, r.short_window_s)}
    assert {a.severity for a in evaluate_burn_alerts(canary_ratios, SLO_999, scaled)} == {Severity.PAGE}


@given(targets, st.integers(min_value=0, max_value=10**9), st.data())
def test_error_budget_freezes_exactly_when_spent(target: float, total: int, data: st.DataObject) -> None:
    good = data.draw(st.integers(min_value=0, max_value=total))
    budget = ErrorBudget(SLO(target), good=good, total=total)
    if total == 0:
        assert budget.remaining_fraction == 1.0 and not budget.frozen
        return
    allowed = (1 - target) * total
    assert budget.remaining_fraction == pytest.approx(1 - (total - good) / allowed, rel=1e-9, abs=1e-9)
    if (total - good) < allowed * (1 - 1e-9):
        assert not budget.frozen
    if (total - good) > allowed * (1 + 1e-9):
        assert budget.frozen


def test_error_budget_examples() -> None:
    assert ErrorBudget(SLO_999, good=999_500, total=1_000_000).remaining_fraction == pytest.approx(0.5)
    assert ErrorBudget(SLO_999, good=999_000, total=1_000_000).frozen
    assert not ErrorBudget(SLO_999, good=999_001, total=1_000_000).frozen
    assert math.isclose(ErrorBudget(SLO_999, good=998_000, total=1_000_000).remaining_fraction, -1.0)
    with pytest.raises(ValueError):
        ErrorBudget(SLO_999, good=5, total=4)
