"""A training run stores the version's reference profile; the drift route reads it end to end."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from fraud_model.features import FEATURE_NAMES
from fraud_model.pipeline import evaluation_window, split_by_time, warm_rows
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.monitoring.conftest import score
from tests.control_plane.scoring.conftest import sim_requests
from tests.control_plane.training.test_training_flow import (  # noqa: F401  (shared fixtures)
    dataset_csv,
    small_data_gate,
    train,
    upload,
)


def test_a_trained_version_carries_its_profile_and_is_monitored(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    worker: Worker,
    dataset_csv: tuple[pd.DataFrame, bytes],  # noqa: F811
) -> None:
    t: dict[str, Any] = onboard("trained-co", tier="trial", scopes=("app", "sre"))
    ds = upload(client, t, dataset_csv[1])
    run = train(client, worker, t, ds.json()["id"])
    version = run["result"]["model_version"]
    model = client.get(f"/v1/models/{version}", headers=auth(t["admin"])).json()
    profile = model["reference_profile"]
    assert set(profile["features"]) == set(FEATURE_NAMES)
    # Score bins: every transaction of the test window (the evaluation drops known-compromised cards).
    window = int(evaluation_window(dataset_csv[0], 7).sum())
    assert window > model["metrics"]["test_rows"] and sum(profile["score"]["counts"]) == window
    # Feature bins come from the training rows with warm windows (all of them on a short dataset).
    train_rows, _ = split_by_time(dataset_csv[0], test_days=7, delay_days=7)
    assert int(train_rows.sum()) == model["metrics"]["train_rows"]
    warm = warm_rows(dataset_csv[0], train_rows, 7)
    assert sum(profile["features"]["amount"]["counts"]) == int(warm.sum()) == profile["rows"]
    config = client.get("/v1/scoring-config", headers=auth(t["admin"])).json()
    assert profile["thresholds"]["review"] == float(config["review_threshold"])
    assert 0 < profile["label_rate"] < 0.5
    assert abs(sum(profile["decision_rates"].values()) - 1) < 1e-9

    client.post(f"/v1/models/{version}/approve", json={}, headers=auth(t["admin"]))
    assert client.post(f"/v1/models/{version}/promote", headers=auth(t["admin"])).status_code == 200
    frame = dataset_csv[0]
    score(client, t, sim_requests(frame.tail(30), 30))  # under the trial tier's burst
    container.monitor.flush()
    drift = client.get(
        "/v1/monitoring/drift", params={"model_version": version, "window": "day"}, headers=auth(t["sre"])
    )
    assert drift.status_code == 200, drift.text
    assert drift.json()["volume"] == 30
