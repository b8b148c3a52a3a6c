"""Monitoring fixtures: a tenant serving a model whose version carries a reference profile."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.registry.orm import ModelVersion
from fraud_model.features import FEATURE_NAMES, batch_features
from fraud_model.profile import build_profile
from fraud_model.scoring import Scorer
from fraud_model.training import TrainedModel
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import (  # noqa: F401  (shared fixtures)
    register_model,
    sim_frame,
    sim_requests,
    trained_artifact,
)


@pytest.fixture(scope="session")
def reference(sim_frame: pd.DataFrame, trained_artifact: bytes) -> dict[str, Any]:  # noqa: F811
    """The profile training would store: the simulated history's features and scores."""
    features = batch_features(sim_frame)[list(FEATURE_NAMES)]
    scores = Scorer(TrainedModel.from_bytes(trained_artifact)).score_batch(features.to_numpy(np.float32))
    return build_profile(features, scores, sim_frame["is_fraud"].to_numpy(), review=0.5, suspicious=0.8)


def register_profiled(
    container: State, tenant_id: str, artifact: bytes, profile: dict[str, Any] | None
) -> str:
    version = register_model(container, tenant_id, artifact)
    with unit_of_work(container.factory) as session:
        mv = session.get(ModelVersion, version)
        assert mv is not None
        mv.reference_profile = profile
    return version


@pytest.fixture
def monitored(
    onboard: OnboardFn,
    client: TestClient,
    container: State,
    trained_artifact: bytes,  # noqa: F811
    reference: dict[str, Any],
) -> dict[str, Any]:
    """An ACTIVE tenant whose PRODUCTION version has a reference profile."""
    t = onboard("watch-co", scopes=("app", "sre", "analyst"))
    t["model"] = register_profiled(container, t["id"], trained_artifact, reference)
    resp = client.post(f"/v1/models/{t['model']}/promote", headers=auth(t["admin"]))
    assert resp.status_code == 200, resp.text
    return t


def score(client: TestClient, t: dict[str, Any], requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for body in requests:
        resp = client.post("/v1/fraud-check", json=body, headers=auth(t["app"]))
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())
    return answers
