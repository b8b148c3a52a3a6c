"""Single-row scoring and explanation latencies for ``make bench-model`` (medians, in µs)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import xgboost as xgb

from fraud_model.scoring import Scorer


def median_us(fn: Callable[[], Any], n: int = 2_000) -> float:
    for _ in range(50):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1_000


def scoring_latency(scorer: Scorer, rows: np.ndarray) -> dict[str, float]:
    row = rows[0].astype(np.float32)
    booster = scorer.booster
    prebuilt = xgb.DMatrix(row[None, :], nthread=1)
    return {
        "score_one (numpy tree walk + Platt)": median_us(lambda: scorer.score_one(row)),
        "DMatrix build + predict": median_us(
            lambda: booster.predict(xgb.DMatrix(row[None, :], nthread=1), output_margin=True)
        ),
        "predict on a prebuilt DMatrix": median_us(lambda: booster.predict(prebuilt, output_margin=True)),
        "explain, xgboost pred_contribs": median_us(
            lambda: booster.predict(xgb.DMatrix(row[None, :], nthread=1), pred_contribs=True), n=300
        ),
        "inplace_predict": median_us(lambda: booster.inplace_predict(row[None, :], predict_type="margin")),
        "explain_one (vectorised TreeSHAP)": median_us(lambda: scorer.explain_one(row), n=300),
        "score_batch, 64 rows (per row)": median_us(lambda: scorer.score_batch(rows[:64]), n=300) / 64,
    }


def lightgbm_latency(model_lgb: Any, rows: np.ndarray) -> dict[str, float]:
    scorer = Scorer(model_lgb)
    row = rows[0].astype(np.float32)
    booster = scorer.booster
    return {
        "LightGBM score_one (numpy tree walk + Platt)": median_us(lambda: scorer.score_one(row)),
        "LightGBM Booster.predict, one row (raw)": median_us(
            lambda: booster.predict(row[None, :], raw_score=True, num_threads=1)
        ),
        "LightGBM explain_one (pred_contrib)": median_us(lambda: scorer.explain_one(row), n=300),
        "LightGBM score_batch, 64 rows (per row)": median_us(lambda: scorer.score_batch(rows[:64]), n=300)
        / 64,
    }
