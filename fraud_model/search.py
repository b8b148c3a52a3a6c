"""An in-run hyper-parameter search (Optuna, seeded) on validation folds that respect time.

Folds follow the handbook's model selection (chapter 5, prequential validation): each fold's
validation window is ``valid_days`` long, its training rows end ``delay_days`` before the
window opens (labels are only known after the delay), and the folds step back a window at a
time from the end of the rows given. A fold's validation rows are those the handbook's test split
(``evaluation.handbook_split``) would keep: cards with a fraud in its training rows, or with a
fraud whose label has arrived by the row's day (more than ``delay_days`` earlier), are known
compromised and left out. The caller passes only its training rows, so the test window is never
read.

Trials are scored by mean validation Card Precision@100 plus a tenth of mean validation Average
Precision (each is recorded). CP@100 leads because it is the metric the model is judged on with
the thinnest margin and the one AP predicts worst; AP separates trials whose CP@100 ties (CP@100
moves in steps of 1 / (100 x validation days)). A trial fits each fold once with its sampled
round count and reads the validation margins at a quarter, half, three quarters and all of those
rounds: the best of these checkpoints (on the mean over folds) is the trial's value and its round
count, so the number of rounds costs no extra fits. A trial's rounds are also capped at the base
parameters' eta x rounds divided by its own eta (a larger step needs fewer rounds), which bounds
its cost. After each fold a trial reports its running
mean and Optuna's median pruner stops a trial already below the median of earlier trials at that
fold (``pruned_trials``): more trials fit in a time budget. With a trial budget alone the search
is reproducible (TPE seeded); a time budget that binds first makes the number of trials depend on
the machine, which the result records (``stopped_by``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
import xgboost as xgb

from fraud_model import schema as s
from fraud_model.evaluation import DAY_S, average_precision, card_precision_top_k
from fraud_model.features import FEATURE_NAMES
from fraud_model.training import DEFAULT_NTHREAD, _Fitter, _Rounds, default_params

TrialCallback = Callable[[dict[str, Any]], None]
AP_WEIGHT = 0.1  # the weight of AP beside CP@100 in a trial's value (module docstring)
OBJECTIVE = f"mean validation card_precision_at_100 + {AP_WEIGHT} x mean validation average_precision"
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # fractions of a trial's rounds read from its one fit per fold


class _OverBudget(Exception):
    """A trial's fit reached the search's deadline mid-way (raised from a boosting callback)."""


class _DeadlineRounds(_Rounds):
    """Checks the search's deadline after every boosting round of a trial's fit, so a trial
    that starts just before the budget ends is abandoned within one round, not after its folds
    (a 4-fold trial on a busy machine took minutes: the budget overran three-fold)."""

    def __init__(self, deadline: float, armed: Callable[[], bool]) -> None:
        super().__init__(1, None)
        self.deadline, self.armed = deadline, armed

    def tick(self) -> None:
        if time.perf_counter() > self.deadline and self.armed():
            raise _OverBudget


@dataclass(frozen=True)
class Fold:
    """Row masks over the rows given to the search, and the window bounds (epoch seconds)."""

    train: np.ndarray
    valid: np.ndarray
    train_end_s: int
    valid_start_s: int
    valid_end_s: int


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_value: float
    history: list[dict[str, Any]] = field(default_factory=list)
    folds: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped_by: str = "trials"
    abandoned: int = 0  # trials cut short by the time budget (not in history)
    pruned: int = 0  # trials stopped early below the median of earlier trials (not in history)

    def lineage(self) -> dict[str, Any]:
        """What a model version records about the search that chose its parameters."""
        return {
            "objective": OBJECTIVE,
            "best_params": self.best_params,
            "best_value": round(self.best_value, 6),
            "trials": len(self.history) + self.pruned,  # completed (in history) or pruned
            "stopped_by": self.stopped_by,
            "abandoned_trials": self.abandoned,
            "pruned_trials": self.pruned,
            "elapsed_s": round(self.elapsed_s, 2),
            "folds": self.folds,
            "history": self.history,
        }


def time_folds(
    ts_s: np.ndarray,
    cards: np.ndarray,
    labels: np.ndarray,
    *,
    n_folds: int = 2,
    valid_days: int = 7,
    delay_days: int = 7,
    train_days: int | None = None,
) -> list[Fold]:
    """Up to ``n_folds`` folds stepping back from the last whole day; folds without a fraud in
    their training rows or validation window are skipped. ``train_days`` bounds each fold's
    training rows to that many days before its delay (the handbook's 7-day windows); by default
    a fold trains on everything earlier, as a run does."""
    ts = np.asarray(ts_s, dtype=np.int64)
    y = np.asarray(labels) > 0
    if not len(ts):
        return []
    day = np.floor_divide(ts, DAY_S)
    codes, _ = pd.factorize(np.asarray(cards))  # integer codes: np.isin on strings is slow
    last_day = int(ts.max() // DAY_S)
    folds = []
    for k in range(n_folds):
        valid_end = (last_day + 1 - k * valid_days) * DAY_S
        valid_start = valid_end - valid_days * DAY_S
        train_end = valid_start - delay_days * DAY_S
        train = ts < train_end
        if train_days is not None:
            train &= ts >= train_end - train_days * DAY_S
        valid = (
            (ts >= valid_start)
            & (ts < valid_end)
            & ~_known_compromised(day, codes, y, train, valid_start // DAY_S, delay_days)
        )
        if y[train].any() and y[valid].any():
            folds.append(Fold(train, valid, train_end, valid_start, valid_end))
    return folds


def _known_compromised(
    day: np.ndarray, codes: np.ndarray, y: np.ndarray, train: np.ndarray, valid_day: int, delay_days: int
) -> np.ndarray:
    """Rows whose card is already known compromised on their day, as the handbook's test split
    (``evaluation.handbook_split``) decides: a fraud in the training rows, or a fraud on a later
    day whose label has arrived (more than ``delay_days`` before the row's day)."""
    first = np.full(int(codes.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    seen = y & (train | (day >= valid_day - delay_days))
    np.minimum.at(first, codes[seen], np.where(train[seen], np.iinfo(np.int64).min, day[seen]))
    return np.asarray(first[codes] < day - delay_days)


def space(trial: optuna.Trial, algorithm: str, base: dict[str, Any]) -> dict[str, Any]:
    """The searched parameters, in the shared vocabulary (``fraud_model.lgbm``).

    Every range contains the run's base value (its first trial); the round count is searched
    up to the base count, so a run's ``num_boost_round`` also caps each trial's cost, and it is
    capped again at the base's eta x rounds over the trial's eta (the base trial is never cut).
    """

    def span(name: str, lo: float, hi: float) -> tuple[float, float]:
        v = float(base.get(name, lo))
        return min(lo, v), max(hi, v)

    depth = trial.suggest_int("max_depth", *map(int, span("max_depth", 2, 6)))
    rounds_hi = int(base.get("num_boost_round", 800))
    rounds_lo = max(1, min(10, rounds_hi), rounds_hi // 8)
    eta = trial.suggest_float("eta", *span("eta", 0.01, 0.3), log=True)
    rounds = trial.suggest_int("num_boost_round", rounds_lo, rounds_hi)
    learning = float(base.get("eta", 0.025)) * rounds_hi  # eta x rounds of the base trial
    p: dict[str, Any] = {
        "max_depth": depth,
        "eta": eta,
        "num_boost_round": min(rounds, max(rounds_lo, math.ceil(learning / eta - 1e-9))),
        "min_child_weight": trial.suggest_float(
            "min_child_weight", *span("min_child_weight", 0.5, 20.0), log=True
        ),
        "colsample_bytree": trial.suggest_float("colsample_bytree", *span("colsample_bytree", 0.4, 1.0)),
        "subsample": trial.suggest_float("subsample", *span("subsample", 0.6, 1.0)),
    }
    if algorithm == "lightgbm":
        # Leaf-wise growth: the leaf count is the learner's real size knob, bounded by the depth.
        p["num_leaves"] = trial.suggest_int("num_leaves", 2, max(2**depth, int(base.get("num_leaves", 2))))
        p["min_data_in_leaf"] = trial.suggest_int(
            "min_data_in_leaf", *map(int, span("min_data_in_leaf", 5, 200)), log=True
        )
    return p


def search_params(
    frame: pd.DataFrame,
    features: pd.DataFrame | np.ndarray,
    *,
    algorithm: str = "xgboost",
    trials: int = 20,
    time_budget_s: float = 300.0,
    seed: int = 0,
    delay_days: int = 7,
    valid_days: int = 7,
    n_folds: int = 2,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    on_trial: TrialCallback | None = None,
    nthread: int = DEFAULT_NTHREAD,
    base_params: dict[str, Any] | None = None,
    train_days: int | None = None,
) -> SearchResult:
    """Search ``trials`` parameter sets (or until ``time_budget_s``) and return the best.

    ``frame`` holds the training rows only (time-ordered, canonical columns with labels) and
    ``features`` their feature rows in the same order. The defaults are enqueued as the first
    trial (with ``base_params`` over them: the run's own settings), so the search can only match
    or improve on them on the folds.
    """
    if trials < 1 or time_budget_s <= 0:
        raise ValueError("trials must be >= 1 and time_budget_s > 0")
    x = (
        features[list(feature_names)].to_numpy(dtype=np.float32)
        if isinstance(features, pd.DataFrame)
        else np.asarray(features, dtype=np.float32)
    )
    y = frame[s.IS_FRAUD].to_numpy(dtype=np.int64)
    ts = s.epoch_seconds(frame[s.TS])
    cards = frame[s.CARD_TOKEN].to_numpy()
    folds = time_folds(
        ts, cards, y, n_folds=n_folds, valid_days=valid_days, delay_days=delay_days, train_days=train_days
    )
    if not folds:
        raise ValueError(
            f"no validation fold with frauds fits in the training rows ({valid_days}-day windows "
            f"after a {delay_days}-day delay): train without a search or give more history"
        )
    days = np.floor_divide(ts, DAY_S)
    base = {**default_params(algorithm), **(base_params or {})}
    history: list[dict[str, Any]] = []
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        t0 = time.perf_counter()
        params = space(trial, algorithm, base)
        fitter = _Fitter(algorithm, params, seed, nthread)
        stages = checkpoints(fitter.rounds)
        aps: list[list[float]] = [[] for _ in stages]
        cps: list[list[float]] = [[] for _ in stages]
        # Optuna's timeout only stops new trials: a trial that runs past the budget is abandoned
        # at the next boosting round (once a trial has completed, so there is a best one).
        deadline = _DeadlineRounds(started + time_budget_s, lambda: bool(history))
        for step, fold in enumerate(folds):
            v = fold.valid
            try:
                deadline.tick()
                booster = fitter.fit(x[fold.train], y[fold.train].astype(np.float32), deadline)
            except _OverBudget:
                trial.set_user_attr("abandoned", True)
                raise optuna.TrialPruned("time budget spent") from None
            for i, margin in enumerate(staged_margins(algorithm, booster, x[v], stages, nthread)):
                aps[i].append(average_precision(y[v], margin))
                cps[i].append(card_precision_top_k(days[v], cards[v], y[v], margin, 100))
            values = [_value(a, c) for a, c in zip(aps, cps, strict=True)]
            trial.report(max(values), step)
            if history and trial.should_prune():
                if on_trial is not None:
                    best = max(h["value"] for h in history)
                    on_trial(
                        {
                            "trial": trial.number + 1,
                            "trials": trials,
                            "value": None,
                            "best": best,
                            "pruned": True,
                        }
                    )
                raise optuna.TrialPruned(f"below the median after fold {step + 1}")
        best_stage = int(np.argmax(values))
        ap, cp = float(np.nanmean(aps[best_stage])), float(np.nanmean(cps[best_stage]))
        value = values[best_stage]
        chosen = {**params, "num_boost_round": stages[best_stage]}
        trial.set_user_attr("num_boost_round", stages[best_stage])
        history.append(
            {
                "trial": trial.number,
                "params": chosen,
                "value": round(value, 6),
                "average_precision": round(ap, 6),
                "card_precision_at_100": round(cp, 6),
                "fitted_rounds": fitter.rounds,
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
        if on_trial is not None:
            best = max(h["value"] for h in history)
            on_trial({"trial": trial.number + 1, "trials": trials, "value": round(value, 6), "best": best})
        return value

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        # Compare a trial with earlier ones from its first fold on, once two have completed.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    study.enqueue_trial({k: base[k] for k in _searched(algorithm) if k in base})
    # The run's own parameters always complete (a search must have a best); then the budget rules.
    study.optimize(objective, n_trials=1, gc_after_trial=False)
    remaining = time_budget_s - (time.perf_counter() - started)
    if trials > 1 and remaining > 0:
        study.optimize(objective, n_trials=trials - 1, timeout=remaining, gc_after_trial=False)
    elapsed = time.perf_counter() - started
    best = next(h for h in history if h["trial"] == study.best_trial.number)
    abandoned = sum(bool(t.user_attrs.get("abandoned", False)) for t in study.trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials) - abandoned
    return SearchResult(
        best_params=dict(best["params"]),
        best_value=float(study.best_value),
        history=history,
        folds=[
            {
                "train_end": pd.Timestamp(f.train_end_s, unit="s", tz="UTC").isoformat(),
                "valid_start": pd.Timestamp(f.valid_start_s, unit="s", tz="UTC").isoformat(),
                "valid_end": pd.Timestamp(f.valid_end_s, unit="s", tz="UTC").isoformat(),
                "train_rows": int(f.train.sum()),
                "valid_rows": int(f.valid.sum()),
            }
            for f in folds
        ],
        elapsed_s=elapsed,
        stopped_by="trials" if len(history) + pruned >= trials else "time",
        abandoned=abandoned,
        pruned=pruned,
    )


def _value(aps: list[float], cps: list[float]) -> float:
    """A trial's value at one checkpoint from its per-fold metrics (``OBJECTIVE``)."""
    return float(np.nanmean(cps)) + AP_WEIGHT * float(np.nanmean(aps))


def checkpoints(rounds: int) -> list[int]:
    """The round counts a trial is read at (increasing, the last is ``rounds``)."""
    return sorted({max(1, round(rounds * q)) for q in CHECKPOINTS})


def staged_margins(
    algorithm: str, booster: Any, x_valid: np.ndarray, stages: list[int], nthread: int
) -> list[np.ndarray]:
    """Validation margins of the first ``k`` trees of one booster, for each ``k`` in ``stages``."""
    if algorithm == "xgboost":
        matrix = xgb.DMatrix(np.asarray(x_valid, np.float32), nthread=nthread)
        return [
            np.asarray(booster.predict(matrix, output_margin=True, iteration_range=(0, k))) for k in stages
        ]
    assert isinstance(booster, lgb.Booster)
    return [
        np.asarray(booster.predict(x_valid, raw_score=True, num_iteration=k, num_threads=nthread))
        for k in stages
    ]


def _searched(algorithm: str) -> tuple[str, ...]:
    base = ("max_depth", "eta", "num_boost_round", "min_child_weight", "colsample_bytree", "subsample")
    return (*base, "num_leaves", "min_data_in_leaf") if algorithm == "lightgbm" else base
