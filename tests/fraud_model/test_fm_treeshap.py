"""The vectorised TreeSHAP gives XGBoost's own ``pred_contribs`` for any single row."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from fraud_model.treeshap import LeafPaths, leaf_paths


def _booster(depth: int, rounds: int, seed: int, missing: float) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4000, 8)).astype(np.float32) * rng.choice([1.0, 100.0], size=8).astype(np.float32)
    # An interaction and a repeated feature make paths that split on one feature several times.
    y = ((x[:, 0] > 0) & (x[:, 1] * x[:, 2] > 0) | (np.abs(x[:, 0]) > 1.5)).astype(np.float32)
    x[rng.random(x.shape) < missing] = np.nan
    params = {"max_depth": depth, "eta": 0.3, "objective": "binary:logistic", "nthread": 1, "seed": seed}
    return xgb.train(params, xgb.DMatrix(x, y), rounds), x


@pytest.mark.parametrize(
    ("depth", "rounds", "missing"), [(1, 20, 0.0), (3, 150, 0.0), (3, 80, 0.1), (6, 60, 0.2)]
)
def test_contributions_equal_pred_contribs(depth: int, rounds: int, missing: float) -> None:
    booster, x = _booster(depth, rounds, seed=depth * 7 + rounds, missing=missing)
    rows = x[:150]
    expected = booster.predict(xgb.DMatrix(rows, nthread=1), pred_contribs=True)
    paths = LeafPaths.from_booster_json(booster.save_raw("json"))
    got = np.stack([paths.contributions(r) for r in rows])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * max(1.0, float(np.abs(expected).max())))
    # SHAP's efficiency: the values sum to the margin.
    margins = booster.predict(xgb.DMatrix(rows, nthread=1), output_margin=True)
    np.testing.assert_allclose(got.sum(axis=1), margins, atol=1e-4)


def test_a_path_that_splits_twice_on_one_feature_is_one_player() -> None:
    booster, x = _booster(6, 40, seed=3, missing=0.0)
    paths = LeafPaths.from_booster_json(booster.save_raw("json"))
    owners = paths.slot_steps.sum(axis=1)  # steps per slot, per leaf
    assert (owners > 1).any(), "the fixture must contain a path with a repeated feature"
    expected = booster.predict(xgb.DMatrix(x[:50], nthread=1), pred_contribs=True)
    got = np.stack([paths.contributions(r) for r in x[:50]])
    np.testing.assert_allclose(got, expected, atol=2e-5 * max(1.0, float(np.abs(expected).max())))


def test_leaf_paths_are_built_once_per_booster() -> None:
    booster, _ = _booster(3, 10, seed=1, missing=0.0)
    assert leaf_paths(booster) is leaf_paths(booster)
    other, _ = _booster(3, 10, seed=2, missing=0.0)
    assert leaf_paths(other) is not leaf_paths(booster)
