"""LightGBM beside XGBoost: same artifact, calibration, integrity, reasons; exact single-row walk."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.features import FEATURE_NAMES, batch_features
from fraud_model.lgbm import LgbTreeArrays, lgbm_params
from fraud_model.scoring import Scorer
from fraud_model.training import (
    ARTIFACT_MAGIC,
    ArtifactIntegrityError,
    TrainedModel,
    load_verified,
    sha256,
    train_model,
)

PARAMS = {"max_depth": 4, "num_boost_round": 60}


@pytest.fixture(scope="module")
def data(sim: Callable[..., pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series]:
    df = sim(400, 800, 45, seed=2)
    return batch_features(df), df[s.IS_FRAUD]


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, pd.Series]) -> TrainedModel:
    features, labels = data
    return train_model(features, labels, params=PARAMS, seed=0, algorithm="lightgbm")


def header(blob: bytes) -> dict[str, object]:
    size = int.from_bytes(blob[len(ARTIFACT_MAGIC) : len(ARTIFACT_MAGIC) + 4], "little")
    out: dict[str, object] = json.loads(blob[len(ARTIFACT_MAGIC) + 4 : len(ARTIFACT_MAGIC) + 4 + size])
    return out


def test_the_artifact_names_its_learner_and_is_reproducible(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, labels = data
    again = train_model(features, labels, params=PARAMS, seed=0, algorithm="lightgbm")
    assert again.to_bytes() == model.to_bytes()
    head = header(model.to_bytes())
    assert head["algorithm"] == "lightgbm" and head["kind"] == "lightgbm-binary+platt"
    assert "lightgbm_version" in head and model.params["algorithm"] == "lightgbm"
    back = TrainedModel.from_bytes(model.to_bytes())
    assert back == model and back.algorithm == "lightgbm"
    xgb_model = train_model(features, labels, params=PARAMS, seed=0)
    assert header(xgb_model.to_bytes())["algorithm"] == "xgboost"
    assert Scorer(xgb_model).algorithm == "xgboost" and Scorer(back).algorithm == "lightgbm"


def test_an_artifact_without_algorithm_is_read_as_xgboost(data: tuple[pd.DataFrame, pd.Series]) -> None:
    """Artifacts written before LightGBM existed carry no algorithm: they are XGBoost."""
    features, labels = data
    model = train_model(features, labels, params={"num_boost_round": 5}, seed=0)
    head = model.header()
    del head["algorithm"]
    raw = json.dumps(head, sort_keys=True, separators=(",", ":")).encode()
    old = ARTIFACT_MAGIC + len(raw).to_bytes(4, "little") + raw + model.booster_ubj
    assert TrainedModel.from_bytes(old).algorithm == "xgboost"
    head["algorithm"] = "catboost"
    raw = json.dumps(head).encode()
    with pytest.raises(ArtifactIntegrityError, match="unknown algorithm"):
        TrainedModel.from_bytes(ARTIFACT_MAGIC + len(raw).to_bytes(4, "little") + raw + model.booster_ubj)


def test_tampered_lightgbm_artifact_is_refused(model: TrainedModel) -> None:
    blob = bytearray(model.to_bytes())
    digest = sha256(bytes(blob))
    assert load_verified(bytes(blob), digest) == model
    blob[-40] ^= 0x01
    with pytest.raises(ArtifactIntegrityError, match="does not match expected"):
        Scorer.from_bytes(bytes(blob), expected_sha256=digest)
    with pytest.raises(ArtifactIntegrityError, match="booster bytes"):
        TrainedModel.from_bytes(bytes(blob))


def test_single_row_walk_equals_lightgbm_exactly(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, _ = data
    scorer = Scorer(model)
    x = features.to_numpy(dtype=np.float32)[-400:]
    walked = np.array([scorer.margin_one(row) for row in x])
    assert np.array_equal(walked, scorer.booster.predict(x, raw_score=True))
    assert np.array_equal(np.array([scorer.score_one(row) for row in x]), scorer.score_batch(x))
    holes = x.copy()
    holes[np.random.default_rng(0).random(holes.shape) < 0.2] = np.nan
    walked_nan = np.array([scorer.margin_one(row) for row in holes])
    assert np.array_equal(walked_nan, scorer.booster.predict(holes, raw_score=True))


def test_missing_value_splits_follow_lightgbm(data: tuple[pd.DataFrame, pd.Series]) -> None:
    """NaN seen in training gives NaN-default splits; zero_as_missing gives zero-default ones."""
    features, labels = data
    x = features.to_numpy(dtype=np.float32).copy()
    rng = np.random.default_rng(1)
    x[rng.random(x.shape) < 0.1] = np.nan
    for extra in ({}, {"zero_as_missing": True}):
        model = train_model(x, labels, params={**PARAMS, **extra}, seed=0, algorithm="lightgbm")
        scorer = Scorer(model)
        probe = x[:300].copy()
        probe[rng.random(probe.shape) < 0.1] = 0.0
        walked = np.array([scorer.margin_one(row) for row in probe])
        assert np.array_equal(walked, scorer.booster.predict(probe, raw_score=True))
    assert isinstance(scorer.trees, LgbTreeArrays) and scorer.trees.has_zero_missing


def test_reasons_use_lightgbm_contributions(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, labels = data
    scorer = Scorer(model)
    fraud_row = features.to_numpy()[labels.to_numpy() == 1][0]
    contrib = scorer.contributions(fraud_row)
    assert contrib.shape == (len(FEATURE_NAMES) + 1,)
    assert contrib.sum() == pytest.approx(scorer.margin_one(fraud_row), abs=1e-4)
    many = scorer.contributions_batch(features.to_numpy()[:5])
    assert many.shape == (5, len(FEATURE_NAMES) + 1)
    reasons = scorer.reasons(fraud_row, top_k=3)
    assert reasons and all(r["contribution"] > 0 for r in reasons)


def test_calibrated_scores_rank_frauds_high(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, labels = data
    p = Scorer(model).score_batch(features.to_numpy())
    y = labels.to_numpy()
    assert ((p > 0) & (p < 1)).all() and model.calibrator.a > 0
    assert p[y == 1].mean() > 5 * p[y == 0].mean()


def test_shared_parameter_names_map_to_lightgbm() -> None:
    params, rounds = lgbm_params(
        {"max_depth": 3, "eta": 0.1, "num_boost_round": 50, "subsample": 0.8, "tree_method": "hist"}, 7, 1
    )
    assert rounds == 50 and params["learning_rate"] == 0.1 and params["num_leaves"] == 8
    assert params["bagging_fraction"] == 0.8 and params["bagging_freq"] == 1
    assert params["seed"] == 7 and "tree_method" not in params and "eta" not in params
    with pytest.raises(ValueError, match="algorithm"):
        train_model(np.zeros((4, len(FEATURE_NAMES))), np.zeros(4), algorithm="catboost")
