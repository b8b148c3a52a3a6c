"""Scoring a trained artifact: one row (the hot path), batches, and explanations.

The artifact's header names its learner (XGBoost or LightGBM); ``Scorer`` picks the matching
booster and tree walk. One row is scored by a numpy walk of the dumped trees: every tree
advances one level per step. For XGBoost, comparisons in float32 and leaf values summed in
float32 in tree order, exactly as XGBoost's CPU predictor does; for LightGBM, float64 and
``x <= threshold`` (``fraud_model.lgbm``). Margins are bit-identical to each library's own
prediction (tests check both) at a fraction of its per-call set-up cost (docs/model.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from fraud_model import compiled, lgbm
from fraud_model.reasons import reason_codes
from fraud_model.training import ArtifactIntegrityError, TrainedModel, load_verified
from fraud_model.treeshap import leaf_paths

_LEAF = -1


@dataclass(frozen=True)
class TreeArrays:
    """All trees of a binary:logistic booster as flat arrays (children are absolute indices)."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    leaf_value: np.ndarray
    depth: int
    base_margin: np.float32
    # The same nodes with doubled ids: node n's children sit at 2n (left) and 2n + 1 (right).
    feature2: np.ndarray
    threshold2: np.ndarray
    children2: np.ndarray

    @classmethod
    def from_booster(cls, booster: xgb.Booster) -> TreeArrays:
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            raise ValueError(f"tree walk supports binary:logistic only, not {objective}")
        base = float(str(learner["learner_model_param"]["base_score"]).strip("[]"))
        trees = learner["gradient_booster"]["model"]["trees"]
        roots, feats, thr, lefts, rights, dl, depth = [], [], [], [], [], [], 0
        offset = 0
        for tree in trees:
            left = np.asarray(tree["left_children"], dtype=np.int64)
            right = np.asarray(tree["right_children"], dtype=np.int64)
            if any(t != 0 for t in tree["split_type"]):
                raise ValueError("categorical splits are not supported by the tree walk")
            n = len(left)
            own = np.arange(n, dtype=np.int64) + offset
            leaf = left == _LEAF
            lefts.append(np.where(leaf, own, left + offset))
            rights.append(np.where(leaf, own, right + offset))
            feats.append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)))
            thr.append(np.asarray(tree["split_conditions"], dtype=np.float32))
            dl.append(np.asarray(tree["default_left"], dtype=bool))
            roots.append(offset)
            depth = max(depth, _tree_depth(left, right))
            offset += n
        threshold = np.concatenate(thr) if thr else np.zeros(0, dtype=np.float32)
        feature = np.concatenate(feats) if feats else np.zeros(0, dtype=np.int64)
        left_all = np.concatenate(lefts) if lefts else np.zeros(0, dtype=np.int64)
        right_all = np.concatenate(rights) if rights else np.zeros(0, dtype=np.int64)
        children2 = np.empty(2 * len(left_all), dtype=np.int64)
        children2[0::2] = 2 * left_all
        children2[1::2] = 2 * right_all
        return cls(
            roots=np.asarray(roots, dtype=np.int64),
            feature=feature,
            threshold=threshold,
            left=left_all,
            right=right_all,
            default_left=np.concatenate(dl) if dl else np.zeros(0, dtype=bool),
            # A leaf's value is stored in split_conditions; it is a leaf when it points to itself.
            leaf_value=threshold,
            depth=depth,
            base_margin=np.float32(np.log(base / (1.0 - base))),
            feature2=np.repeat(feature, 2),
            threshold2=np.repeat(threshold, 2),
            children2=children2,
        )

    def margin(self, row: np.ndarray) -> float:
        """The raw margin of one float32 row."""
        if math.isnan(row.sum()):  # NaN in the row (or infinities of both signs: same answer)
            return self._margin_with_missing(row)
        table = self._leaf_table
        if table is not None:
            # Every split of every tree compared at once; each tree's bits index its leaf.
            bits = (row.take(table.feature) >= table.threshold).view(np.uint64)
            codes = (bits * _GATHER_BYTES) >> _TOP_BYTE
            return _sequential_sum(self.base_margin, table.leaves.take(codes + table.base))
        # Node ids are doubled so a node's two children sit at 2n and 2n + 1: one gather a level.
        node2 = self.roots * 2
        feature2, threshold2, children2 = self.feature2, self.threshold2, self.children2
        for _ in range(self.depth):
            node2 = children2.take(node2 + (row.take(feature2.take(node2)) >= threshold2.take(node2)))
        return _sequential_sum(self.base_margin, self.leaf_value.take(node2 >> 1))

    @functools.cached_property
    def _leaf_table(self) -> LeafTable | None:
        return LeafTable.build(self) if 0 < self.depth <= LeafTable.MAX_DEPTH else None

    def _margin_with_missing(self, row: np.ndarray) -> float:
        node = self.roots
        for _ in range(self.depth):
            x = row[self.feature[node]]
            go_left = np.where(np.isnan(x), self.default_left[node], x < self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        return _sequential_sum(self.base_margin, self.leaf_value[node])


def _sequential_sum(base: np.float32, leaves: np.ndarray) -> float:
    # Leaves added to the base one at a time in float32, in tree order, as XGBoost's predictor.
    out = np.empty(len(leaves) + 1, dtype=np.float32)
    out[0] = base
    out[1:] = leaves
    return float(np.cumsum(out, dtype=np.float32)[-1])


# Eight 0/1 bytes read as one little-endian uint64, times this, carry byte i to bit 56 + i.
_GATHER_BYTES = np.uint64(0x0102040810204080)
_TOP_BYTE = np.uint64(56)


@dataclass(frozen=True)
class LeafTable:
    """Shallow trees (depth <= 3) as lookup tables: a tree's up to 7 splits, numbered in
    breadth-first order of a complete tree (padded to 8), give an 8-bit code, and ``leaves``
    holds the leaf value each code reaches (built once per load by walking every tree for every
    code). A row costs one gather and one comparison over every split, and its 8 comparison
    bytes per tree are packed into the code with one multiply (no gather per level); the leaves
    reached, and so the margin, are exactly the walk's."""

    MAX_DEPTH = 3
    feature: np.ndarray  # (trees * 8,) feature of each split position (0 where none)
    threshold: np.ndarray  # (trees * 8,) its threshold (float32)
    base: np.ndarray  # (trees,) offset of each tree's codes in ``leaves`` (uint64)
    leaves: np.ndarray  # (trees * 256,) float32

    @classmethod
    def build(cls, trees: TreeArrays) -> LeafTable:
        splits, codes = 8, 256  # position 7 (and any below a leaf) never changes the leaf
        n = len(trees.roots)
        # The node at each position of each tree (-1 below a leaf).
        at = np.full((n, splits), -1, dtype=np.int64)
        at[:, 0] = trees.roots
        for pos in range(splits):
            node = at[:, pos]
            inner = (node >= 0) & (trees.left[np.maximum(node, 0)] != np.maximum(node, 0))
            for child, side in ((2 * pos + 1, trees.left), (2 * pos + 2, trees.right)):
                if child < splits:
                    at[:, child] = np.where(inner, side[np.maximum(node, 0)], -1)
        inner_at = (at >= 0) & (trees.left[np.maximum(at, 0)] != np.maximum(at, 0))
        feature = np.where(inner_at, trees.feature[np.maximum(at, 0)], 0)
        threshold = np.where(inner_at, trees.threshold[np.maximum(at, 0)], np.float32(0)).astype(np.float32)
        # Walk every tree for every code: bit ``pos`` set means "x >= threshold" (right child).
        code = np.arange(codes, dtype=np.int64)[None, :]  # bit ``pos`` of the code: split ``pos``
        node = np.repeat(trees.roots[:, None], codes, axis=1)
        place = np.zeros_like(node)  # each walk's position in the complete tree
        for _ in range(trees.depth):
            leaf = trees.left[node] == node
            bit = (code >> np.minimum(place, 7)) & 1
            node = np.where(leaf, node, np.where(bit == 1, trees.right[node], trees.left[node]))
            place = np.where(leaf, place, 2 * place + 1 + bit)
        return cls(
            feature=feature.reshape(-1),
            threshold=threshold.reshape(-1),
            base=np.arange(n, dtype=np.uint64) * np.uint64(codes),
            leaves=trees.leaf_value[node].astype(np.float32).reshape(-1),
        )


def _tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    depth = 0
    frontier = [0]
    while frontier:
        nxt = [c for n in frontier if left[n] != _LEAF for c in (int(left[n]), int(right[n]))]
        if nxt:
            depth += 1
        frontier = nxt
    return depth


def tree_arrays(model: TrainedModel, booster: Any = None) -> TreeArrays | lgbm.LgbTreeArrays:
    """The single-row walk's arrays, built from the booster (training stores them in the artifact)."""
    if model.algorithm == "lightgbm":
        return lgbm.LgbTreeArrays.from_model_text(model.booster_ubj.decode())
    return TreeArrays.from_booster(booster if booster is not None else model.booster(nthread=1))


class Scorer:
    """Calibrated fraud probabilities from one artifact.

    The single-row walk uses the artifact's stored tree arrays (views of its buffer, nothing
    parsed); the learner's own booster, needed only for batches and contributions, is loaded
    on first use.
    """

    def __init__(self, model: TrainedModel, *, nthread: int = 1) -> None:
        self.model = model
        self.algorithm = model.algorithm
        self.feature_names = model.feature_names
        self._nthread = nthread
        self.trees: TreeArrays | lgbm.LgbTreeArrays = (
            compiled.unpack(*model.compiled)
            if model.compiled is not None
            else tree_arrays(model, self.booster if self.algorithm == "xgboost" else None)
        )
        self._n = len(model.feature_names)

    @functools.cached_property
    def booster(self) -> Any:
        """xgboost.Booster or lightgbm.Booster, as the artifact's header says."""
        return self.model.booster(nthread=self._nthread)

    @classmethod
    def from_bytes(cls, artifact: bytes, expected_sha256: str | None = None) -> Scorer:
        """Build from artifact bytes, verifying the SHA-256 when it is given."""
        model = (
            TrainedModel.from_bytes(artifact)
            if expected_sha256 is None
            else load_verified(artifact, expected_sha256)
        )
        return cls(model)

    @classmethod
    def from_file(cls, path: str, expected_sha256: str | None = None) -> Scorer:
        """Memory-map an artifact file: the tree arrays are views of the mapping (hashing it
        releases the GIL; only the small header is parsed)."""
        try:
            mapped = np.memmap(path, dtype=np.uint8, mode="r")
        except ValueError as exc:  # an empty file cannot be mapped
            raise ArtifactIntegrityError(f"not a Fraudrail model artifact: {exc}") from exc
        if expected_sha256 is not None:
            actual = hashlib.sha256(mapped.data).hexdigest()
            if actual != expected_sha256.lower():
                raise ArtifactIntegrityError(
                    f"artifact sha256 {actual} does not match expected {expected_sha256}"
                )
        return cls(TrainedModel.from_bytes(mapped))

    def _row(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        row = np.asarray(vector, dtype=np.float32)
        if row.shape != (self._n,):
            raise ValueError(f"expected {self._n} features, got shape {row.shape}")
        return row

    def margin_one(self, vector: Sequence[float] | np.ndarray) -> float:
        return self.trees.margin(self._row(vector))

    def score_one(self, vector: Sequence[float] | np.ndarray) -> float:
        """Calibrated P(fraud) of one feature vector (FEATURE_NAMES order)."""
        return self.model.calibrator.apply_one(self.trees.margin(self._row(vector)))

    def margin_batch(self, matrix: np.ndarray) -> np.ndarray:
        x = np.asarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self._n:
            raise ValueError(f"expected a matrix with {self._n} columns, got shape {x.shape}")
        if self.algorithm == "lightgbm":
            return lgbm.margin_batch(self.booster, x)
        return np.asarray(self.booster.predict(xgb.DMatrix(x, nthread=1), output_margin=True))

    def score_batch(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated P(fraud) for each row of a matrix."""
        return self.model.calibrator.apply(self.margin_batch(matrix))

    def contributions_batch(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature SHAP contributions (margin space) then the bias term, one row per input row.

        XGBoost rows are explained by ``fraud_model.treeshap`` (the values of ``pred_contribs`` to
        float32 precision, at a fraction of its cost, which is per row even in a batch), so a batch
        and a row-by-row explanation agree exactly; LightGBM explains itself (``pred_contrib``).
        """
        x = np.asarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self._n:
            raise ValueError(f"expected a matrix with {self._n} columns, got shape {x.shape}")
        if self.algorithm == "lightgbm":
            return lgbm.contributions(self.booster, x).astype(np.float32)
        paths = leaf_paths(self.booster)
        out = np.empty((len(x), self._n + 1), dtype=np.float32)
        for i, row in enumerate(x):
            out[i] = paths.contributions(row)
        return out

    def contributions(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        """Per-feature SHAP contributions (margin space) followed by the bias term."""
        return np.asarray(self.contributions_batch(self._row(vector)[None, :])[0])

    def explain_one(self, vector: Sequence[float] | np.ndarray, top_k: int = 3) -> list[tuple[str, float]]:
        """The ``top_k`` features pushing this score up most, with their contributions."""
        contrib = self.contributions(vector)[: self._n]
        order = np.argsort(-contrib, kind="stable")[:top_k]
        return [(self.feature_names[i], float(contrib[i])) for i in order]

    def reasons(self, vector: Sequence[float] | np.ndarray, top_k: int = 3) -> list[dict[str, Any]]:
        """Readable reason codes for the features that raised this score."""
        row = self._row(vector)
        values = {name: float(row[i]) for i, name in enumerate(self.feature_names)}
        return reason_codes(self.explain_one(row, top_k), values, self.model.reference_medians)
