"""The single-row scorer's tree arrays stored in the artifact at training time: a load is a
memory map of the file (no booster parse), and scores are bit-identical to the learners' own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraud_model import schema as s
from fraud_model.features import batch_features
from fraud_model.scoring import Scorer
from fraud_model.training import ARTIFACT_MAGIC, ArtifactIntegrityError, TrainedModel, sha256, train_model

PARAMS = {"max_depth": 4, "num_boost_round": 40}


@pytest.fixture(scope="module")
def data(sim: Callable[..., pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series]:
    df = sim(300, 600, 40, seed=5)
    return batch_features(df), df[s.IS_FRAUD]


@pytest.fixture(scope="module", params=["xgboost", "lightgbm"])
def model(request: pytest.FixtureRequest, data: tuple[pd.DataFrame, pd.Series]) -> TrainedModel:
    features, labels = data
    return train_model(features, labels, params=PARAMS, seed=0, algorithm=request.param)


def header(blob: bytes) -> dict[str, object]:
    size = int.from_bytes(blob[len(ARTIFACT_MAGIC) : len(ARTIFACT_MAGIC) + 4], "little")
    out: dict[str, object] = json.loads(blob[len(ARTIFACT_MAGIC) + 4 : len(ARTIFACT_MAGIC) + 4 + size])
    return out


def format_1(model: TrainedModel) -> bytes:
    """The artifact as written before the tree arrays were stored: header, then the booster."""
    raw = json.dumps({**model.header(), "format": 1}, sort_keys=True, separators=(",", ":")).encode()
    return ARTIFACT_MAGIC + len(raw).to_bytes(4, "little") + raw + model.booster_ubj


def rows(model: TrainedModel, data: tuple[pd.DataFrame, pd.Series]) -> np.ndarray:
    x = data[0][list(model.feature_names)].to_numpy(dtype=np.float32)[:400].copy()
    x[::9, 2] = np.nan  # missing values take each split's default branch
    return x


def mapped_base(array: np.ndarray) -> object:
    base: object = array
    while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
        base = base.base
    return base


def test_a_load_memory_maps_the_stored_arrays_and_parses_no_booster(
    model: TrainedModel, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    blob = model.to_bytes()
    assert header(blob)["format"] == 2 and "compiled" in header(blob)
    path = tmp_path / "model.frm"
    path.write_bytes(blob)
    scorer = Scorer.from_file(str(path), expected_sha256=sha256(blob))
    for name in ("feature2", "threshold2", "children2", "leaf_value", "roots"):
        array = getattr(scorer.trees, name)
        assert isinstance(mapped_base(array), np.memmap), name
        assert not array.flags.writeable
    x = rows(model, data)
    scorer.score_one(x[0])
    assert "booster" not in vars(scorer)  # the single-row path never built the learner's booster


def test_scores_are_bit_identical_to_the_learner_and_to_a_format_1_artifact(
    model: TrainedModel, data: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    path = tmp_path / "model.frm"
    path.write_bytes(model.to_bytes())
    mapped = Scorer.from_file(str(path))
    built = Scorer.from_bytes(format_1(model))  # arrays built from the booster, as before
    assert built.model.compiled is None
    x = rows(model, data)
    walked = np.array([mapped.margin_one(r) for r in x])
    assert np.array_equal(walked, np.array([built.margin_one(r) for r in x]))
    assert [mapped.score_one(r) for r in x] == [built.score_one(r) for r in x]
    if model.algorithm == "lightgbm":
        own = mapped.booster.predict(x.astype(np.float64), raw_score=True)
    else:
        own = mapped.booster.predict(xgb.DMatrix(x, nthread=1), output_margin=True)
    assert np.array_equal(walked.astype(own.dtype), own)


def test_tampered_tree_arrays_are_refused(model: TrainedModel, tmp_path: Path) -> None:
    blob = bytearray(model.to_bytes())
    digest = sha256(bytes(blob))
    start = len(blob) - len(model.booster_ubj) - 8  # inside the stored arrays, before the booster
    blob[start] ^= 0x01
    with pytest.raises(ArtifactIntegrityError, match="tree arrays"):
        TrainedModel.from_bytes(bytes(blob))
    path = tmp_path / "model.frm"
    path.write_bytes(bytes(blob))
    with pytest.raises(ArtifactIntegrityError, match="does not match expected"):
        Scorer.from_file(str(path), expected_sha256=digest)
    path.write_bytes(b"")
    with pytest.raises(ArtifactIntegrityError):
        Scorer.from_file(str(path))


def test_the_artifact_stays_reproducible_and_round_trips(
    model: TrainedModel, data: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, labels = data
    again = train_model(features, labels, params=PARAMS, seed=0, algorithm=model.algorithm)
    assert again.to_bytes() == model.to_bytes()
    back = TrainedModel.from_bytes(model.to_bytes())
    assert back == model and back.to_bytes() == model.to_bytes()


def test_shallow_trees_score_through_leaf_tables_bit_identically(
    data: tuple[pd.DataFrame, pd.Series],
) -> None:
    """Depth <= 3 (the default): each tree's comparisons index a precomputed leaf; same margins."""
    features, labels = data
    shallow = train_model(features, labels, params={"max_depth": 3, "num_boost_round": 60}, seed=3)
    scorer = Scorer.from_bytes(shallow.to_bytes())
    assert scorer.trees._leaf_table is not None
    x = rows(shallow, data)
    rng = np.random.default_rng(7)
    noisy = (x * rng.uniform(0.5, 2.0, size=x.shape)).astype(np.float32)  # off the split points too
    for matrix in (x, noisy):
        walked = np.array([scorer.margin_one(r) for r in matrix], dtype=np.float32)
        own = scorer.booster.predict(xgb.DMatrix(matrix, nthread=1), output_margin=True)
        assert np.array_equal(walked, own)
