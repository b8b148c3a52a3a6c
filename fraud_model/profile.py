"""A model version's reference profile, and the drift statistics that compare traffic with it.

At training time every feature and the score get fixed quantile bins (edges from the training data)
with the reference counts, plus the facts a data-quality check needs (nulls, range, the values of a
feature that takes few). Production traffic is later counted into the *same* bins, so drift is a
comparison of two count vectors: the population stability index and the Jensen-Shannon distance.

Bins are ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``: the inner edges are the unique quantiles,
so a feature with few values (a 0/1 flag) gets as many bins as it has values, not ten empty ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PROFILE_VERSION = 1
DEFAULT_BINS = 10
# An empty bin would make PSI infinite (log of 0): every proportion is at least this.
EPSILON = 1e-4
# A feature with at most this many distinct values is treated as categorical (values listed).
MAX_CATEGORIES = 10
SCORE = "score"


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> list[float]:
    """The unique inner edges at the 1/bins … (bins-1)/bins quantiles of the finite values."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(qs)]


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> list[int]:
    """How many finite values fall in each of the ``len(edges) + 1`` bins."""
    finite = values[np.isfinite(values)]
    idx = np.searchsorted(np.asarray(edges, dtype=float), finite, side="left")
    return [int(c) for c in np.bincount(idx, minlength=len(edges) + 1)]


def _proportions(counts: Sequence[float]) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    p = c / total if total > 0 else np.full(c.shape, 1.0 / max(len(c), 1))
    p = np.maximum(p, EPSILON)
    return np.asarray(p / p.sum())


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of ``current`` against ``reference`` (same bins): >= 0, 0 when
    the proportions are equal; 0.1 is a common "look at it" and 0.25 a "it moved" level."""
    if len(reference) != len(current):
        raise ValueError("reference and current must have the same bins")
    p, q = _proportions(reference), _proportions(current)
    return float(max(np.sum((q - p) * np.log(q / p)), 0.0))


def js_distance(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, so in [0, 1]): symmetric and bounded, unlike PSI."""
    if len(reference) != len(current):
        raise ValueError("reference and current must have the same bins")
    p, q = _proportions(reference), _proportions(current)
    m = (p + q) / 2
    div = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    return float(math.sqrt(max(float(div), 0.0)))


def _column_profile(values: np.ndarray, bins: int) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    edges = quantile_edges(values, bins)
    distinct = np.unique(finite)
    return {
        "edges": edges,
        "counts": bin_counts(values, edges),
        "nulls": int(values.size - finite.size),
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "categories": [float(v) for v in distinct] if distinct.size <= MAX_CATEGORIES else None,
    }


def decision_rates(scores: np.ndarray, review: float, suspicious: float) -> dict[str, float]:
    """Shares of LEGIT / REVIEW / SUSPICIOUS at the thresholds (lists aside: the model's view)."""
    n = max(int(scores.size), 1)
    suspicious_n = int(np.sum(scores >= suspicious))
    review_n = int(np.sum((scores >= review) & (scores < suspicious)))
    return {
        "LEGIT": (scores.size - suspicious_n - review_n) / n,
        "REVIEW": review_n / n,
        "SUSPICIOUS": suspicious_n / n,
    }


