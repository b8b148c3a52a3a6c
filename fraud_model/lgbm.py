"""LightGBM beside XGBoost: parameter translation, fitting, and a numpy tree walk for one row.

Parameters are written in one vocabulary for both learners (XGBoost's names: ``max_depth``,
``eta``, ``num_boost_round``, ``min_child_weight``, ``colsample_bytree``, ``subsample``; plus
LightGBM's own ``num_leaves`` and ``min_data_in_leaf``) so a search space, a stored lineage and
the API mean the same thing whichever learner runs.

The walk reads the model text LightGBM itself loads (thresholds and leaf values printed to
round-trip), compares in float64 with ``x <= threshold`` going left and sums leaves in float64
in tree order, as LightGBM's ``Tree::Predict`` / ``GBDT::PredictRaw`` do, so margins equal
``Booster.predict(raw_score=True)`` bit for bit (tested, with missing values too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

LIGHTGBM_VERSION: str = lgb.__version__

# Same model size as the XGBoost defaults (depth 3, 800 rounds): at most 2**3 leaves a tree.
LGBM_DEFAULT_PARAMS: dict[str, Any] = {
    "max_depth": 3,
    "num_leaves": 8,
    "eta": 0.025,
    "num_boost_round": 800,
    "min_child_weight": 5.0,
    "min_data_in_leaf": 20,
    "subsample": 1.0,
    "colsample_bytree": 0.7,
    "max_bin": 255,
}
_RENAME = {
    "eta": "learning_rate",
    "min_child_weight": "min_sum_hessian_in_leaf",
    "colsample_bytree": "feature_fraction",
    "subsample": "bagging_fraction",
}
# XGBoost-only settings that have no LightGBM meaning (dropped, never passed through).
_XGB_ONLY = {"objective", "tree_method", "eval_metric", "seed", "nthread"}

_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold


def lgbm_params(params: dict[str, Any], seed: int, nthread: int) -> tuple[dict[str, Any], int]:
    """LightGBM's parameter dict and round count from the shared vocabulary."""
    p = {k: v for k, v in params.items() if k not in _XGB_ONLY}
    rounds = int(p.pop("num_boost_round", 100))
    out: dict[str, Any] = {_RENAME.get(k, k): v for k, v in p.items()}
    depth = int(out.get("max_depth", -1))
    if "num_leaves" not in out and depth > 0:
        out["num_leaves"] = 2**depth
    if float(out.get("bagging_fraction", 1.0)) < 1.0:
        out["bagging_freq"] = 1
    out.update(
        {
            "objective": "binary",
            "seed": seed,
            "num_threads": nthread,
            # deterministic + col-wise histograms: the same inputs give the same model text.
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }
    )
    return out, rounds


def fit(
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    rounds: int,
    on_round: Callable[[], None] | None = None,
) -> lgb.Booster:
    """Train ``rounds`` boosting rounds; ``on_round`` is called after each (progress only)."""
    callbacks = [lambda _env: on_round()] if on_round is not None else None
    dataset = lgb.Dataset(x, label=y, free_raw_data=True)
    return lgb.train(params, dataset, num_boost_round=rounds, callbacks=callbacks)


def to_bytes(booster: lgb.Booster) -> bytes:
    return booster.model_to_string(num_iteration=-1).encode()


def load(model_bytes: bytes) -> lgb.Booster:
    # Thread count is passed per call (predict's num_threads): a model string ignores params.
    return lgb.Booster(model_str=model_bytes.decode())


def margin_batch(booster: lgb.Booster, x: np.ndarray, nthread: int = 1) -> np.ndarray:
    return np.asarray(booster.predict(x, raw_score=True, num_threads=nthread), dtype=np.float64)


