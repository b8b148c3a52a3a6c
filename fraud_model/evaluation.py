"""Metrics as the handbook defines them, a calibration summary, the promotion gate, its split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from fraud_model import schema as s

DAY_S = 86_400


def auc_roc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (NaN when only one class is present)."""
    y = np.asarray(labels)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(skm.roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    y = np.asarray(labels)
    if y.sum() == 0:
        return float("nan")
    return float(skm.average_precision_score(y, np.asarray(scores, dtype=np.float64)))


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float = 0.01) -> float:
    """The best true-positive rate among thresholds whose false-positive rate is <= ``max_fpr``."""
    y = np.asarray(labels)
    if len(np.unique(y)) < 2:
        return float("nan")
    fpr, tpr, _ = skm.roc_curve(y, np.asarray(scores, dtype=np.float64))
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Count-weighted mean |observed rate - mean probability| over equal-width probability bins."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    if not len(y):
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    sum_p = np.bincount(bins, weights=p, minlength=n_bins)
    sum_y = np.bincount(bins, weights=y, minlength=n_bins)
    used = counts > 0
    return float(np.sum(np.abs(sum_y[used] - sum_p[used])) / len(y))


def day_index(ts: pd.Series) -> np.ndarray:
    """Whole UTC days since the epoch."""
    return np.asarray(np.floor_divide(s.epoch_seconds(ts), DAY_S), dtype=np.int64)


def card_precision_top_k_per_day(
    days: np.ndarray,
    cards: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    k: int = 100,
    *,
    remove_detected: bool = True,
) -> list[float]:
    """The handbook's daily Card Precision@k.

    Each day: a card's score is its highest transaction score and it is compromised if any
    of its transactions is fraudulent; take the k highest-scoring cards, precision = compromised
    among them / k. Compromised cards found in the top k are left out of the following days.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    frame = pd.DataFrame(
        {"day": np.asarray(days), "card": np.asarray(cards), "y": np.asarray(labels), "p": np.asarray(scores)}
    )
    detected: set[object] = set()
    out: list[float] = []
    for _, day in frame.groupby("day", sort=True):
        if detected:
            day = day[~day["card"].isin(detected)]
        per_card = day.groupby("card", sort=True).agg(p=("p", "max"), y=("y", "max"))
        top = per_card.sort_values("p", ascending=False, kind="stable").head(k)
        hits = top.index[top["y"].to_numpy() > 0]
        out.append(len(hits) / k)
        if remove_detected:
            detected.update(hits.tolist())
    return out


def card_precision_top_k(
    days: np.ndarray, cards: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = 100
) -> float:
    """Daily Card Precision@k averaged over days (NaN without rows)."""
    daily = card_precision_top_k_per_day(days, cards, labels, scores, k)
    return float(np.mean(daily)) if daily else float("nan")


def evaluate(frame: pd.DataFrame, scores: np.ndarray, *, top_k: int = 100) -> dict[str, float]:
    """AUC ROC, AP, CP@k, recall at 1% FPR, Brier and ECE of ``scores`` on a labelled frame."""
    y = frame[s.IS_FRAUD].to_numpy(dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    return {
        "auc_roc": auc_roc(y, p),
        "average_precision": average_precision(y, p),
        f"card_precision_at_{top_k}": card_precision_top_k(
            day_index(frame[s.TS]), frame[s.CARD_TOKEN].to_numpy(), y, p, top_k
        ),
        "recall_at_1pct_fpr": recall_at_fpr(y, p, 0.01),
        "brier": brier_score(y, p),
        "ece": expected_calibration_error(y, p),
    }


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: list[tuple[str, float, float]] = field(default_factory=list)

    def describe(self) -> str:
        if self.passed:
            return "gate passed"
        return "; ".join(f"{m}: observed {o:.4f}, limit {lim:.4f}" for m, lim, o in self.failures)


def check_gate(
    metrics: Mapping[str, float],
    minimums: Mapping[str, float],
    maximums: Mapping[str, float] | None = None,
) -> GateResult:
    """Every metric at or above its minimum (and at or below its maximum); a missing or NaN
    metric fails. Failures are (metric, limit, observed)."""
    failures: list[tuple[str, float, float]] = []
    for name, minimum in minimums.items():
        observed = float(metrics.get(name, float("nan")))
        if not observed >= minimum:
            failures.append((name, float(minimum), observed))
    for name, maximum in (maximums or {}).items():
        observed = float(metrics.get(name, float("nan")))
        if not observed <= maximum:
            failures.append((name, float(maximum), observed))
    return GateResult(passed=not failures, failures=failures)


def handbook_split(
    df: pd.DataFrame,
    train_start: str | pd.Timestamp,
    delta_train: int = 7,
    delta_delay: int = 7,
    delta_test: int = 7,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The handbook's ``get_train_test_set``: a training window, a delay, a test window.

    Cards with a fraud in the training window are removed from the test set, and each test day
    also removes cards with a fraud on day (train_end + day - 1), which the handbook treats as
    known by then.
    """
    start = pd.Timestamp(train_start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    start_day = int(start.value // 1_000_000_000 // DAY_S)
    days = day_index(df[s.TS])
    fraud = df[s.IS_FRAUD].to_numpy(dtype=np.int64) > 0
    # Integer codes: np.isin on object arrays of strings is quadratic.
    cards, _ = pd.factorize(df[s.CARD_TOKEN])
    ts_ns = s.to_utc(df[s.TS]).astype("int64").to_numpy()
    end_ns = start.value + delta_train * DAY_S * 1_000_000_000
    in_train = (ts_ns >= start.value) & (ts_ns < end_ns)
    known = np.zeros(int(cards.max()) + 1 if len(cards) else 0, dtype=bool)
    known[cards[in_train & fraud]] = True
    keep_test = np.zeros(len(df), dtype=bool)
    for j in range(delta_test):
        known[cards[(days == start_day + delta_train + j - 1) & fraud]] = True
        today = days == start_day + delta_train + delta_delay + j
        keep_test |= today & ~known[cards]
    return df[in_train].copy(), df[keep_test].copy()
