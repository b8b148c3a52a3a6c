"""Training: a seeded XGBoost or LightGBM model plus a Platt calibrator, in one self-describing artifact.

Artifact layout (``TrainedModel.to_bytes``)::

    b"FRAUDRAIL-MODEL\\x00" | u32 little-endian header length | header JSON (sorted keys, UTF-8)
    | zero padding to a 64-byte boundary | the single-row scorer's tree arrays (``compiled``,
    ``compiled_size`` bytes) | the booster: XGBoost as UBJSON, or LightGBM's model text

The tree arrays (format 2, ``fraud_model.compiled``) are what ``Scorer`` walks for one row,
computed at training time so that loading them is a memory map, not a parse. A format-1
artifact (no ``compiled`` in its header: the booster follows the header) still loads: its
arrays are then built from the booster.

The header carries the format version, the algorithm (every scorer picks its learner from it; an
artifact without one predates LightGBM and is XGBoost), the feature names and feature-set version,
the calibrator, the training parameters, per-feature medians (for reason codes) and the booster's
SHA-256, so a truncated or edited booster is refused even without an expected digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from fraud_model import compiled as compiled_arrays
from fraud_model import lgbm
from fraud_model.calibration import PlattCalibrator, fit_platt
from fraud_model.features import FEATURE_NAMES, FEATURE_SET_VERSION

ARTIFACT_MAGIC = b"FRAUDRAIL-MODEL\x00"
ARTIFACT_FORMAT = 2
READABLE_FORMATS = (1, 2)
ALGORITHMS = ("xgboost", "lightgbm")
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
class TrainedModel:
    """A booster with its calibrator and the metadata needed to score safely."""

    booster_ubj: bytes
    calibrator: PlattCalibrator
    feature_names: tuple[str, ...]
    feature_set_version: str
    params: dict[str, Any]
    reference_medians: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)
    # The learner that wrote ``booster_ubj`` (the field keeps its historical name: for LightGBM it
    # holds the model text).
    algorithm: str = "xgboost"
    # Set when read from a format-2 artifact: (index, buffer, offset) of its stored tree arrays.
    compiled: tuple[dict[str, Any], Any, int] | None = field(default=None, compare=False, repr=False)

    def header(self) -> dict[str, Any]:
        library = {"xgboost": xgb.__version__, "lightgbm": lgbm.LIGHTGBM_VERSION}[self.algorithm]
        return {
            "format": ARTIFACT_FORMAT,
            "algorithm": self.algorithm,
            "kind": f"{self.algorithm}-binary+platt",
            f"{self.algorithm}_version": library,
            "feature_names": list(self.feature_names),
            "feature_set_version": self.feature_set_version,
            "calibrator": {"kind": "platt", "a": self.calibrator.a, "b": self.calibrator.b},
            "params": self.params,
            "reference_medians": self.reference_medians,
            "summary": self.summary,
            "booster_sha256": sha256(self.booster_ubj),
        }

    def to_bytes(self) -> bytes:
        return self._artifact

    @functools.cached_property
    def _artifact(self) -> bytes:
        # Built once per instance: the tree arrays cost a walk of the whole booster.
        from fraud_model.scoring import tree_arrays

        index, section = compiled_arrays.pack(tree_arrays(self), self.algorithm)
        extra = {"compiled": index, "compiled_size": len(section), "compiled_sha256": sha256(section)}
        head = json.dumps({**self.header(), **extra}, sort_keys=True, separators=(",", ":")).encode()
        pad = b"\0" * (-(len(ARTIFACT_MAGIC) + 4 + len(head)) % compiled_arrays.ALIGN)
        return ARTIFACT_MAGIC + struct.pack("<I", len(head)) + head + pad + section + self.booster_ubj

    @property
    def sha256(self) -> str:
        return sha256(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: Any) -> TrainedModel:
        """Parse an artifact (bytes, or any buffer such as a ``np.memmap`` of its file: the tree
        arrays stay views of it); ArtifactIntegrityError when malformed or a digest differs."""
        view = memoryview(data).cast("B")
        if len(view) < len(ARTIFACT_MAGIC) + 4 or bytes(view[: len(ARTIFACT_MAGIC)]) != ARTIFACT_MAGIC:
            raise ArtifactIntegrityError("not a Fraudrail model artifact")
        off = len(ARTIFACT_MAGIC)
        (size,) = struct.unpack_from("<I", view, off)
        off += 4
        try:
            head = json.loads(bytes(view[off : off + size]).decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactIntegrityError(f"unreadable artifact header: {exc}") from exc
        if not isinstance(head, dict) or head.get("format") not in READABLE_FORMATS:
            raise ArtifactIntegrityError("unsupported artifact format")
        off += size
        index = head.get("compiled")
        stored: tuple[dict[str, Any], Any, int] | None = None
        if index is not None:
            off += -off % compiled_arrays.ALIGN
            end = off + int(head["compiled_size"])
            if hashlib.sha256(view[off:end]).hexdigest() != head.get("compiled_sha256"):
                raise ArtifactIntegrityError("tree arrays do not match the digest in the artifact header")
            stored, off = (index, data, off), end
        booster = bytes(view[off:])
        if sha256(booster) != head.get("booster_sha256"):
            raise ArtifactIntegrityError("booster bytes do not match the digest in the artifact header")
        algorithm = str(head.get("algorithm", "xgboost"))
        if algorithm not in ALGORITHMS:
            raise ArtifactIntegrityError(f"unknown algorithm {algorithm!r} in the artifact header")
        cal = head["calibrator"]
        return cls(
            booster_ubj=booster,
            calibrator=PlattCalibrator(a=float(cal["a"]), b=float(cal["b"])),
            feature_names=tuple(head["feature_names"]),
            feature_set_version=str(head["feature_set_version"]),
            params=dict(head["params"]),
            reference_medians={k: float(v) for k, v in head["reference_medians"].items()},
            summary=dict(head.get("summary", {})),
            algorithm=algorithm,
            compiled=stored,
        )

    def booster(self, nthread: int = 1) -> Any:
        """The learner's own booster: ``xgboost.Booster`` or ``lightgbm.Booster``."""
        if self.algorithm == "lightgbm":
            return lgbm.load(self.booster_ubj)
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


