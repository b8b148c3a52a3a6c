"""Training reports its boosting rounds as it goes, and reporting never changes the model."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.features import batch_features
from fraud_model.training import ROUND_REPORTS, train_model


@pytest.fixture(scope="module")
def data(sim: Callable[..., pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series]:
    df = sim(200, 400, 30, seed=3)
    return batch_features(df), df[s.IS_FRAUD]


@pytest.mark.parametrize(("algorithm", "rounds"), [("xgboost", 40), ("xgboost", 300), ("lightgbm", 30)])
def test_rounds_are_reported_in_order_up_to_the_total_and_the_artifact_is_unchanged(
    data: tuple[pd.DataFrame, pd.Series], algorithm: str, rounds: int
) -> None:
    features, labels = data
    params = {"max_depth": 3, "num_boost_round": rounds}
    heard: list[tuple[int, int]] = []
    model = train_model(
        features, labels, params=params, algorithm=algorithm, on_round=lambda d, t: heard.append((d, t))
    )
    total = 2 * rounds  # the calibration fit, then the refit on every row
    assert heard and all(t == total for _, t in heard)
    done = [d for d, _ in heard]
    assert done == sorted(done) and done[-1] == total and len(set(done)) == len(done)
    assert len(heard) <= ROUND_REPORTS + 1
    assert done[0] <= -(-total // ROUND_REPORTS)  # the first report comes early, not at the end
    quiet = train_model(features, labels, params=params, algorithm=algorithm)
    assert quiet.to_bytes() == model.to_bytes()
    single = train_model(
        features,
        labels,
        params=params,
        algorithm=algorithm,
        refit_full=False,
        on_round=lambda d, t: heard.append((d, t)),
    )
    assert heard[-1] == (rounds, rounds) and single.sha256
