"""Training: a seeded XGBoost model plus a Platt calibrator, in one self-describing artifact.

Artifact layout (``TrainedModel.to_bytes``)::

    b"FRAUDRAIL-MODEL\\x00" | u32 little-endian header length | header JSON (sorted keys, UTF-8)
    | XGBoost booster as UBJSON

The header carries the format version, the feature names and feature-set version, the
calibrator, the training parameters, per-feature medians (for reason codes) and the booster's
SHA-256, so a truncated or edited booster is refused even without an expected digest.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from fraud_model.features import FEATURE_NAMES, FEATURE_SET_VERSION

ARTIFACT_MAGIC = b"FRAUDRAIL-MODEL\x00"
ARTIFACT_FORMAT = 1
# One thread: on a shared 2-core host OpenMP spin-waits made nthread=2 up to 15x slower (docs/model.md).
DEFAULT_NTHREAD = 1
DEFAULT_CALIBRATION_FRACTION = 0.2

# Chosen on the handbook's four validation folds (all before its test week); see docs/model.md.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "max_depth": 3,
    "eta": 0.025,
    "min_child_weight": 5.0,
    "subsample": 1.0,
    "colsample_bytree": 0.7,
    "max_bin": 256,
    "num_boost_round": 800,
}


class ArtifactIntegrityError(ValueError):
    """Artifact bytes do not match their expected or embedded digest, or are malformed."""


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PlattCalibrator:
    """P(fraud) = sigmoid(a * margin + b); with a > 0 it keeps the booster's ranking."""

    a: float = 1.0
    b: float = 0.0

    def apply(self, margin: np.ndarray | float) -> np.ndarray:
        z = self.a * np.asarray(margin, dtype=np.float64) + self.b
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def apply_one(self, margin: float) -> float:
        z = self.a * margin + self.b
        return float(1.0 / (1.0 + np.exp(-z)))


