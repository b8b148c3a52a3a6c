from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from fraud_model import schema as s
from fraud_model.calibration import PlattCalibrator, fit_platt
from fraud_model.features import FEATURE_NAMES, FEATURE_SET_VERSION, batch_features
from fraud_model.reasons import reason_code, reason_codes
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
    return train_model(features, labels, params=PARAMS, seed=0)


def test_training_is_reproducible_to_the_byte(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, labels = data
    again = train_model(features, labels, params=PARAMS, seed=0)
    assert again.to_bytes() == model.to_bytes()
    assert again.sha256 == model.sha256 == sha256(model.to_bytes())
    other_seed = train_model(features, labels, params={**PARAMS, "subsample": 0.8}, seed=1)
    assert other_seed.sha256 != model.sha256


def test_artifact_roundtrip_is_self_describing(model: TrainedModel) -> None:
    blob = model.to_bytes()
    assert blob.startswith(ARTIFACT_MAGIC)
    back = TrainedModel.from_bytes(blob)
    assert back == model
    assert back.feature_names == FEATURE_NAMES
    assert back.feature_set_version == FEATURE_SET_VERSION
    assert back.summary["rows"] == len(back.reference_medians) * 0 + model.summary["rows"]
    assert back.calibrator.a > 0


def test_tampered_artifact_is_refused(model: TrainedModel) -> None:
    blob = bytearray(model.to_bytes())
    digest = sha256(bytes(blob))
    assert load_verified(bytes(blob), digest) == model
    blob[-10] ^= 0x01  # one bit inside the booster
    with pytest.raises(ArtifactIntegrityError, match="does not match expected"):
        load_verified(bytes(blob), digest)
    # Even without the registry's digest, the header's booster digest catches it.
    with pytest.raises(ArtifactIntegrityError, match="booster bytes"):
        TrainedModel.from_bytes(bytes(blob))
    with pytest.raises(ArtifactIntegrityError):
        Scorer.from_bytes(bytes(blob), expected_sha256=digest)
    with pytest.raises(ArtifactIntegrityError, match="not a Fraudrail"):
        TrainedModel.from_bytes(b"garbage")


def test_scores_are_calibrated_probabilities_and_rank_frauds_high(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, labels = data
    scorer = Scorer.from_bytes(model.to_bytes(), expected_sha256=model.sha256)
    p = scorer.score_batch(features.to_numpy())
    assert ((p > 0) & (p < 1)).all()
    y = labels.to_numpy()
    assert p[y == 1].mean() > 5 * p[y == 0].mean()
    # Calibrated on its own later slice: the mean score is close to the fraud rate there.
    tail = slice(int(len(y) * 0.8), None)
    assert abs(p[tail].mean() - y[tail].mean()) < 0.5 * y[tail].mean()


def test_single_row_path_equals_xgboost_exactly(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, _ = data
    scorer = Scorer(model)
    x = features.to_numpy()[:400]
    walked = np.array([scorer.margin_one(row) for row in x], dtype=np.float32)
    reference = model.booster().predict(xgb.DMatrix(x.astype(np.float32)), output_margin=True)
    assert np.array_equal(walked, reference)
    assert np.array_equal(np.array([scorer.score_one(row) for row in x]), scorer.score_batch(x))
    # Missing values follow each split's default direction, as in XGBoost.
    holes = x.copy()
    holes[:, [0, 5, 12]] = np.nan
    walked_nan = np.array([scorer.margin_one(row) for row in holes], dtype=np.float32)
    ref_nan = model.booster().predict(xgb.DMatrix(holes.astype(np.float32)), output_margin=True)
    assert np.array_equal(walked_nan, ref_nan)
    with pytest.raises(ValueError):
        scorer.score_one(x[0][:-1])


def test_explanations_sum_to_the_margin_and_give_reason_codes(
    data: tuple[pd.DataFrame, pd.Series], model: TrainedModel
) -> None:
    features, labels = data
    scorer = Scorer(model)
    fraud_row = features.to_numpy()[labels.to_numpy() == 1][0]
    contrib = scorer.contributions(fraud_row)
    assert contrib.sum() == pytest.approx(scorer.margin_one(fraud_row), abs=1e-4)
    top = scorer.explain_one(fraud_row, top_k=3)
    assert len(top) == 3 and [c for _, c in top] == sorted((c for _, c in top), reverse=True)
    assert all(name in FEATURE_NAMES for name, _ in top)
    reasons = scorer.reasons(fraud_row, top_k=3)
    assert reasons and all(r["contribution"] > 0 for r in reasons)
    first = reasons[0]
    assert first["code"].startswith(first["feature"].upper())
    assert set(first) == {"code", "feature", "text", "value", "contribution"}


def test_reason_code_directions() -> None:
    assert reason_code("card_nb_tx_1d", 9.0, 2.0) == "CARD_NB_TX_1D_HIGH"
    assert reason_code("card_secs_since_prev", 3.0, 40_000.0) == "CARD_SECS_SINCE_PREV_LOW"
    assert reason_code("during_night", 1.0, 0.0) == "DURING_NIGHT"
    out = reason_codes(
        [("amount", 1.2), ("card_nb_tx_1d", -0.3)], {"amount": 900.0, "card_nb_tx_1d": 1.0}, {"amount": 40.0}
    )
    assert [r["code"] for r in out] == ["AMOUNT_HIGH"]
    assert "900" in out[0]["text"] and "40" in out[0]["text"]


def test_platt_fit_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 2, 20_000)
    truth = PlattCalibrator(a=0.7, b=-1.5)
    y = (rng.random(20_000) < truth.apply(margin)).astype(int)
    fitted = fit_platt(margin, y)
    assert fitted.a == pytest.approx(0.7, abs=0.08)
    assert fitted.b == pytest.approx(-1.5, abs=0.1)
    assert fit_platt(margin, np.zeros(20_000)) == PlattCalibrator()


def test_platt_fit_does_not_overshoot_on_margins_far_from_their_calibration() -> None:
    # Margins on a scale 20x too wide, centred far from 0: at the starting point (a=1, b=0) nearly
    # every probability is saturated, and an undamped Newton step ran off to |a| ~ 1e9 (scores all
    # 0 or 1: a retrained challenger's ranking collapsed). The line search keeps each step downhill.
    rng = np.random.default_rng(0)
    margin = rng.normal(-20, 30, 5_000)
    truth = PlattCalibrator(a=0.05, b=0.5)
    y = (rng.random(5_000) < truth.apply(margin)).astype(int)
    fitted = fit_platt(margin, y)
    assert fitted.a == pytest.approx(0.05, abs=0.01)
    assert fitted.b == pytest.approx(0.5, abs=0.2)
    scores = fitted.apply(margin)
    assert len(np.unique(scores)) == len(np.unique(margin))  # the ranking survives calibration


def test_bad_inputs_are_rejected(data: tuple[pd.DataFrame, pd.Series]) -> None:
    features, labels = data
    with pytest.raises(ValueError, match="lacks"):
        train_model(features.drop(columns=["amount"]), labels)
    with pytest.raises(ValueError, match="length"):
        train_model(features, labels.iloc[:-1])
    with pytest.raises(ValueError, match="calibration_fraction"):
        train_model(features, labels, calibration_fraction=1.0)


def test_header_is_plain_json(model: TrainedModel) -> None:
    blob = model.to_bytes()
    size = int.from_bytes(blob[len(ARTIFACT_MAGIC) : len(ARTIFACT_MAGIC) + 4], "little")
    head = json.loads(blob[len(ARTIFACT_MAGIC) + 4 : len(ARTIFACT_MAGIC) + 4 + size])
    assert head["feature_names"] == list(FEATURE_NAMES)
    assert head["calibrator"]["kind"] == "platt"
    assert head["booster_sha256"] == sha256(model.booster_ubj)


def test_a_random_calibration_share_keeps_a_shifted_refit_confident() -> None:
    # The newest fifth holds a fraud pattern (feature 1 set) the older rows never had. Calibrated
    # on the newest rows, the first fit's margins say little about it and Platt shrinks the scale:
    # the refit, which learnt the pattern, under-scores it. A random share transfers.
    rng = np.random.default_rng(5)
    n = 8_000
    x = np.column_stack([rng.normal(size=n), np.zeros(n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x[:, 0] - 3)))).astype(int)
    new = np.arange(n) >= n * 4 // 5  # exactly the time split's calibration rows
    pattern = new & (rng.random(n) < 0.1)
    x[pattern, 1], y[pattern] = 1.0, 1
    names = ("f0", "f1")
    params = {"num_boost_round": 30, "max_depth": 2, "eta": 0.3}
    by_time = train_model(x, y, params=params, feature_names=names)
    by_random = train_model(x, y, params=params, feature_names=names, calibration_split="random")
    assert by_random.summary["calibration_split"] == "random"
    assert by_random.summary["calibration_rows"] == by_time.summary["calibration_rows"]
    on_time, on_random = (
        float(Scorer(m).score_batch(x[pattern].astype(np.float32)).mean()) for m in (by_time, by_random)
    )
    # Every pattern row is fraud: the shortfall of the mean score is the calibration error.
    assert 1 - on_random < (1 - on_time) / 2, (on_random, on_time)
    again = train_model(x, y, params=params, feature_names=names, calibration_split="random")
    assert again.to_bytes() == by_random.to_bytes()
    with pytest.raises(ValueError, match="calibration_split"):
        train_model(x, y, params=params, feature_names=names, calibration_split="latest")
