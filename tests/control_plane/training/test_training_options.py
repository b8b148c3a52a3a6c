"""Training runs with LightGBM and an in-run search: validation, lineage, progress of the trials."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import JobContext, Worker
from control_plane.training.service import resolve_search
from fraud_model.simulator import simulate
from providers.local.model_host import LocalModelHost
from providers.ports import HostedModel
from tests.control_plane.conftest import OnboardFn, auth


@pytest.fixture(autouse=True)
def small_data_gate(container: State) -> None:
    container.templates["trial"]["gate"] = {
        "min_auc_roc": 0.6,
        "min_average_precision": 0.2,
        "min_card_precision_at_100": 0.0,
    }


@pytest.fixture(scope="module")
def dataset_csv() -> bytes:
    frame: pd.DataFrame = simulate(300, 600, 45, start_date="2026-06-01", seed=11)
    return bytes(frame.to_csv(index=False).encode())


def upload(client: TestClient, t: dict[str, Any], data: bytes) -> str:
    ds = client.post(
        "/v1/datasets",
        files={"file": ("june.csv", data, "text/csv")},
        data={"name": "june"},
        headers=auth(t["admin"]),
    )
    assert ds.status_code == 201, ds.text
    return str(ds.json()["id"])


def test_bad_algorithm_or_budget_is_a_422_naming_the_field(
    client: TestClient, onboard: OnboardFn, dataset_csv: bytes
) -> None:
    t = onboard("acme-pay", tier="trial")
    ds = upload(client, t, dataset_csv)

    def start(**extra: Any) -> Any:
        return client.post("/v1/training-runs", json={"dataset_id": ds, **extra}, headers=auth(t["admin"]))

    for body, field in (
        ({"algorithm": "catboost"}, "algorithm"),
        ({"search": {"trials": 0}}, "search.trials"),
        ({"search": {"time_budget_s": -1}}, "search.time_budget_s"),
        ({"search": {"trials": 11}}, "search.trials"),  # the trial tier allows 10
        ({"search": {"time_budget_s": 61}}, "search.time_budget_s"),  # and 60 s
        ({"search": {"folds": 3}}, "search.folds"),
    ):
        r = start(**body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field, (body, r.json())


def test_lightgbm_with_a_search_records_lineage_and_reports_trials(
    client: TestClient,
    onboard: OnboardFn,
    worker: Worker,
    container: State,
    dataset_csv: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = onboard("acme-pay", tier="trial")
    body = {
        "dataset_id": upload(client, t, dataset_csv),
        "algorithm": "lightgbm",
        "params": {"n_estimators": 20, "max_depth": 3},
        "search": {"trials": 3},
    }
    started = client.post("/v1/training-runs", json=body, headers=auth(t["admin"]))
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    # Progress is one row overwritten step by step: record every report the run makes.
    seen: list[dict[str, Any]] = []
    original = JobContext.progress

    def spy(self: JobContext, phase: str, percent: float, **extra: Any) -> None:
        seen.append({"phase": phase, "percent": percent, **extra})
        original(self, phase, percent, **extra)

    monkeypatch.setattr(JobContext, "progress", spy)
    assert worker.run_once(job_id=run_id) == run_id
    run = client.get(f"/v1/training-runs/{run_id}", headers=auth(t["admin"])).json()
    assert run["status"] == "succeeded", run
    trials = [p for p in seen if p["phase"] == "search"]
    assert [p["trial"] for p in trials] == [1, 2, 3] and all(p["trials"] == 3 for p in trials)
    assert [p["percent"] for p in trials] == sorted(p["percent"] for p in trials)
    # Boosting rounds advance the percent between 40 and 80, round by round, up to the last.
    rounds = [p for p in seen if p["phase"] == "train" and "round" in p]
    assert len(rounds) > 2 and rounds[-1]["round"] == rounds[-1]["rounds"]
    assert [p["percent"] for p in rounds] == sorted(p["percent"] for p in rounds)
    assert 40 <= rounds[0]["percent"] < rounds[-1]["percent"] <= 80
    result = run["result"]
    assert result["algorithm"] == "lightgbm" and result["search"]["trials"] == 3
    assert "mlflow" not in result  # tracking is off without FRAUDRAIL_MLFLOW_TRACKING_URI
    model = client.get(f"/v1/models/{result['model_version']}", headers=auth(t["admin"])).json()
    params = model["params"]
    assert params["algorithm"] == "lightgbm"
    search = params["search"]
    # Every trial is in the history or counted as pruned (stopped below the median after a fold).
    assert len(search["history"]) + search["pruned_trials"] == 3
    assert search["budget"] == {"trials": 3, "time_budget_s": 60.0}
    assert {k: params[k] for k in search["best_params"]} == search["best_params"]
    # Validation folds end before the test window opens (train rows only; 7-day delay kept).
    test_start = pd.Timestamp("2026-07-15", tz="UTC") - pd.Timedelta(days=6)
    assert all(pd.Timestamp(f["valid_end"]) <= test_start - pd.Timedelta(days=7) for f in search["folds"])
    # The artifact names its learner, so the model host (sha256-verified load) scores it with LightGBM.
    host = container.providers.model_host
    key = f"tenants/{t['id']}/models/{model['id']}.frm"
    host.deploy(
        HostedModel(tenant_id=t["id"], version_id=model["id"], artifact_key=key, sha256=model["sha256"])
    )
    assert 0.0 < host.invoke(t["id"], model["id"], [[1.0] * 22])[0] < 1.0
    assert isinstance(host, LocalModelHost) and host.scorer(t["id"], model["id"]).algorithm == "lightgbm"


def test_search_budget_defaults_to_the_tier_and_is_capped() -> None:
    tier = {"trials": 30, "time_budget_s": 300}
    assert resolve_search(None, tier) is None
    assert resolve_search({"trials": None, "time_budget_s": None}, tier) == {
        "trials": 30,
        "time_budget_s": 300.0,
    }
    assert resolve_search({"trials": 5, "time_budget_s": 20}, tier) == {"trials": 5, "time_budget_s": 20.0}