def fit_platt(margin: np.ndarray, labels: np.ndarray, *, iterations: int = 100) -> PlattCalibrator:
    """Platt scaling by Newton's method, with Platt's smoothed targets; deterministic."""
    y = np.asarray(labels, dtype=np.float64)
    m = np.asarray(margin, dtype=np.float64)
    pos = float(y.sum())
    neg = float(len(y) - pos)
    if pos == 0 or neg == 0:
        return PlattCalibrator()
    target = np.where(y > 0, (pos + 1) / (pos + 2), 1 / (neg + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * m + b)))
        g = p - target
        w = np.maximum(p * (1 - p), 1e-12)
        grad = np.array([np.dot(g, m), g.sum()])
        hess = np.array([[np.dot(w * m, m), np.dot(w, m)], [np.dot(w, m), w.sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - float(step[0]), b - float(step[1])
        if np.abs(step).max() < 1e-10:
            break
    if not np.isfinite(a) or a <= 0:
        return PlattCalibrator()
    return PlattCalibrator(a=a, b=b)


@dataclass(frozen=True)
class TrainedModel:
    """A booster with its calibrator and the metadata needed to score safely."""

    booster_ubj: bytes
    calibrator: PlattCalibrator
    feature_names: tuple[str, ...]
    feature_set_version: str
    params: dict[str, Any]
    reference_medians: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "kind": "xgboost-binary+platt",
            "xgboost_version": xgb.__version__,
            "feature_names": list(self.feature_names),
            "feature_set_version": self.feature_set_version,
            "calibrator": {"kind": "platt", "a": self.calibrator.a, "b": self.calibrator.b},
            "params": self.params,
            "reference_medians": self.reference_medians,
            "summary": self.summary,
            "booster_sha256": sha256(self.booster_ubj),
        }

    def to_bytes(self) -> bytes:
        head = json.dumps(self.header(), sort_keys=True, separators=(",", ":")).encode()
        return ARTIFACT_MAGIC + struct.pack("<I", len(head)) + head + self.booster_ubj

    @property
    def sha256(self) -> str:
        return sha256(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedModel:
        """Parse an artifact; ArtifactIntegrityError when malformed or its booster digest differs."""
        if not data.startswith(ARTIFACT_MAGIC) or len(data) < len(ARTIFACT_MAGIC) + 4:
            raise ArtifactIntegrityError("not a Fraudrail model artifact")
        off = len(ARTIFACT_MAGIC)
        (size,) = struct.unpack_from("<I", data, off)
        off += 4
        try:
            head = json.loads(data[off : off + size].decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactIntegrityError(f"unreadable artifact header: {exc}") from exc
        if not isinstance(head, dict) or head.get("format") != ARTIFACT_FORMAT:
            raise ArtifactIntegrityError("unsupported artifact format")
        booster = data[off + size :]
        if sha256(booster) != head.get("booster_sha256"):
            raise ArtifactIntegrityError("booster bytes do not match the digest in the artifact header")
        cal = head["calibrator"]
        return cls(
            booster_ubj=booster,
            calibrator=PlattCalibrator(a=float(cal["a"]), b=float(cal["b"])),
            feature_names=tuple(head["feature_names"]),
            feature_set_version=str(head["feature_set_version"]),
            params=dict(head["params"]),
            reference_medians={k: float(v) for k, v in head["reference_medians"].items()},
            summary=dict(head.get("summary", {})),
        )

    def booster(self, nthread: int = 1) -> xgb.Booster:
        b = xgb.Booster(params={"nthread": nthread})
        b.load_model(bytearray(self.booster_ubj))
        return b


def load_verified(artifact: bytes, expected_sha256: str) -> TrainedModel:
    """Parse an artifact only if its SHA-256 is the one recorded (for example in the registry)."""
    actual = sha256(artifact)
    if actual != expected_sha256.lower():
        raise ArtifactIntegrityError(f"artifact sha256 {actual} does not match expected {expected_sha256}")
    return TrainedModel.from_bytes(artifact)


def _xgb_params(params: dict[str, Any], seed: int, nthread: int) -> tuple[dict[str, Any], int]:
    p = dict(params)
    rounds = int(p.pop("num_boost_round", 100))
    p.update({"seed": seed, "nthread": nthread, "objective": p.get("objective", "binary:logistic")})
    p.setdefault("tree_method", "hist")
    p["eval_metric"] = "logloss"
    return p, rounds


def _matrix(features: pd.DataFrame | np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        missing = [n for n in names if n not in features.columns]
        if missing:
            raise ValueError(f"feature frame lacks {missing}")
        return features[list(names)].to_numpy(dtype=np.float32)
    arr = np.asarray(features, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError(f"expected a matrix with {len(names)} columns, got shape {arr.shape}")
    return arr


def train_model(
    features_df: pd.DataFrame | np.ndarray,
    labels: pd.Series | np.ndarray,
    *,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    feature_names: tuple[str, ...] = FEATURE_NAMES,
    calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION,
    refit_full: bool = True,
    nthread: int = DEFAULT_NTHREAD,
) -> TrainedModel:
    """Fit the booster and its calibrator; the same inputs give byte-identical artifacts.

    Rows must be in time order: the booster is first fitted on the earlier
    ``1 - calibration_fraction`` of rows and Platt scaling on its margins over the later slice;
    with ``refit_full`` the booster is then refitted on every row with the same settings (the
    calibrator is kept: Platt's two parameters transfer between the two fits, and the ranking
    is the booster's own either way).
    """
    x = _matrix(features_df, feature_names)
    y = np.asarray(labels, dtype=np.float32)
    if len(y) != len(x):
        raise ValueError("features and labels differ in length")
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError("calibration_fraction must be in (0, 1)")
    merged = {**DEFAULT_PARAMS, **(params or {})}
    xgb_params, rounds = _xgb_params(merged, seed, nthread)
    cut = round(len(x) * (1.0 - calibration_fraction))
    first = xgb.train(xgb_params, xgb.DMatrix(x[:cut], label=y[:cut], nthread=nthread), rounds)
    held_margin = first.predict(xgb.DMatrix(x[cut:], nthread=nthread), output_margin=True)
    calibrator = fit_platt(held_margin, y[cut:])
    final = xgb.train(xgb_params, xgb.DMatrix(x, label=y, nthread=nthread), rounds) if refit_full else first
    medians = np.median(x.astype(np.float64), axis=0) if len(x) else np.zeros(len(feature_names))
    return TrainedModel(
        booster_ubj=bytes(final.save_raw("ubj")),
        calibrator=calibrator,
        feature_names=tuple(feature_names),
        feature_set_version=FEATURE_SET_VERSION,
        params={**merged, "seed": seed, "nthread": nthread},
        reference_medians={n: float(v) for n, v in zip(feature_names, medians, strict=True)},
        summary={
            "rows": len(x),
            "positives": int(y.sum()),
            "calibration_rows": len(x) - cut,
            "calibration_positives": int(y[cut:].sum()),
            "refit_full": refit_full,
        },
    )
