"""The in-run search: time-respecting folds, a seeded Optuna study, a trial budget, progress."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.evaluation import DAY_S, handbook_split
from fraud_model.features import batch_features
from fraud_model.search import (
    AP_WEIGHT,
    OBJECTIVE,
    _DeadlineRounds,
    _OverBudget,
    checkpoints,
    search_params,
    staged_margins,
    time_folds,
)
from fraud_model.training import _Fitter, default_params, fit_margins


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


def test_a_fold_validates_on_the_rows_the_handbook_test_split_keeps(
    data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    # The search is judged like the model: a fold's validation rows are the handbook split's test
    # rows for the same windows (cards known compromised in training or by the label delay removed).
    df, _ = data
    first_day = int(s.epoch_seconds(df[s.TS]).min() // DAY_S)
    train_start = pd.Timestamp((first_day + 10) * DAY_S, unit="s", tz="UTC")
    rows = df[s.to_utc(df[s.TS]) < train_start + pd.Timedelta(days=21)]
    ts = s.epoch_seconds(rows[s.TS])
    (fold,) = time_folds(
        ts, rows[s.CARD_TOKEN].to_numpy(), rows[s.IS_FRAUD].to_numpy(), n_folds=1, train_days=7
    )
    train, test = handbook_split(df, train_start)
    assert set(rows.index[fold.train]) == set(train.index)
    assert set(rows.index[fold.valid]) == set(test.index)
    # The delay's labels matter here: some cards are left out only because of them.
    y = rows[s.IS_FRAUD].to_numpy() > 0
    window = (ts >= fold.valid_start_s) & (ts < fold.valid_end_s)
    in_training = np.isin(rows[s.CARD_TOKEN].to_numpy(), rows[s.CARD_TOKEN].to_numpy()[fold.train & y])
    assert (window & ~in_training & ~fold.valid).any()


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
    assert result.stopped_by == "trials" and {0, 1} <= {h["trial"] for h in result.history}
    # The run's own parameters are the first trial; no trial grows past its round count, and each
    # keeps the best of the checkpoints its fits were read at.
    assert result.history[0]["fitted_rounds"] == 20
    assert result.history[0]["params"]["num_boost_round"] in checkpoints(20) == [5, 10, 15, 20]
    assert all(h["params"]["num_boost_round"] <= h["fitted_rounds"] <= 20 for h in result.history)
    # A larger step gets fewer rounds: no trial learns more than eta x rounds of the base trial
    # (but every trial keeps at least the lowest round count searched, 10 here).
    learning = default_params("lightgbm")["eta"] * 20
    assert all(
        h["fitted_rounds"] <= max(10, math.ceil(learning / h["params"]["eta"])) for h in result.history
    )
    for h in result.history:
        expected = h["card_precision_at_100"] + AP_WEIGHT * h["average_precision"]
        assert h["value"] == pytest.approx(expected, abs=2e-6)
    assert round(result.best_value, 6) == max(h["value"] for h in result.history)
    lineage = result.lineage()
    assert lineage["trials"] == 3 and lineage["best_params"] == result.best_params
    assert lineage["objective"] == OBJECTIVE and OBJECTIVE.startswith("mean validation card_precision_at_100")
    # The median pruner waits for two complete trials; a pruned one is reported, not kept.
    assert len(result.history) + lineage["pruned_trials"] == 3
    assert [t["trial"] for t in seen if t.get("pruned")] == [
        n + 1 for n in range(3) if n not in {h["trial"] for h in result.history}
    ]
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


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_a_fit_past_the_deadline_stops_at_the_next_boosting_round(
    data: tuple[pd.DataFrame, pd.DataFrame], algorithm: str
) -> None:
    # A trial that starts just before the budget ends must not run its folds to the end (a 4-fold
    # trial took minutes on a busy machine): the deadline is checked after every round.
    df, features = data
    x, y = features.to_numpy(dtype=np.float32), df[s.IS_FRAUD].to_numpy().astype(np.float32)
    fitter = _Fitter(algorithm, {**default_params(algorithm), "num_boost_round": 50}, 0, 1)
    checks: list[int] = []

    def counted(armed: bool) -> Callable[[], bool]:
        def ask() -> bool:
            checks.append(1)
            return armed

        return ask

    past = _DeadlineRounds(0.0, counted(True))
    with pytest.raises(_OverBudget):
        fitter.fit(x, y, past)
    assert len(checks) == 1  # stopped after the first of 50 rounds
    # Not armed (no trial has completed yet): the fit runs all its rounds whatever the clock says.
    unarmed = _DeadlineRounds(0.0, counted(False))
    booster = fitter.fit(x, y, unarmed)
    assert len(checks) == 1 + 50 and booster is not None


def test_a_search_without_room_for_a_fold_says_why(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    df, features = data
    short = df[s.epoch_seconds(df[s.TS]) < s.epoch_seconds(df[s.TS]).min() + 10 * DAY_S]
    with pytest.raises(ValueError, match="no validation fold"):
        search_params(short, features.loc[short.index], trials=1, time_budget_s=10)
    with pytest.raises(ValueError, match="trials"):
        search_params(df, features, trials=0, time_budget_s=10)


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_a_checkpoint_scores_as_a_model_fitted_with_that_many_rounds(
    data: tuple[pd.DataFrame, pd.DataFrame], algorithm: str
) -> None:
    df, features = data
    x = features.to_numpy(dtype=np.float32)
    y = df[s.IS_FRAUD].to_numpy()
    half = len(x) // 2
    params = {**default_params(algorithm), "num_boost_round": 40}
    booster = _Fitter(algorithm, params, 0, 1).fit(x[:half], y[:half].astype(np.float32))
    staged = staged_margins(algorithm, booster, x[half:], checkpoints(40), 1)
    for k, margin in zip(checkpoints(40), staged, strict=True):
        alone = fit_margins(
            x[:half], y[:half], x[half:], algorithm=algorithm, params={**params, "num_boost_round": k}
        )
        np.testing.assert_allclose(margin, alone, rtol=0, atol=1e-5)


def test_every_trial_is_kept_pruned_or_abandoned(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    df, features = data
    result = search_params(
        df, features, trials=8, time_budget_s=600, seed=1, n_folds=3, base_params={"num_boost_round": 12}
    )
    lineage = result.lineage()
    assert result.stopped_by == "trials" and result.abandoned == 0
    assert len(result.history) + lineage["pruned_trials"] == 8
    assert {h["trial"] for h in result.history} >= {0, 1}  # the first two always complete
