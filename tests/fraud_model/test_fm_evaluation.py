from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud_model import schema as s
from fraud_model.evaluation import (
    auc_roc,
    average_precision,
    brier_score,
    card_precision_top_k,
    card_precision_top_k_per_day,
    check_gate,
    day_index,
    evaluate,
    expected_calibration_error,
    handbook_split,
    recall_at_fpr,
)

labels_and_scores = st.integers(2, 80).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)),
        st.lists(st.integers(-1000, 1000), min_size=n, max_size=n),
    )
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=2, max_size=100).filter(lambda y: 0 < sum(y) < len(y)))
def test_perfect_ranking_scores_one(y: list[int]) -> None:
    labels = np.array(y)
    scores = labels + np.linspace(0, 0.5, len(labels))  # every fraud above every genuine
    assert auc_roc(labels, scores) == 1.0
    assert average_precision(labels, scores) == pytest.approx(1.0, abs=1e-12)
    assert recall_at_fpr(labels, scores, 0.0) == 1.0


@settings(max_examples=40, deadline=None)
@given(labels_and_scores)
def test_metrics_are_invariant_to_monotone_transforms(data: tuple[list[int], list[int]]) -> None:
    y, raw = np.array(data[0]), np.array(data[1], dtype=np.float64)
    for transform in (lambda x: np.exp(x / 500.0), lambda x: x**3):
        assert auc_roc(y, transform(raw)) == pytest.approx(auc_roc(y, raw), abs=1e-12)
        assert average_precision(y, transform(raw)) == pytest.approx(average_precision(y, raw), abs=1e-12)
        assert recall_at_fpr(y, transform(raw)) == recall_at_fpr(y, raw)
    assert auc_roc(y, -raw) == pytest.approx(1 - auc_roc(y, raw), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 12), st.integers(0, 1), st.floats(0, 1)),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 20),
)
def test_card_precision_is_a_fraction(rows: list[tuple[int, int, int, float]], k: int) -> None:
    days, cards, y, p = (np.array(c) for c in zip(*rows, strict=True))
    daily = card_precision_top_k_per_day(days, cards, y, p, k)
    assert len(daily) == len(set(days.tolist()))
    assert all(0.0 <= d <= 1.0 for d in daily)
    assert 0.0 <= card_precision_top_k(days, cards, y, p, k) <= 1.0


def test_card_precision_follows_the_handbook() -> None:
    # Day 0: card a (fraud, top), b (genuine), c (fraud, low). k=2 -> a hit, b miss: 0.5.
    # Day 1: a is known-detected and removed; c (fraud) and b rank: k=2 -> c hit: 0.5.
    days = np.array([0, 0, 0, 0, 1, 1, 1])
    cards = np.array(["a", "a", "b", "c", "a", "b", "c"])
    y = np.array([0, 1, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.8, 0.2, 0.99, 0.3, 0.4])
    assert card_precision_top_k_per_day(days, cards, y, p, 2) == [0.5, 0.5]
    # Without removal, day 1's top 2 would be a and c: 1.0.
    assert card_precision_top_k_per_day(days, cards, y, p, 2, remove_detected=False) == [0.5, 1.0]
    with pytest.raises(ValueError):
        card_precision_top_k_per_day(days, cards, y, p, 0)


def test_recall_at_fpr() -> None:
    y = np.array([0] * 100 + [1] * 4)
    p = np.r_[np.linspace(0, 0.5, 100), [0.9, 0.8, 0.45, 0.1]]
    # One false positive allowed (1% of 100): threshold above 0.5 catches 2 of 4.
    assert recall_at_fpr(y, p, 0.01) == 0.5


def test_calibration_summary() -> None:
    y = np.array([0, 0, 1, 1])
    assert brier_score(y, y.astype(float)) == 0.0
    assert brier_score(y, np.full(4, 0.5)) == 0.25
    assert expected_calibration_error(y, np.full(4, 0.5)) == 0.0
    assert expected_calibration_error(np.array([0, 0, 0, 0]), np.full(4, 0.9)) == pytest.approx(0.9)


def test_gate_names_each_failure() -> None:
    metrics = {"auc_roc": 0.91, "average_precision": 0.55, "ece": 0.05}
    result = check_gate(metrics, {"auc_roc": 0.9, "average_precision": 0.6, "card_precision_at_100": 0.2})
    assert not result.passed
    assert result.failures[0] == ("average_precision", 0.6, 0.55)
    assert result.failures[1][0] == "card_precision_at_100" and np.isnan(result.failures[1][2])
    assert "average_precision" in result.describe()
    assert check_gate(metrics, {"auc_roc": 0.9}).passed
    over = check_gate(metrics, {}, {"ece": 0.02})
    assert over.failures == [("ece", 0.02, 0.05)]


def test_handbook_split_removes_known_compromised_cards(sim: Callable[..., pd.DataFrame]) -> None:
    df = sim(300, 600, 40, seed=4)
    start = "2018-04-10"
    train, test = handbook_split(df, start)
    d0 = int(pd.Timestamp(start, tz="UTC").value // 1_000_000_000 // 86_400)
    assert set(day_index(train[s.TS])) == set(range(d0, d0 + 7))
    assert set(day_index(test[s.TS])) <= set(range(d0 + 14, d0 + 21))
    known_from_train = set(train.loc[train[s.IS_FRAUD] == 1, s.CARD_TOKEN])
    assert known_from_train and not known_from_train & set(test[s.CARD_TOKEN])
    days = day_index(df[s.TS])
    for j in range(7):
        frauds_before = set(df.loc[(days == d0 + 7 + j - 1) & (df[s.IS_FRAUD] == 1), s.CARD_TOKEN])
        today = set(test.loc[day_index(test[s.TS]) == d0 + 14 + j, s.CARD_TOKEN])
        assert not frauds_before & today
    # Everything else from the test days is kept.
    window = df[(days >= d0 + 14) & (days < d0 + 21)]
    assert len(test) > 0.5 * len(window)


def test_evaluate_reports_all_metrics(sim: Callable[..., pd.DataFrame]) -> None:
    df = sim(100, 200, 10, seed=5)
    scores = df[s.IS_FRAUD].to_numpy() * 0.5 + np.random.default_rng(0).random(len(df)) * 0.6
    m = evaluate(df, scores, top_k=10)
    assert set(m) == {
        "auc_roc",
        "average_precision",
        "card_precision_at_10",
        "recall_at_1pct_fpr",
        "brier",
        "ece",
    }
    assert 0.5 < m["auc_roc"] <= 1.0
    assert all(0.0 <= v <= 1.0 for v in m.values())