def contributions(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """Per-feature contributions (TreeSHAP, margin space) followed by the bias, one row per input."""
    return np.asarray(booster.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)


def _trees(text: str) -> list[dict[str, str]]:
    """The ``Tree=`` blocks of a model text as key → raw value."""
    out: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("Tree="):
            current = {}
            out.append(current)
        elif line.startswith("end of trees"):
            break
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    return out


def _floats(value: str) -> np.ndarray:
    return np.asarray([float(v) for v in value.split()], dtype=np.float64)


def _ints(value: str) -> np.ndarray:
    return np.asarray([int(v) for v in value.split()], dtype=np.int64)


@dataclass(frozen=True)
class LgbTreeArrays:
    """All trees as flat node arrays (internal nodes then leaves; a leaf points to itself).

    Attribute names match ``scoring.TreeArrays`` so code sizing or inspecting either works.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    missing_type: np.ndarray
    leaf_value: np.ndarray
    depth: int
    has_zero_missing: bool
    # Doubled ids: node n's children at 2n (left) and 2n + 1 (right), one gather a level.
    feature2: np.ndarray
    threshold2: np.ndarray
    children2: np.ndarray

    @classmethod
    def from_model_text(cls, text: str) -> LgbTreeArrays:
        if "objective=binary" not in text:
            raise ValueError("tree walk supports LightGBM's binary objective only")
        feats, thr, lefts, rights, dls, mts, leaves, roots = [], [], [], [], [], [], [], []
        offset, depth = 0, 0
        for tree in _trees(text):
            if int(tree.get("num_cat", "0")) or tree.get("is_linear", "0") == "1":
                raise ValueError("categorical or linear LightGBM trees are not supported by the tree walk")
            leaf_value = _floats(tree["leaf_value"])
            n_leaves = len(leaf_value)
            n_int = n_leaves - 1
            if n_int == 0:  # a constant tree: its root is its only leaf
                f, t = np.zeros(1, np.int64), np.zeros(1)
                le = ri = np.asarray([offset], np.int64)
                dl, mt, values = np.zeros(1, bool), np.zeros(1, np.int64), leaf_value
            else:
                decision = _ints(tree["decision_type"])
                own_leaf = offset + n_int + np.arange(n_leaves, dtype=np.int64)
                lc, rc = _ints(tree["left_child"]), _ints(tree["right_child"])
                # A negative child ~i is leaf i, stored after the tree's internal nodes.
                le = np.concatenate([np.where(lc >= 0, lc + offset, offset + n_int + ~lc), own_leaf])
                ri = np.concatenate([np.where(rc >= 0, rc + offset, offset + n_int + ~rc), own_leaf])
                f = np.concatenate([_ints(tree["split_feature"]), np.zeros(n_leaves, np.int64)])
                t = np.concatenate([_floats(tree["threshold"]), np.zeros(n_leaves)])
                dl = np.concatenate([(decision & 2) > 0, np.zeros(n_leaves, bool)])
                mt = np.concatenate([(decision >> 2) & 3, np.zeros(n_leaves, np.int64)])
                values = np.concatenate([np.zeros(n_int), leaf_value])
                depth = max(depth, _depth(lc, rc))
            feats.append(f)
            thr.append(t)
            lefts.append(le)
            rights.append(ri)
            dls.append(dl)
            mts.append(mt)
            leaves.append(values)
            roots.append(offset)
            offset += len(f)
        feature = np.concatenate(feats) if feats else np.zeros(0, np.int64)
        threshold = np.concatenate(thr) if thr else np.zeros(0)
        left = np.concatenate(lefts) if lefts else np.zeros(0, np.int64)
        right = np.concatenate(rights) if rights else np.zeros(0, np.int64)
        missing_type = np.concatenate(mts) if mts else np.zeros(0, np.int64)
        children2 = np.empty(2 * len(left), dtype=np.int64)
        children2[0::2] = 2 * left
        children2[1::2] = 2 * right
        return cls(
            roots=np.asarray(roots, dtype=np.int64),
            feature=feature,
            threshold=threshold,
            left=left,
            right=right,
            default_left=np.concatenate(dls) if dls else np.zeros(0, bool),
            missing_type=missing_type,
            leaf_value=np.concatenate(leaves) if leaves else np.zeros(0),
            depth=depth,
            has_zero_missing=bool((missing_type == _MISSING_ZERO).any()),
            feature2=np.repeat(feature, 2),
            threshold2=np.repeat(threshold, 2),
            children2=children2,
        )

    def margin(self, row: np.ndarray) -> float:
        """The raw margin of one row (float32 values are widened to float64, as LightGBM does)."""
        x = np.asarray(row, dtype=np.float64)
        if self.has_zero_missing or np.isnan(x).any():
            return self._margin_with_missing(x)
        node2 = self.roots * 2
        feature2, threshold2, children2 = self.feature2, self.threshold2, self.children2
        for _ in range(self.depth):
            # LightGBM goes left when x <= threshold, so "greater" picks the right child (2n + 1).
            node2 = children2.take(node2 + (x.take(feature2.take(node2)) > threshold2.take(node2)))
        return _sequential_sum(self.leaf_value.take(node2 >> 1))

    def _margin_with_missing(self, x: np.ndarray) -> float:
        node = self.roots
        for _ in range(self.depth):
            v = x[self.feature[node]]
            mt = self.missing_type[node]
            nan = np.isnan(v)
            # Tree::NumericalDecision: NaN counts as 0 unless the split has a NaN default.
            v = np.where(nan & (mt != _MISSING_NAN), 0.0, v)
            is_zero = (v >= -_ZERO_THRESHOLD) & (v <= _ZERO_THRESHOLD)
            use_default = ((mt == _MISSING_ZERO) & is_zero) | ((mt == _MISSING_NAN) & nan)
            go_left = np.where(use_default, self.default_left[node], v <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        return _sequential_sum(self.leaf_value[node])


def _sequential_sum(leaves: np.ndarray) -> float:
    # cumsum adds left to right like GBDT::PredictRaw; np.sum's pairwise sum would round differently.
    return float(np.cumsum(leaves, dtype=np.float64)[-1]) if len(leaves) else 0.0


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    depth, frontier = 0, [0]
    while frontier:
        depth += 1
        frontier = [int(c) for n in frontier for c in (left[n], right[n]) if c >= 0]
    return depth
