"""Champion vs challenger on the same recent labelled window that neither trained on.

The window is the last ``compare_days`` days of the retraining's frame: the challenger's training
run tested on exactly those days (its training rows end right before them: ``gap_days`` 0, the
frame's end already lies ``label_maturity_days`` before the cut-off), and the
champion's own dataset rows are taken out of it. Both models score the window's features,
recomputed from the stored transactions by the one feature definition; decisions use the
tenant's live thresholds, so the answer reads like a backtest: ranking quality (AP, ROC AUC),
flagged volume and review workload per day, precision / recall, fraud amount caught / missed,
and the decision flip matrix (champion → challenger) with example transactions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pandas as pd

from fraud_model import schema
from fraud_model.evaluation import auc_roc, average_precision
from fraud_model.features import DAY_S, FEATURE_NAMES
from fraud_model.scoring import Scorer
from fraud_model.training import TrainedModel

FLAGGED = ("REVIEW", "SUSPICIOUS")


def window_mask(frame: pd.DataFrame, compare_days: int, exclude: set[str]) -> np.ndarray:
    ts_s = schema.epoch_seconds(frame[schema.TS])
    last_day = int(ts_s.max() // DAY_S)
    mask = ts_s >= (last_day - compare_days + 1) * DAY_S
    return np.asarray(mask & ~frame[schema.TXN_ID].isin(exclude).to_numpy(), dtype=bool)


def decisions(scores: np.ndarray, review: float, suspicious: float) -> np.ndarray:
    """The hot path's threshold decision (``scoring.decision.threshold_decision``), vectorised."""
    out = np.full(len(scores), "LEGIT", dtype=object)
    out[scores >= review] = "REVIEW"
    out[scores >= suspicious] = "SUSPICIOUS"
    return out


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), 6)


def _side(y: np.ndarray, scores: np.ndarray, decided: np.ndarray, amount: np.ndarray) -> dict[str, Any]:
    flagged = np.isin(decided, FLAGGED)
    fraud = y == 1
    caught = flagged & fraud
    return {
        "average_precision": _num(average_precision(y, scores)),
        "auc_roc": _num(auc_roc(y, scores)),
        "flagged": int(flagged.sum()),
        "review": int((decided == "REVIEW").sum()),
        "suspicious": int((decided == "SUSPICIOUS").sum()),
        "precision": round(float(caught.sum() / flagged.sum()), 6) if flagged.any() else None,
        "recall": round(float(caught.sum() / fraud.sum()), 6) if fraud.any() else None,
        "fraud_amount_caught": round(float(amount[caught].sum()), 2),
        "fraud_amount_missed": round(float(amount[fraud & ~flagged].sum()), 2),
    }


def compare(
    frame: pd.DataFrame,
    features: pd.DataFrame,
    mask: np.ndarray,
    champion: TrainedModel,
    challenger: TrainedModel,
    *,
    review: float,
    suspicious: float,
) -> dict[str, Any]:
    """Both models on the window's rows: overall, per day, and the flip matrix."""
    rows = frame[mask]
    x = features[mask][list(FEATURE_NAMES)].to_numpy(dtype=np.float32)
    y = rows[schema.IS_FRAUD].to_numpy(dtype=np.int64)
    amount = rows[schema.AMOUNT].to_numpy(dtype=np.float64)
    scores = {"champion": Scorer(champion).score_batch(x), "challenger": Scorer(challenger).score_batch(x)}
    decided = {k: decisions(s, review, suspicious) for k, s in scores.items()}
    workload = int(np.isin(decided["champion"], FLAGGED).sum())
    flips: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    txn_ids = rows[schema.TXN_ID].to_numpy()
    for i in np.flatnonzero(decided["champion"] != decided["challenger"]):
        key = (str(decided["champion"][i]), str(decided["challenger"][i]))
        flips[key] += 1
        if len(examples[key]) < 5:
            examples[key].append(str(txn_ids[i]))
    days = pd.to_datetime(rows[schema.TS]).dt.date.to_numpy()
    per_day = []
    for day in sorted(set(days)):
        on = days == day
        per_day.append(
            {
                "day": day.isoformat(),
                "transactions": int(on.sum()),
                "fraud": int(y[on].sum()),
                **{
                    k: {
                        "flagged": int(np.isin(decided[k][on], FLAGGED).sum()),
                        "review": int((decided[k][on] == "REVIEW").sum()),
                    }
                    for k in scores
                },
            }
        )
    return {
        "window_start": rows[schema.TS].min().isoformat() if len(rows) else None,
        "window_end": rows[schema.TS].max().isoformat() if len(rows) else None,
        "transactions": len(rows),
        "fraud": int(y.sum()),
        "thresholds": {"review": review, "suspicious": suspicious},
        "champion": _side(y, scores["champion"], decided["champion"], amount),
        "challenger": {
            **_side(y, scores["challenger"], decided["challenger"], amount),
            "recall_at_champion_workload": recall_at_workload(y, scores["challenger"], workload),
        },
        "flips": [
            {"from_decision": a, "to_decision": b, "count": n, "examples": examples[(a, b)]}
            for (a, b), n in sorted(flips.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "days": per_day,
    }


def recall_at_workload(y: np.ndarray, scores: np.ndarray, flagged: int) -> float | None:
    """Recall when the ``flagged`` highest-scored transactions are flagged (ties broken by order)."""
    if not (y == 1).any():
        return None
    top = np.argsort(-scores, kind="stable")[: max(flagged, 0)]
    return round(float(y[top].sum() / (y == 1).sum()), 6)


def policy_input(tier: str, auto_rollout: bool, comparison: dict[str, Any]) -> dict[str, Any]:
    """What ``fraudrail.monitoring`` sees for the question "may this challenger start a canary".

    Recall is at the live thresholds: the canary serves at them. (The challenger's recall at the
    champion's review workload is in the comparison too, for the admin who retunes thresholds; a
    retraining calibrates on a random share of its rows so its scores read on the same scale.)"""

    def figures(side: dict[str, Any]) -> dict[str, Any]:
        return {k: side[k] for k in ("average_precision", "recall") if side.get(k) is not None}

    return {
        "question": "promote",
        "tenant": {"tier": tier, "auto_rollout": auto_rollout},
        "comparison": {
            "transactions": comparison["transactions"],
            "fraud": comparison["fraud"],
            "champion": figures(comparison["champion"]),
            "challenger": figures(comparison["challenger"]),
        },
    }
