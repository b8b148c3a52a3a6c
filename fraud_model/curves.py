"""Evaluation curves (precision-recall and ROC) as PNG bytes, for experiment trackers.

Rendered with matplotlib's Agg canvas on a ``Figure`` object, never through ``pyplot``: no
global figure state and no GUI backend, so it is safe in a worker thread.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn import metrics as skm


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # No timestamp in the PNG: the same scores give the same bytes.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def curve_pngs(labels: np.ndarray, scores: np.ndarray, *, title: str = "") -> dict[str, bytes]:
    """``{"pr_curve.png": ..., "roc_curve.png": ...}`` for one labelled set of scores."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(scores, dtype=np.float64)
    out: dict[str, bytes] = {}
    if len(np.unique(y)) < 2:
        return out
    precision, recall, _ = skm.precision_recall_curve(y, p)
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    ax.step(recall, precision, where="post")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"{title} PR (AP {skm.average_precision_score(y, p):.3f})".strip())
    out["pr_curve.png"] = _png(fig)
    fpr, tpr, _ = skm.roc_curve(y, p)
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot()
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], linestyle="--", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"{title} ROC (AUC {skm.roc_auc_score(y, p):.3f})".strip())
    out["roc_curve.png"] = _png(fig)
    return out
