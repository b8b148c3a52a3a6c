"""Scoring fixtures: one small model trained per session, tenants serving it in PRODUCTION."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.registry.orm import ModelVersion
from fraud_model.features import FEATURE_SET_VERSION, batch_features
from fraud_model.simulator import simulate
from fraud_model.training import sha256, train_model
from tests.control_plane.conftest import OnboardFn, auth


@pytest.fixture(scope="session")
def sim_frame() -> pd.DataFrame:
    return simulate(200, 400, 50, seed=7)


@pytest.fixture(scope="session")
def trained_artifact(sim_frame: pd.DataFrame) -> bytes:
    features = batch_features(sim_frame)
    model = train_model(
        features, sim_frame["is_fraud"], params={"num_boost_round": 30, "max_depth": 3}, seed=1
    )
    return model.to_bytes()


def register_model(container: State, tenant_id: str, artifact: bytes, *, stage: str = "APPROVED") -> str:
    """A model version as training would leave it (artifact stored, gate passed), then approved."""
    version_id = (
        f"mv_{tenant_id[-12:]}{len(container.providers.object_store.list(f'tenants/{tenant_id}/models/'))}"
    )
    key = f"tenants/{tenant_id}/models/{version_id}.frm"
    container.providers.object_store.put(key, artifact)
    with unit_of_work(container.factory) as s:
        s.add(
            ModelVersion(
                id=version_id,
                tenant_id=tenant_id,
                stage=stage,
                artifact_key=key,
                sha256=sha256(artifact),
                feature_set_version=FEATURE_SET_VERSION,
                code_version="test",
                params={},
                metrics={"auc_roc": 0.9},
                gate={"passed": True},
                analyst_labels=0,
            )
        )
    return version_id


LiveFn = Callable[..., dict[str, Any]]


@pytest.fixture
def live_tenant(onboard: OnboardFn, client: TestClient, container: State, trained_artifact: bytes) -> LiveFn:
    """Factory: an ACTIVE tenant with a PRODUCTION model and an app key."""

    def _live(slug: str = "acme-pay") -> dict[str, Any]:
        t = onboard(slug, scopes=("app", "sre", "analyst"))
        version = register_model(container, t["id"], trained_artifact)
        resp = client.post(f"/v1/models/{version}/promote", headers=auth(t["admin"]))
        assert resp.status_code == 200, resp.text
        t["model"] = version
        return t

    return _live


def txn(txn_id: str = "tx_1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "txn_id": txn_id,
        "card_token": "card_42",
        "terminal_id": "term_7",
        "timestamp": "2026-11-20T10:15:00+00:00",
        "amount": "42.50",
        "currency": "USD",
    }
    body.update(overrides)
    return body


def sim_requests(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    rows = frame.head(n)
    return [
        {
            "txn_id": r.txn_id,
            "card_token": r.card_token,
            "terminal_id": r.terminal_id,
            "timestamp": pd.Timestamp(str(r.ts)).isoformat(),
            "amount": f"{r.amount:.2f}",
            "currency": "EUR",
        }
        for r in rows.itertuples()
    ]