def default_params(algorithm: str) -> dict[str, Any]:
    """The defaults of a learner, in the shared vocabulary (see ``fraud_model.lgbm``)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
    return dict(DEFAULT_PARAMS if algorithm == "xgboost" else lgbm.LGBM_DEFAULT_PARAMS)


_LINEAGE_KEYS = {"algorithm", "seed", "nthread", "search"}
_LGBM_ONLY = {"num_leaves", "min_data_in_leaf"}


RoundReport = Callable[[int, int], None]  # (boosting rounds done, rounds in all)
ROUND_REPORTS = 50  # at most this many reports per training, however many rounds


class _RoundCounter(xgb.callback.TrainingCallback):
    """Counts XGBoost's boosting rounds for a progress report (it never changes the model)."""

    def __init__(self, tick: Callable[[], None]) -> None:
        super().__init__()
        self.tick = tick

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self.tick()
        return False  # never stop early


class _Rounds:
    """Rounds done across a training's fits, reported every ``total / ROUND_REPORTS`` rounds."""

    def __init__(self, total: int, report: RoundReport | None) -> None:
        self.total, self.report, self.done = total, report, 0
        self.every = max(-(-total // ROUND_REPORTS), 1)  # ceil: at most ROUND_REPORTS reports

    def tick(self) -> None:
        self.done += 1
        if self.report is not None and (self.done % self.every == 0 or self.done == self.total):
            self.report(self.done, self.total)


class _Fitter:
    """One learner's fit / margin / serialise, so training reads the same for both."""

    def __init__(self, algorithm: str, params: dict[str, Any], seed: int, nthread: int) -> None:
        self.algorithm, self.nthread = algorithm, nthread
        # Lineage keys and the other learner's own settings never reach a library (XGBoost warns
        # on unknown keys; LightGBM would treat them as aliases).
        foreign = _LGBM_ONLY if algorithm == "xgboost" else set()
        params = {k: v for k, v in params.items() if k not in _LINEAGE_KEYS | foreign}
        if algorithm == "xgboost":
            self.native, self.rounds = _xgb_params(params, seed, nthread)
        else:
            self.native, self.rounds = lgbm.lgbm_params(params, seed, nthread)

    def fit(self, x: np.ndarray, y: np.ndarray, rounds: _Rounds | None = None) -> Any:
        if self.algorithm == "xgboost":
            callbacks = [_RoundCounter(rounds.tick)] if rounds is not None else None
            dtrain = xgb.DMatrix(x, label=y, nthread=self.nthread)
            return xgb.train(self.native, dtrain, self.rounds, callbacks=callbacks)
        return lgbm.fit(x, y, self.native, self.rounds, on_round=rounds.tick if rounds is not None else None)

    def margin(self, booster: Any, x: np.ndarray) -> np.ndarray:
        if self.algorithm == "xgboost":
            return np.asarray(booster.predict(xgb.DMatrix(x, nthread=self.nthread), output_margin=True))
        return lgbm.margin_batch(booster, x, self.nthread)

    def to_bytes(self, booster: Any) -> bytes:
        return bytes(booster.save_raw("ubj")) if self.algorithm == "xgboost" else lgbm.to_bytes(booster)


def fit_margins(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    *,
    algorithm: str = "xgboost",
    params: dict[str, Any] | None = None,
    seed: int = 0,
    nthread: int = DEFAULT_NTHREAD,
) -> np.ndarray:
    """Fit one booster on a training slice and return its margins on a validation slice.

    The margins rank exactly as calibrated scores would (Platt with a > 0 is monotone), so a
    search over ranking metrics (AP, CP@k) needs no calibrator.
    """
    fitter = _Fitter(algorithm, {**default_params(algorithm), **(params or {})}, seed, nthread)
    booster = fitter.fit(np.asarray(x_train, np.float32), np.asarray(y_train, np.float32))
    return fitter.margin(booster, np.asarray(x_valid, np.float32))


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
    algorithm: str = "xgboost",
    on_round: RoundReport | None = None,
    calibration_split: str = "time",
) -> TrainedModel:
    """Fit the booster (``algorithm``: "xgboost" or "lightgbm") and its calibrator; the same
    inputs give byte-identical artifacts.

    ``on_round(done, total)`` hears the boosting rounds of both fits (at most ``ROUND_REPORTS``
    times, the last with ``done == total``), so a long training can say how far it is.

    Rows must be in time order: the booster is first fitted on the earlier
    ``1 - calibration_fraction`` of rows and Platt scaling on its margins over the later slice;
    with ``refit_full`` the booster is then refitted on every row with the same settings (the
    calibrator is kept: Platt's two parameters transfer between the two fits, and the ranking
    is the booster's own either way).

    ``calibration_split="random"`` takes the calibration rows as a seeded random share of all
    rows instead of the latest ones. After a shift in the data the latest rows hold a pattern the
    first fit never saw: Platt fitted on them reads its low margins on those frauds as "margins say
    little" and the full refit, which did learn the pattern, comes out under-confident (a retrained
    challenger flagged 65 transactions at 0.5 where the champion flagged 439, at twice its AP).
    A random share lets the first fit see the same mix the refit sees, so the parameters transfer.
    """
    x = _matrix(features_df, feature_names)
    y = np.asarray(labels, dtype=np.float32)
    if len(y) != len(x):
        raise ValueError("features and labels differ in length")
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError("calibration_fraction must be in (0, 1)")
    merged = {**default_params(algorithm), **(params or {})}
    fitter = _Fitter(algorithm, merged, seed, nthread)
    rounds = _Rounds(fitter.rounds * (2 if refit_full else 1), on_round)
    if calibration_split not in ("time", "random"):
        raise ValueError("calibration_split must be 'time' or 'random'")
    cut = round(len(x) * (1.0 - calibration_fraction))
    order = (
        np.sort(np.random.default_rng(seed).permutation(len(x))[:cut])
        if calibration_split == "random"
        else np.arange(cut)
    )
    fit_rows = np.zeros(len(x), dtype=bool)
    fit_rows[order] = True
    first = fitter.fit(x[fit_rows], y[fit_rows], rounds)
    calibrator = fit_platt(fitter.margin(first, x[~fit_rows]), y[~fit_rows])
    final = fitter.fit(x, y, rounds) if refit_full else first
    medians = np.median(x.astype(np.float64), axis=0) if len(x) else np.zeros(len(feature_names))
    return TrainedModel(
        booster_ubj=fitter.to_bytes(final),
        calibrator=calibrator,
        feature_names=tuple(feature_names),
        feature_set_version=FEATURE_SET_VERSION,
        params={**merged, "seed": seed, "nthread": nthread, "algorithm": algorithm},
        reference_medians={n: float(v) for n, v in zip(feature_names, medians, strict=True)},
        summary={
            "rows": len(x),
            "positives": int(y.sum()),
            "calibration_rows": len(x) - cut,
            "calibration_positives": int(y[~fit_rows].sum()),
            "refit_full": refit_full,
            **({"calibration_split": calibration_split} if calibration_split != "time" else {}),
        },
        algorithm=algorithm,
    )
