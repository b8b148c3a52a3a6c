"""The in-run search: time-respecting folds, a seeded Optuna study, a trial budget, progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.evaluation import DAY_S
from fraud_model.features import batch_features
from fraud_model.search import search_params, time_folds


@pytest.fixture(scope="module")
def data(sim: Callable[..., pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = sim(300, 600, 45, seed=5)
    return df, batch_features(df)


def test_folds_leave_the_label_delay_between_training_and_validation() -> None:
    days = np.repeat(np.arange(40), 10)
    ts = days * DAY_S + 3600
    cards = np.asarray([f"c{i % 25}" for i in range(len(ts))])
    y = np.zeros(len(ts), dtype=int)
    y[::37] = 1
    folds = time_folds(ts, cards, y, n_folds=2, valid_days=7, delay_days=7)
    assert len(folds) == 2
    for fold in folds:
        assert ts[fold.train].max() < fold.train_end_s == fold.valid_start_s - 7 * DAY_S
        assert ts[fold.valid].min() >= fold.valid_start_s and ts[fold.valid].max() < fold.valid_end_s
        # Cards with a fraud in the fold's training rows are not validated on (known compromised).
        assert not set(cards[fold.valid]) & set(cards[fold.train & (y > 0)])
    assert folds[0].valid_end_s == 40 * DAY_S and folds[1].valid_end_s == folds[0].valid_start_s
    # The handbook's fixed 7-day training windows, when asked for.
    weekly = time_folds(ts, cards, y, n_folds=2, valid_days=7, delay_days=7, train_days=7)
    assert all(ts[f.train].min() >= f.train_end_s - 7 * DAY_S for f in weekly)
    assert all(f.train.sum() == 70 for f in weekly)


def test_search_is_seeded_budgeted_and_reports_each_trial(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    df, features = data
    seen: list[dict[str, Any]] = []
    base = {"num_boost_round": 20, "max_depth": 3}
    result = search_params(
        df,
        features,
        algorithm="lightgbm",
        trials=3,
        time_budget_s=600,
        seed=3,
        base_params=base,
        on_trial=seen.append,
    )
    assert [t["trial"] for t in seen] == [1, 2, 3] and all(t["trials"] == 3 for t in seen)
    assert result.stopped_by == "trials" and len(result.history) == 3
    # The run's own parameters are the first trial; no trial grows past its round count.
    assert result.history[0]["params"]["num_boost_round"] == 20
    assert all(h["params"]["num_boost_round"] <= 20 for h in result.history)
    assert round(result.best_value, 6) == max(h["average_precision"] for h in result.history)
    lineage = result.lineage()
    assert lineage["trials"] == 3 and lineage["best_params"] == result.best_params
    last_day = int(s.epoch_seconds(df[s.TS]).max() // DAY_S)
    assert (
        lineage["folds"][0]["valid_end"]
        == pd.Timestamp((last_day + 1) * DAY_S, unit="s", tz="UTC").isoformat()
    )
    again = search_params(
        df, features, algorithm="lightgbm", trials=3, time_budget_s=600, seed=3, base_params=base
    )
    assert [h["params"] for h in again.history] == [h["params"] for h in result.history]


def test_the_time_budget_cuts_a_trial_short_but_keeps_a_completed_one(
    data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    df, features = data
    # A budget the first trial already exceeds: it completes (a best is needed), later ones stop.
    result = search_params(
        df, features, trials=50, time_budget_s=1e-6, seed=0, base_params={"num_boost_round": 10}
    )
    assert len(result.history) == 1 and result.stopped_by == "time"
    assert result.abandoned <= 1 and result.lineage()["abandoned_trials"] == result.abandoned


def test_a_search_without_room_for_a_fold_says_why(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    df, features = data
    short = df[s.epoch_seconds(df[s.TS]) < s.epoch_seconds(df[s.TS]).min() + 10 * DAY_S]
    with pytest.raises(ValueError, match="no validation fold"):
        search_params(short, features.loc[short.index], trials=1, time_budget_s=10)
    with pytest.raises(ValueError, match="trials"):
        search_params(df, features, trials=0, time_budget_s=10)
