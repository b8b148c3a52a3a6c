"""Tenant feature sets through the API: declare (JSON / YAML, 422 naming the path), upload a dataset
with the set's columns, train on the set, promote, and score with attributes (issue 16)."""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from fraud_model.simulator_tenant import (
    pca_passthrough_document,
    pca_to_schema,
    simulate_pca_creditcard,
    simulate_tenant,
    tenant_document,
)
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.training.test_training_flow import small_data_gate, train, upload  # noqa: F401

DOCUMENT = tenant_document()


@pytest.fixture(scope="module")
def tenant_csv() -> tuple[pd.DataFrame, bytes]:
    frame = simulate_tenant(800, 1600, 40, seed=4, intensity=4)
    return frame, frame.to_csv(index=False).encode()


def put(client: TestClient, t: dict[str, Any], doc: Any, name: str = "device-email", **kw: Any) -> Any:
    return client.put(f"/v1/feature-sets/{name}", json=doc, headers=auth(t["admin"]), **kw)


def check(client: TestClient, t: dict[str, Any], txn_id: str, **extra: Any) -> Any:
    body = {
        "txn_id": txn_id,
        "card_token": "card_7",
        "terminal_id": "term_3",
        "timestamp": "2026-07-20T12:00:00Z",
        "amount": "42.50",
        "currency": "EUR",
        **extra,
    }
    return client.post("/v1/fraud-check", json=body, headers=auth(t["app"]))


