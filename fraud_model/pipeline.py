"""One training run, start to finish, as pure code: the control plane runs it in-process (local
provider) and the inference image runs it as a SageMaker Training job (``python -m inference
train``): the same features, split, search, training, evaluation and reference profile either way.

The run's outputs are one ``model.tar.gz`` (what SageMaker uploads from ``/opt/ml/model`` and what a
SageMaker model's ``ModelDataUrl`` must name): the artifact ``model.frm``, its ``model.frm.sha256``,
``evaluation.json`` (metrics, row counts, search lineage), ``profile.json`` (the reference profile)
and, when asked for, evaluation curves ``curves/*.png``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraud_model import schema
from fraud_model.evaluation import evaluate
from fraud_model.feature_sets.training import run_features, with_feature_set
from fraud_model.features import CARD_HORIZON_S, DAY_S, terminal_horizon_s
from fraud_model.profile import build_profile
from fraud_model.scoring import Scorer
from fraud_model.search import search_params
from fraud_model.training import TrainedModel, sha256, train_model

ARTIFACT_NAME = "model.frm"
EVALUATION_NAME = "evaluation.json"
PROFILE_NAME = "profile.json"
CURVES_DIR = "curves"
Progress = Callable[..., None]  # (phase, percent, **extra)


class TrainingDataError(ValueError):
    """The dataset cannot train a model (too few days, no fraud label): retrying cannot help."""


@dataclass(frozen=True)
class TrainingOutputs:
    """What a run leaves behind, read back from its ``model.tar.gz``."""

    artifact: bytes
    evaluation: dict[str, Any]
    profile: dict[str, Any]
    curves: dict[str, bytes] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return sha256(self.artifact)


def evaluation_window(frame: pd.DataFrame, test_days: int) -> np.ndarray:
    """Every row of the last ``test_days`` days (before any card is dropped from the evaluation)."""
    ts_s = schema.epoch_seconds(frame[schema.TS])
    return np.asarray(ts_s >= (int(ts_s.max() // DAY_S) - test_days + 1) * DAY_S)


def split_by_time(
    frame: pd.DataFrame, *, test_days: int, delay_days: int, gap_days: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train on everything before (test start - ``gap_days``); test on the last ``test_days`` days.

    ``gap_days`` (default ``delay_days``) is the gap between the two windows: the days whose labels
    a live system would not know yet when the model is trained. A frame whose unlabelled days were
    already cut off (a retraining's, which ends ``label_maturity_days`` before its cut-off) needs
    no gap: 0 trains right up to the test window.

    As in the handbook, cards already known compromised are dropped from the test window (they
    would be blocked already and inflate card precision). Known means a fraud at least
    ``delay_days`` before the test window, whatever the gap: the labels of the days right before
    it had not arrived when it was scored, so a shorter gap must not drop (and so flatter) more.
    """
    gap_days = delay_days if gap_days is None else gap_days
    ts_s = schema.epoch_seconds(frame[schema.TS])
    last_day = int(ts_s.max() // DAY_S)
    test_start = (last_day - test_days + 1) * DAY_S
    train = ts_s < test_start - gap_days * DAY_S
    test = ts_s >= test_start
    if not train.any() or not test.any():
        raise TrainingDataError(
            f"the dataset spans too few days for a {test_days}-day test window after a {gap_days}-day gap"
        )
    fraud = frame[schema.IS_FRAUD].to_numpy() > 0
    labelled = ts_s < test_start - delay_days * DAY_S
    known = set(frame.loc[labelled & fraud, schema.CARD_TOKEN])
    test &= ~frame[schema.CARD_TOKEN].isin(known).to_numpy()
    return train, test


# The reference keeps at least this share of the training rows (else every training row is used).
MIN_WARM_SHARE = 0.2


def warm_rows(frame: pd.DataFrame, train: np.ndarray, delay_days: int) -> np.ndarray:
    """The training rows the reference profile is built from: those whose feature windows had the
    full history behind them (after the card horizon and the terminal's delay plus longest window).

    A dataset starts with every card and terminal unseen, so its first weeks' counts and sums are
    low; a serving process with its state warm never sees values like those, and a reference that
    mixed them in would report drift on every count feature from the first day (PSI > 2 on a
    30-day count). When too few rows are that late (a short dataset), every training row is used.
    """
    ts_s = schema.epoch_seconds(frame[schema.TS])
    if not len(ts_s):
        return train
    burn_in = max(CARD_HORIZON_S, terminal_horizon_s(delay_days))
    warm = train & (ts_s >= int(ts_s.min()) + burn_in)
    return warm if warm.sum() >= MIN_WARM_SHARE * train.sum() and warm.any() else train


def apply_analyst_labels(frame: pd.DataFrame, labels: Mapping[str, int]) -> tuple[pd.DataFrame, int]:
    """Analysts' verdicts override the dataset's labels for the same txn_id."""
    if not labels:
        return frame, 0
    mapped = frame[schema.TXN_ID].map(labels)
    used = int(mapped.notna().sum())
    out = frame.copy()
    out.loc[mapped.notna(), schema.IS_FRAUD] = mapped[mapped.notna()].astype("int64")
    return out, used


def _search(
    frame: pd.DataFrame,
    features: pd.DataFrame,
    request: Mapping[str, Any],
    algorithm: str,
    params: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    budget = dict(request["search"])

    def on_trial(t: dict[str, Any]) -> None:
        progress("search", 20 + 20 * t["trial"] / t["trials"], **t)

    try:
        result = search_params(
            frame,
            features,
            algorithm=algorithm,
            trials=int(budget["trials"]),
            time_budget_s=float(budget["time_budget_s"]),
            seed=int(request.get("seed", 0)),
            delay_days=int(request.get("delay_days", 7)),
            valid_days=int(request.get("test_days", 7)),
            base_params=params,
            on_trial=on_trial,
            feature_names=tuple(features.columns),
        )
    except ValueError as exc:
        raise TrainingDataError(str(exc)) from exc
    return {**result.lineage(), "budget": budget}


def _read_checkpoint(checkpoints: Path | None, name: str) -> Any:
    path = checkpoints / name if checkpoints else None
    if path is None or not path.is_file():
        return None
    return path.read_bytes() if name.endswith(".frm") else json.loads(path.read_text())


def _write_checkpoint(checkpoints: Path | None, name: str, value: Any) -> None:
    if checkpoints is None:
        return
    checkpoints.mkdir(parents=True, exist_ok=True)
    tmp = checkpoints / f".{name}.tmp"
    tmp.write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode())
    tmp.replace(checkpoints / name)  # atomic: an interruption never leaves half a checkpoint


def run_training(
    frame: pd.DataFrame,
    labels: Mapping[str, int],
    request: Mapping[str, Any],
    *,
    progress: Progress | None = None,
    checkpoints: Path | None = None,
) -> TrainingOutputs:
    """Train and evaluate one model from a dataset frame and the run's ``request``.

    ``request``: ``algorithm``, ``params``, ``seed``, ``delay_days`` (the features' label delay),
    ``gap_days`` (days left out between the training and test windows; default ``delay_days``),
    ``calibration_split`` ("time", the default, or "random": see ``train_model``),
    ``test_days``, ``search``
    (a budget or None), ``thresholds`` (``review`` / ``suspicious``: the reference profile's), and
    ``curves`` (whether to draw evaluation curves). With ``checkpoints`` (SageMaker's
    ``/opt/ml/checkpoints``, kept across a spot interruption) a restarted run reuses the finished
    search and the trained model instead of redoing them.
    """
    report = progress or (lambda *a, **k: None)
    frame, used_labels = apply_analyst_labels(frame, labels)
    delay_days, test_days = int(request.get("delay_days", 7)), int(request.get("test_days", 7))
    # Two knobs: the feature definition's label delay (must equal the online one) and the split's gap.
    gap_days = int(request.get("gap_days", delay_days))
    report("features", 15, rows=len(frame), analyst_labels=used_labels)
    train, test = split_by_time(frame, test_days=test_days, delay_days=delay_days, gap_days=gap_days)
    # The tenant's feature set when the run names one (issue 16), else the built-in features.
    features, feature_set = run_features(frame, request, train, delay_days)
    y = frame[schema.IS_FRAUD].to_numpy()
    if y[train].sum() == 0:
        raise TrainingDataError("the training window holds no fraud label: nothing to learn from")
    algorithm, params = str(request.get("algorithm", "xgboost")), dict(request.get("params") or {})
    search = _read_checkpoint(checkpoints, "search.json")
    if search is None and request.get("search"):
        search = _search(frame[train], features[train], request, algorithm, params, report)
        _write_checkpoint(checkpoints, "search.json", search)
    if search is not None:
        params = dict(search["best_params"])
    artifact = _read_checkpoint(checkpoints, ARTIFACT_NAME)
    if artifact is None:
        report("train", 40, train_rows=int(train.sum()), test_rows=int(test.sum()), algorithm=algorithm)
        model = train_model(
            features[train],
            y[train],
            params=params,
            seed=int(request.get("seed", 0)),
            algorithm=algorithm,
            feature_names=tuple(features.columns),
            # "random" for a retraining after a shift (``train_model``: its calibration transfers).
            calibration_split=str(request.get("calibration_split", "time")),
            # Boosting rounds move the run's percent from 40 to 80 (not a jump to done).
            on_round=lambda done, total: report(
                "train", 40 + 40 * done // max(total, 1), round=done, rounds=total
            ),
        )
        model = with_feature_set(model, feature_set)
        if search is not None:
            model.params["search"] = search  # lineage: the chosen parameters and every trial
        artifact = model.to_bytes()
        _write_checkpoint(checkpoints, ARTIFACT_NAME, artifact)
    report("evaluate", 80)
    scorer = Scorer(TrainedModel.from_bytes(artifact))
    scores = scorer.score_batch(features[test].to_numpy(dtype=np.float32))
    metrics = evaluate(frame[test], scores)
    thresholds = request.get("thresholds") or {}
    warm = warm_rows(frame, train, delay_days)
    # Production scores every card, also those the evaluation drops as known compromised (a score
    # reference without them read an unchanged tenant's score as drifting: PSI 0.13-0.18 vs 0.2).
    window = evaluation_window(frame, test_days)
    window_scores = (
        scores
        if np.array_equal(window, test)
        else scorer.score_batch(features[window].to_numpy(dtype=np.float32))
    )
    profile = build_profile(
        features[warm],
        window_scores,
        y[warm],
        review=float(thresholds.get("review", 0.5)),
        suspicious=float(thresholds.get("suspicious", 0.8)),
    )
    curves: dict[str, bytes] = {}
    if request.get("curves"):
        from fraud_model.curves import curve_pngs  # matplotlib: only when curves are wanted

        curves = curve_pngs(y[test], scores, title=str(request.get("title", "")))
    evaluation = {
        "metrics": {k: (None if v != v else round(float(v), 6)) for k, v in metrics.items()},
        "train_rows": int(train.sum()),
        "test_rows": int(test.sum()),
        "analyst_labels": used_labels,
        "algorithm": algorithm,
        "search": search,
    }
    return TrainingOutputs(artifact=artifact, evaluation=evaluation, profile=profile, curves=curves)


def write_model_dir(outputs: TrainingOutputs, directory: Path) -> None:
    """Lay the outputs out as SageMaker's ``/opt/ml/model`` (it tars that folder as model.tar.gz)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in _members(outputs).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)


def _members(outputs: TrainingOutputs) -> dict[str, bytes]:
    members = {
        ARTIFACT_NAME: outputs.artifact,
        f"{ARTIFACT_NAME}.sha256": f"{outputs.sha256}  {ARTIFACT_NAME}\n".encode(),
        EVALUATION_NAME: json.dumps(outputs.evaluation, sort_keys=True).encode(),
        PROFILE_NAME: json.dumps(outputs.profile, sort_keys=True).encode(),
    }
    members.update({f"{CURVES_DIR}/{name}": data for name, data in outputs.curves.items()})
    return members


def pack_model_archive(artifact: bytes, extra: Mapping[str, bytes] | None = None) -> bytes:
    """A ``model.tar.gz`` holding the artifact, its digest file and ``extra`` members."""
    members = {
        ARTIFACT_NAME: artifact,
        f"{ARTIFACT_NAME}.sha256": f"{sha256(artifact)}  {ARTIFACT_NAME}\n".encode(),
    }
    members.update(extra or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pack_outputs(outputs: TrainingOutputs) -> bytes:
    members = _members(outputs)
    members.pop(ARTIFACT_NAME)
    members.pop(f"{ARTIFACT_NAME}.sha256")
    return pack_model_archive(outputs.artifact, members)


def read_outputs(archive: bytes) -> TrainingOutputs:
    """Read a run's ``model.tar.gz``; ``TrainingDataError`` when it is not one (or its digest is wrong)."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    files[member.name.removeprefix("./")] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise TrainingDataError(f"the run's model.tar.gz is not a readable archive: {exc}") from exc
    missing = [n for n in (ARTIFACT_NAME, EVALUATION_NAME, PROFILE_NAME) if n not in files]
    if missing:
        raise TrainingDataError(f"the run's model.tar.gz lacks {', '.join(missing)}")
    artifact = files[ARTIFACT_NAME]
    stated = files.get(f"{ARTIFACT_NAME}.sha256", b"").decode(errors="replace").split()
    if not stated or stated[0].lower() != sha256(artifact):
        raise TrainingDataError("the artifact in the run's model.tar.gz does not match its .sha256")
    curves = {n.removeprefix(f"{CURVES_DIR}/"): d for n, d in files.items() if n.startswith(f"{CURVES_DIR}/")}
    return TrainingOutputs(
        artifact=artifact,
        evaluation=json.loads(files[EVALUATION_NAME]),
        profile=json.loads(files[PROFILE_NAME]),
        curves=curves,
    )
