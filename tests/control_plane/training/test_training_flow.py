"""Upload → validate → train (durable job with progress) → gate → approve → promote → serve."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from control_plane.review import service as review
from control_plane.review.contract import example_payload
from fraud_model.simulator import simulate
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import register_model, sim_frame, trained_artifact  # noqa: F401


@pytest.fixture(autouse=True)
def small_data_gate(container: State) -> None:
    """Tests train on a few weeks of 400 simulated cards: hold them to a gate that size can meet."""
    container.templates["trial"]["gate"] = {
        "min_auc_roc": 0.6,
        "min_average_precision": 0.2,
        "min_card_precision_at_100": 0.0,
    }


@pytest.fixture(scope="module")
def dataset_csv() -> tuple[pd.DataFrame, bytes]:
    frame = simulate(400, 800, 60, start_date="2026-06-01", seed=11)
    return frame, frame.to_csv(index=False).encode()


def upload(client: TestClient, t: dict[str, Any], data: bytes, name: str = "june") -> Any:
    return client.post(
        "/v1/datasets",
        files={"file": (f"{name}.csv", data, "text/csv")},
        data={"name": name},
        headers=auth(t["admin"]),
    )


def train(
    client: TestClient, worker: Worker, t: dict[str, Any], dataset_id: str, **extra: Any
) -> dict[str, Any]:
    body = {"dataset_id": dataset_id, "params": {"n_estimators": 40, "max_depth": 4}, **extra}
    started = client.post("/v1/training-runs", json=body, headers=auth(t["admin"]))
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert worker.run_once(job_id=run_id) == run_id
    run: dict[str, Any] = client.get(f"/v1/training-runs/{run_id}", headers=auth(t["admin"])).json()
    assert run["status"] == "succeeded", run
    return run


def test_upload_train_approve_promote_and_serve(
    client: TestClient, onboard: OnboardFn, worker: Worker, dataset_csv: tuple[pd.DataFrame, bytes]
) -> None:
    t = onboard("acme-pay", tier="trial", scopes=("app",))
    ds = upload(client, t, dataset_csv[1])
    assert ds.status_code == 201, ds.text
    body = ds.json()
    assert body["rows"] == len(dataset_csv[0]) and body["report"]["ok"] is True
    assert 0 < body["label_rate"] < 0.5

    run = train(client, worker, t, body["id"])
    assert run["progress"]["phase"] == "done" and run["progress"]["percent"] == 100.0
    result = run["result"]
    assert result["stage"] == "CANDIDATE", result
    assert result["metrics"]["auc_roc"] > 0.6 and result["gate"]["passed"] is True
    assert result["gate"]["minimums"]["auc_roc"] == 0.6
    model = client.get(f"/v1/models/{result['model_version']}", headers=auth(t["admin"])).json()
    assert model["dataset_sha256"] == body["sha256"] and model["feature_set_version"]
    assert {
        "auc_roc",
        "average_precision",
        "card_precision_at_100",
        "recall_at_1pct_fpr",
        "brier",
        "ece",
    } <= set(model["metrics"])
    assert model["params"]["seed"] == 0 and model["code_version"]

    assert (
        client.post(f"/v1/models/{model['id']}/promote", headers=auth(t["admin"])).status_code == 409
    )  # refused by the deployment policy: not APPROVED
    approved = client.post(
        f"/v1/models/{model['id']}/approve", json={"note": "checked the report"}, headers=auth(t["admin"])
    )
    assert approved.json()["stage"] == "APPROVED" and approved.json()["approved_by"].startswith("key:")
    assert (
        client.post(f"/v1/models/{model['id']}/promote", headers=auth(t["admin"])).json()["stage"]
        == "PRODUCTION"
    )
    row = dataset_csv[0].iloc[-1]
    check = client.post(
        "/v1/fraud-check",
        json={
            "txn_id": "live_1",
            "card_token": row.card_token,
            "terminal_id": row.terminal_id,
            "timestamp": row.ts.isoformat(),
            "amount": f"{row.amount:.2f}",
            "currency": "EUR",
        },
        headers=auth(t["app"]),
    )
    assert check.status_code == 200 and check.json()["model_version"] == model["id"]


def test_same_inputs_train_the_same_model(
    client: TestClient, onboard: OnboardFn, worker: Worker, dataset_csv: tuple[pd.DataFrame, bytes]
) -> None:
    t = onboard("acme-pay", tier="trial")
    ds = upload(client, t, dataset_csv[1]).json()
    first, second = train(client, worker, t, ds["id"]), train(client, worker, t, ds["id"])
    a = client.get(f"/v1/models/{first['result']['model_version']}", headers=auth(t["admin"])).json()
    b = client.get(f"/v1/models/{second['result']['model_version']}", headers=auth(t["admin"])).json()
    assert a["id"] != b["id"] and a["sha256"] == b["sha256"]


def test_a_model_below_the_gate_is_rejected_and_never_deployable(
    client: TestClient, onboard: OnboardFn, worker: Worker, dataset_csv: tuple[pd.DataFrame, bytes]
) -> None:
    t = onboard("acme-pay", tier="trial")
    ds = upload(client, t, dataset_csv[1]).json()
    run = train(client, worker, t, ds["id"], gate={"min_auc_roc": 0.9999})
    assert run["result"]["stage"] == "REJECTED"
    failures = run["result"]["gate"]["failures"]
    assert failures[0]["metric"] == "auc_roc" and failures[0]["minimum"] == 0.9999
    rejected = client.post(f"/v1/models/{run['result']['model_version']}/approve", headers=auth(t["admin"]))
    assert rejected.status_code == 409
    lowered = client.post(
        "/v1/training-runs",
        json={"dataset_id": ds["id"], "gate": {"min_auc_roc": 2}},
        headers=auth(t["admin"]),
    )
    assert lowered.status_code == 422 and lowered.json()["field"] == "gate.min_auc_roc"


def test_analyst_verdicts_become_labels_the_next_run_counts(
    client: TestClient,
    onboard: OnboardFn,
    worker: Worker,
    container: State,
    dataset_csv: tuple[pd.DataFrame, bytes],
) -> None:
    t = onboard("acme-pay", tier="trial", scopes=("analyst",))
    frame = dataset_csv[0]
    fraud_txn = frame[frame["is_fraud"] == 1].iloc[0]
    ds = upload(client, t, dataset_csv[1]).json()
    with container.factory() as session:
        item = review.ingest(
            session,
            t["id"],
            example_payload(
                flagged_id="flg_label",
                txn_id=fraud_txn.txn_id,
                transaction={**example_payload()["transaction"], "txn_id": fraud_txn.txn_id},
            ),
        )
        session.commit()
        review_id = item.id
    client.post(f"/v1/reviews/{review_id}/claim", headers=auth(t["analyst"]))
    verdict = client.post(
        f"/v1/reviews/{review_id}/verdict",
        json={"verdict": "legit", "note": "customer confirmed"},
        headers=auth(t["analyst"]),
    )
    assert verdict.status_code == 200, verdict.text
    run = train(client, worker, t, ds["id"])
    assert run["result"]["analyst_labels"] == 1
    model = client.get(f"/v1/models/{run['result']['model_version']}", headers=auth(t["admin"])).json()
    assert model["analyst_labels"] == 1


def test_a_bad_file_is_refused_with_the_failing_checks_and_nothing_is_stored(
    client: TestClient, onboard: OnboardFn, container: State, dataset_csv: tuple[pd.DataFrame, bytes]
) -> None:
    t = onboard("acme-pay", tier="trial")
    frame = dataset_csv[0].head(200).copy()
    frame.loc[5, "txn_id"] = frame.loc[4, "txn_id"]
    frame.loc[7, "amount"] = -3.0
    resp = upload(client, t, frame.to_csv(index=False).encode(), name="broken")
    assert resp.status_code == 422
    problem = resp.json()
    names = {c["name"] for c in problem["failed_checks"]}
    assert len(names) >= 2 and problem["field"] == "file"
    assert any(c["example_rows"] for c in problem["failed_checks"])
    assert client.get("/v1/datasets", headers=auth(t["admin"])).json() == []
    assert container.providers.object_store.list(f"tenants/{t['id']}/datasets/") == []
    garbage = upload(client, t, b"\x00\x01not a csv at all", name="garbage")
    assert garbage.status_code == 422
    wrong_type = client.post(
        "/v1/datasets",
        files={"file": ("x.txt", b"a,b", "text/plain")},
        data={"name": "x"},
        headers=auth(t["admin"]),
    )
    assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "format"


def test_the_models_hosted_quota_refuses_a_run_until_a_version_is_archived(
    client: TestClient,
    onboard: OnboardFn,
    container: State,
    trained_artifact: bytes,  # noqa: F811  (the shared fixture)
    dataset_csv: tuple[pd.DataFrame, bytes],
) -> None:
    t = onboard("quota-co", tier="trial", scopes=("analyst",))  # trial: models_hosted 2
    dataset_id = upload(client, t, dataset_csv[1]).json()["id"]
    production = register_model(container, t["id"], trained_artifact)
    assert client.post(f"/v1/models/{production}/promote", headers=auth(t["admin"])).status_code == 200
    candidate = register_model(container, t["id"], trained_artifact, stage="CANDIDATE")
    register_model(container, t["id"], trained_artifact, stage="REJECTED")  # never counts

    body = {"dataset_id": dataset_id, "params": {"n_estimators": 40, "max_depth": 4}}
    refused = client.post("/v1/training-runs", json=body, headers=auth(t["admin"]))
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["field"] == "models_hosted" and (problem["live_models"], problem["models_hosted"]) == (
        2,
        2,
    )
    assert "Archive one first" in problem["detail"]

    # Production is archived only by promoting its replacement; an analyst cannot archive.
    kept = client.post(f"/v1/models/{production}/archive", headers=auth(t["admin"]))
    assert kept.status_code == 409 and kept.json()["field"] == "model_id"
    assert client.post(f"/v1/models/{candidate}/archive", headers=auth(t["analyst"])).status_code == 403

    archived = client.post(
        f"/v1/models/{candidate}/archive", json={"note": "superseded"}, headers=auth(t["admin"])
    )
    assert archived.status_code == 200 and archived.json()["stage"] == "ARCHIVED"
    audit = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    assert any(e["action"] == "model.archived" and e["subject"] == candidate for e in audit)
    again = client.post(f"/v1/models/{candidate}/archive", headers=auth(t["admin"]))
    assert again.status_code == 409  # ARCHIVED is final

    started = client.post("/v1/training-runs", json=body, headers=auth(t["admin"]))
    assert started.status_code == 202, started.text
    # The run in flight holds the freed slot: a second one is refused (concurrency 1 on trial, too).
    assert client.post("/v1/training-runs", json=body, headers=auth(t["admin"])).status_code == 409