def test_declare_read_version_and_refuse_bad_documents(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("fs-decl", scopes=("app", "analyst"))
    created = put(client, t, DOCUMENT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["version"], body["label"], body["active"], body["locked"]) == (
        1,
        "device-email@v1",
        True,
        False,
    )
    assert "device_cards_1d" in body["feature_names"]
    assert put(client, t, DOCUMENT).json()["version"] == 1  # the same document again: unchanged
    edited = copy.deepcopy(DOCUMENT)
    edited["features"] = edited["features"][:-1]  # type: ignore[index]
    as_yaml = client.put(
        "/v1/feature-sets/device-email",
        content=yaml.safe_dump(edited).encode(),
        headers={**auth(t["admin"]), "content-type": "application/yaml"},
    )
    assert as_yaml.status_code == 200 and as_yaml.json()["version"] == 1  # not locked: replaced
    read = client.get("/v1/feature-sets/device-email", headers=auth(t["analyst"]))
    assert read.status_code == 200 and len(read.json()["document"]["features"]) == len(edited["features"])
    assert client.get("/v1/feature-sets/device-email?version=2", headers=auth(t["admin"])).status_code == 404

    cases = [
        (lambda d: d["features"][3].update(window=0), "document.features[3].window"),
        (lambda d: d["features"][14].update(of="shoe_size"), "document.features[14].of"),
        (lambda d: d["features"][24].update(right="amount"), "document.features[24].right"),
        (
            lambda d: d["features"].extend(
                [
                    {"name": "a", "kind": "compare", "left": "b", "op": ">", "value": 1},
                    {"name": "b", "kind": "compare", "left": "a", "op": ">", "value": 1},
                ]
            ),
            f"document.features[{len(DOCUMENT['features'])}]",  # type: ignore[arg-type]
        ),
    ]
    for mutate, field in cases:
        bad = copy.deepcopy(DOCUMENT)
        mutate(bad)
        resp = put(client, t, bad)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["field"] == field, resp.json()
    not_yaml = client.put(
        "/v1/feature-sets/device-email",
        content=b"features: [",
        headers={**auth(t["admin"]), "content-type": "application/yaml"},
    )
    assert not_yaml.status_code == 422 and not_yaml.json()["field"] == "document"
    assert client.put("/v1/feature-sets/x", json=DOCUMENT, headers=auth(t["app"])).status_code == 403


def test_attributes_are_checked_against_the_active_set(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("fs-attrs", scopes=("app",))
    assert (
        client.put(
            "/v1/scoring-config",
            json={"review_threshold": "0.5", "suspicious_threshold": "0.8", "fallback": "rules"},
            headers=auth(t["admin"]),
        ).status_code
        == 200
    )
    no_set = check(client, t, "a0", attributes={"device_id": "d1"})
    assert no_set.status_code == 422 and no_set.json()["field"] == "attributes.device_id"
    assert put(client, t, DOCUMENT).status_code == 201
    unknown = check(client, t, "a1", attributes={"card_country": "FR", "shoe_size": 42})
    assert unknown.status_code == 422 and unknown.json()["field"] == "attributes.shoe_size"
    bad_country = check(client, t, "a2", attributes={"card_country": "France"})
    assert bad_country.status_code == 422 and bad_country.json()["field"] == "attributes.card_country"
    out_of_range = check(client, t, "a3", attributes={"card_country": "FR", "account_age_days": -3})
    assert out_of_range.status_code == 422 and out_of_range.json()["field"] == "attributes.account_age_days"
    missing = check(client, t, "a4", attributes={"device_id": "d1"})
    assert missing.status_code == 422 and missing.json()["field"] == "attributes.card_country"
    ok = check(client, t, "a5", attributes={"card_country": "FR", "device_id": "d1"})
    assert ok.status_code == 200, ok.text


def test_train_on_the_set_promote_and_score_with_a_device_reason(
    client: TestClient,
    onboard: OnboardFn,
    worker: Worker,
    container: State,
    tenant_csv: tuple[pd.DataFrame, bytes],
) -> None:
    t = onboard("fs-train", tier="standard", scopes=("app",))  # its rate limit fits the replay
    assert put(client, t, DOCUMENT).status_code == 201
    frame, data = tenant_csv
    broken = frame.copy()
    broken.loc[3, "ip_country"] = "Narnia"
    refused = upload(client, t, broken.to_csv(index=False).encode(), name="broken")
    assert refused.status_code == 422
    failed = [c["name"] for c in refused.json()["failed_checks"]]
    assert failed == ["feature_set_attributes"] and "ip_country" in refused.json()["detail"]
    ds = upload(client, t, data)
    assert ds.status_code == 201, ds.text
    assert any(c["name"] == "feature_set_attributes" and c["passed"] for c in ds.json()["report"]["checks"])

    run = train(client, worker, t, ds.json()["id"])
    version = run["result"]["model_version"]
    model = client.get(f"/v1/models/{version}", headers=auth(t["admin"])).json()
    assert model["feature_set_version"] == "device-email@v1"
    stored = client.get("/v1/feature-sets/device-email", headers=auth(t["admin"])).json()
    assert stored["locked"] is True
    changed = copy.deepcopy(DOCUMENT)
    changed["delay_days"] = 6
    assert put(client, t, changed).json()["version"] == 2  # v1 is immutable now
    assert put(client, t, DOCUMENT).json()["version"] == 2  # v2 is no model's yet: replaced in place

    if model["stage"] != "APPROVED":
        approved = client.post(f"/v1/models/{version}/approve", headers=auth(t["admin"]))
        assert approved.status_code == 200, (model["metrics"], model["gate"])
    promoted = client.post(f"/v1/models/{version}/promote", headers=auth(t["admin"]))
    assert promoted.status_code == 200, promoted.text
    assert (
        client.put(
            "/v1/scoring-config",
            json={"review_threshold": "0", "suspicious_threshold": "0.99"},
            headers=auth(t["admin"]),
        ).status_code
        == 200
    )
    home = {"card_country": "FR", "ip_country": "FR", "email_domain": "gmail.com", "account_age_days": 400}
    history = []
    for day in range(1, 7):  # a week of ordinary use: each card on its own device
        for i in range(12):
            answer = check(
                client,
                t,
                f"h{day}_{i}",
                card_token=f"card_{i}",
                terminal_id=f"term_{i}",
                attributes={**home, "device_id": f"dev_{i}"},
                timestamp=f"2026-07-{12 + day:02d}T1{i % 10}:00:00Z",
            )
            assert answer.status_code == 200, answer.text
            history.append(answer.json()["score"])
    farm = [
        check(
            client,
            t,
            f"farm_{i}",
            card_token=f"card_{i}",
            terminal_id=f"term_{i}",
            attributes={**home, "device_id": "farm_x"},
            timestamp=f"2026-07-19T12:{i:02d}:00Z",
        )
        for i in range(12)
    ]
    assert all(a.status_code == 200 for a in farm), farm[-1].text
    last = farm[-1].json()
    assert last["model_version"] == version and last["decision"] != "LEGIT"
    assert last["score"] > sorted(history)[len(history) // 2]  # the shared device raises the score
    reasons = [r for a in farm[-4:] for r in a.json()["reasons"]]
    device = [r for r in reasons if r["feature"].startswith("device_")]
    assert device, reasons
    assert all(r["code"].startswith("DEVICE_") for r in device)
    labels = {r["feature"]: r["text"] for r in reasons}
    if "device_cards_1d" in labels:
        assert labels["device_cards_1d"].startswith("Cards seen on this device in the last 24 hours")
    metrics = container.providers.metrics
    # Every card, device and e-mail domain was new to the online state once; ip_country was sent always.
    assert metrics.counter("fraudrail_feature_inputs_total", tenant=t["id"], kind="new_entity") >= 12 + 1 + 1
    assert metrics.counter("fraudrail_feature_inputs_total", tenant=t["id"], kind="missing_optional") == 0
    unseen = check(client, t, "unseen_domain", attributes={**home, "email_domain": "brand-new.example"})
    assert unseen.status_code == 200
    assert metrics.counter("fraudrail_feature_inputs_total", tenant=t["id"], kind="unknown_category") == 2
    no_device = check(client, t, "no_device", attributes={"card_country": "FR"})
    assert no_device.status_code == 200
    assert metrics.counter("fraudrail_feature_inputs_total", tenant=t["id"], kind="missing_optional") == 1 + 4


def test_a_name_is_per_tenant(client: TestClient, onboard: OnboardFn) -> None:
    a = onboard("fs-alpha", scopes=("app",))
    b = onboard("fs-beta", scopes=("app",))
    assert put(client, a, DOCUMENT).status_code == 201
    minimal = {"features": [{"name": "amount", "kind": "passthrough", "attribute": "amount"}]}
    theirs = put(client, b, minimal)
    assert theirs.status_code == 201 and theirs.json()["version"] == 1  # b's own set, not a's
    mine = client.get("/v1/feature-sets/device-email", headers=auth(a["admin"])).json()
    assert len(mine["document"]["features"]) == len(DOCUMENT["features"])  # type: ignore[arg-type]
    listed = client.get("/v1/feature-sets", headers=auth(b["admin"])).json()
    assert [s["id"] for s in listed] == [theirs.json()["id"]]


def test_a_pca_shaped_dataset_trains_and_serves_with_a_passthrough_set(
    client: TestClient, onboard: OnboardFn, worker: Worker
) -> None:
    t = onboard("fs-pca", tier="trial", scopes=("app",))
    assert put(client, t, pca_passthrough_document(), name="pca").status_code == 201
    raw = simulate_pca_creditcard(20_000, seed=3, fraud_rate=0.01, days=20)
    assert list(raw.columns) == ["Time", *[f"V{i}" for i in range(1, 29)], "Amount", "Class"]
    frame = pca_to_schema(raw)
    ds = upload(client, t, frame.to_csv(index=False).encode(), name="pca")
    assert ds.status_code == 201, ds.text
    run = train(client, worker, t, ds.json()["id"], test_days=3, delay_days=1)
    version = run["result"]["model_version"]
    assert run["result"]["stage"] == "CANDIDATE", run["result"]
    model = client.get(f"/v1/models/{version}", headers=auth(t["admin"])).json()
    assert model["feature_set_version"] == "pca@v1"
    assert client.post(f"/v1/models/{version}/approve", headers=auth(t["admin"])).status_code == 200
    assert client.post(f"/v1/models/{version}/promote", headers=auth(t["admin"])).status_code == 200
    fraud_row = frame[frame["is_fraud"] == 1].iloc[0]
    components = {f"v{i}": float(fraud_row[f"v{i}"]) for i in range(1, 29)}
    answer = check(client, t, "pca_1", attributes=components)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == version and body["score"] > 0.5
    assert all(r["feature"].startswith("pca_v") or r["feature"] == "amount" for r in body["reasons"])
    missing = check(client, t, "pca_2", attributes={k: v for k, v in components.items() if k != "v14"})
    assert missing.status_code == 422 and missing.json()["field"] == "attributes.v14"