def build_profile(
    features: pd.DataFrame,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    review: float,
    suspicious: float,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """The reference profile (plain JSON): feature bins from ``features`` (the training rows), score
    bins and decision rates from ``scores`` (held-out scores: what production will resemble)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    return {
        "version": PROFILE_VERSION,
        "bins": bins,
        "rows": len(features),
        "score_rows": int(s.size),
        "label_rate": float(np.nanmean(y)) if y.size else None,
        "thresholds": {"review": review, "suspicious": suspicious},
        "decision_rates": decision_rates(s, review, suspicious),
        "features": {
            str(name): _column_profile(features[name].to_numpy(dtype=float), bins)
            for name in features.columns
        },
        SCORE: _column_profile(s, bins),
    }


@dataclass(frozen=True)
class CompiledProfile:
    """A profile laid out for counting one transaction with a few numpy operations (the hot path):
    every feature's edges padded with +inf into one matrix, so a vector's bins are one comparison."""

    names: tuple[str, ...]
    edges: np.ndarray  # (features, max inner edges), padded with +inf
    offsets: np.ndarray  # where each feature's bins start in the flat count vector
    sizes: tuple[int, ...]  # bins per feature
    mins: np.ndarray
    maxs: np.ndarray
    categories: tuple[tuple[int, frozenset[float]], ...]  # (feature index, values seen)
    score_edges: np.ndarray

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any], names: Sequence[str]) -> CompiledProfile:
        cols = [profile["features"][n] for n in names]
        width = max([len(c["edges"]) for c in cols] + [1])
        edges = np.full((len(cols), width), np.inf)
        for i, c in enumerate(cols):
            edges[i, : len(c["edges"])] = c["edges"]
        sizes = tuple(len(c["edges"]) + 1 for c in cols)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

        def bound(c: Mapping[str, Any], key: str, default: float) -> float:
            return default if c[key] is None else float(c[key])

        return cls(
            names=tuple(names),
            edges=edges,
            offsets=offsets,
            sizes=sizes,
            mins=np.array([bound(c, "min", -np.inf) for c in cols]),
            maxs=np.array([bound(c, "max", np.inf) for c in cols]),
            categories=tuple(
                (i, frozenset(c["categories"])) for i, c in enumerate(cols) if c["categories"] is not None
            ),
            score_edges=np.asarray(profile[SCORE]["edges"], dtype=float),
        )

    @property
    def total_bins(self) -> int:
        return int(sum(self.sizes))

    def locate(self, vector: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """(flat bin indices of the finite values, null mask, out-of-range mask, unseen categories)."""
        x = np.asarray(vector, dtype=float)
        nulls = ~np.isfinite(x)
        idx = (x[:, None] > self.edges).sum(axis=1) + self.offsets
        out = ~nulls & ((x < self.mins) | (x > self.maxs))
        unseen = [i for i, seen in self.categories if not nulls[i] and float(x[i]) not in seen]
        return idx[~nulls], nulls, out, unseen

    def count_batch(
        self, x: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A batch (rows x features) counted at once: (flat bin counts, score bin counts, and per
        feature the nulls, out-of-range values and unseen values)."""
        nulls = ~np.isfinite(x)
        idx = np.empty(x.shape, np.int64)
        for j in range(x.shape[1]):  # +inf padding is never below a finite value: no extra bin
            idx[:, j] = np.searchsorted(self.edges[j], x[:, j], side="left")
        counts = np.bincount((idx + self.offsets)[~nulls], minlength=self.total_bins)
        with np.errstate(invalid="ignore"):
            out = (~nulls & ((x < self.mins) | (x > self.maxs))).sum(axis=0)
        unseen = np.zeros(len(self.names), np.int64)
        for i, seen in self.categories:
            col = x[:, i][np.isfinite(x[:, i])]
            unseen[i] = int(np.sum(~np.isin(col, np.fromiter(seen, float))))
        s = np.asarray(scores, dtype=float)
        s = s[np.isfinite(s)]
        score_counts = np.bincount(
            np.searchsorted(self.score_edges, s, side="left"), minlength=len(self.score_edges) + 1
        )
        return counts, score_counts, nulls.sum(axis=0), out, unseen

    def score_bin(self, score: float) -> int:
        return int(np.searchsorted(self.score_edges, score, side="left"))

    def split(self, flat: Sequence[int]) -> dict[str, list[int]]:
        """A flat count vector back into per-feature counts."""
        return {
            n: [int(v) for v in flat[int(o) : int(o) + s]]
            for n, o, s in zip(self.names, self.offsets, self.sizes, strict=True)
        }
