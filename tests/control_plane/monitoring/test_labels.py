"""Delayed labels: idempotent by (tenant, txn_id, source), unknown txn_ids reported, performance
per day of transaction time with label maturity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.events import LABEL_RECORDED
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.monitoring.conftest import score
from tests.control_plane.scoring.conftest import sim_requests


def post(client: TestClient, t: dict[str, Any], items: list[dict[str, Any]], key: str = "admin") -> Any:
    return client.post("/v1/labels", json={"items": items}, headers=auth(t[key]))


def test_labels_are_idempotent_and_unknown_txn_ids_come_back(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    seen: list[dict[str, Any]] = []
    container.providers.event_bus.subscribe(LABEL_RECORDED, lambda _t, m: seen.append(dict(m)))
    requests = sim_requests(sim_frame, 30)
    score(client, monitored, requests)
    container.monitor.flush()
    items = [
        {"txn_id": requests[0]["txn_id"], "label": "chargeback", "known_at": "2018-05-01T00:00:00Z"},
        {"txn_id": requests[1]["txn_id"], "label": "legit", "known_at": "2018-05-01T00:00:00Z"},
        {"txn_id": "tx_never_scored", "label": "fraud", "known_at": "2018-05-01T00:00:00Z"},
    ]
    first = post(client, monitored, items)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "recorded": 2,
        "updated": 0,
        "unchanged": 0,
        "unknown_txn_ids": ["tx_never_scored"],
    }
    again = post(client, monitored, items)
    assert again.json() == {
        "recorded": 0,
        "updated": 0,
        "unchanged": 2,
        "unknown_txn_ids": ["tx_never_scored"],
    }
    # The same txn from another source is another label; a changed label is an update.
    other = {**items[0], "source": "issuer-feed"}
    changed = {**items[1], "label": "fraud"}
    third = post(client, monitored, [other, changed])
    assert third.json() == {"recorded": 1, "updated": 1, "unchanged": 0, "unknown_txn_ids": []}
    # Each new or changed label went out once through the outbox, with what the features need.
    mine = [m for m in seen if m["tenant_id"] == monitored["id"]]
    assert len(mine) == 4
    assert {m["label"] for m in mine} == {0, 1}
    assert mine[0]["terminal_id"] == requests[0]["terminal_id"]
    assert mine[0]["card_token"] == requests[0]["card_token"]


def test_labels_for_nothing_the_tenant_scored_are_refused_naming_the_field(
    client: TestClient, monitored: dict[str, Any]
) -> None:
    resp = post(client, monitored, [{"txn_id": "tx_x", "label": "fraud", "known_at": "2026-01-01T00:00:00Z"}])
    assert resp.status_code == 422
    assert resp.json()["field"] == "items.0.txn_id"
    assert resp.json()["unknown_txn_ids"] == ["tx_x"]
    bad = post(client, monitored, [{"txn_id": "tx_x", "label": "maybe", "known_at": "2026-01-01T00:00:00Z"}])
    assert bad.status_code == 422 and "label" in bad.json()["field"]
    naive = post(client, monitored, [{"txn_id": "tx_x", "label": "fraud", "known_at": "2026-01-01T00:00:00"}])
    assert naive.status_code == 422 and "known_at" in naive.json()["field"]
    assert post(client, monitored, []).status_code == 422
    wrong = post(
        client,
        monitored,
        [{"txn_id": "tx_x", "label": "fraud", "known_at": "2026-01-01T00:00:00Z"}],
        key="sre",
    )
    assert wrong.status_code == 403


def test_performance_per_day_with_label_maturity(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    thresholds = {"review_threshold": "0.3", "suspicious_threshold": "0.7"}
    assert (
        client.put("/v1/scoring-config", json=thresholds, headers=auth(monitored["admin"])).status_code == 200
    )
    frame = sim_frame.head(200)
    requests = sim_requests(frame, 200)
    answers = {a["txn_id"]: a for a in score(client, monitored, requests)}
    container.monitor.flush()
    frauds = frame[frame["is_fraud"] == 1]
    known = frame["ts"].max() + timedelta(days=10)
    items = [
        {"txn_id": r.txn_id, "label": "fraud", "known_at": known.isoformat()} for r in frauds.itertuples()
    ]
    assert post(client, monitored, items).status_code == 200
    resp = client.get("/v1/monitoring/performance", params={"days": 90}, headers=auth(monitored["analyst"]))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    days = report["days"]
    assert sum(d["scored"] for d in days) == 200
    assert sum(d["fraud"] for d in days) == sum(d["labelled"] for d in days) == len(frauds)
    flagged = {t for t, a in answers.items() if a["decision"] != "LEGIT"}
    caught = [r for r in frauds.itertuples() if r.txn_id in flagged]
    assert sum(d["flagged"] for d in days) == len(flagged)
    total_caught = sum(float(d["fraud_amount_caught"]) for d in days)
    assert abs(total_caught - sum(round(r.amount, 2) for r in caught)) < 0.05
    for d in days:
        assert d["label_maturity_days"] == (known.date() - pd.Timestamp(d["day"]).date()).days
        if d["fraud"]:
            assert d["recall"] is not None and 0 <= d["recall"] <= 1
    wrong = client.get("/v1/monitoring/performance", headers=auth(monitored["app"]))
    assert wrong.status_code == 403


def test_another_tenant_neither_labels_nor_sees_these_transactions(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    monitored: dict[str, Any],
    sim_frame: pd.DataFrame,
) -> None:
    requests = sim_requests(sim_frame, 10)
    score(client, monitored, requests)
    container.monitor.flush()
    other = onboard("peek-co", scopes=("app", "sre", "analyst"))
    item = {"txn_id": requests[0]["txn_id"], "label": "fraud", "known_at": "2018-05-01T00:00:00Z"}
    resp = post(client, other, [item])
    assert resp.status_code == 422 and resp.json()["unknown_txn_ids"] == [requests[0]["txn_id"]]
    perf = client.get("/v1/monitoring/performance", params={"days": 90}, headers=auth(other["admin"]))
    assert perf.status_code == 200 and perf.json()["days"] == []
    drift = client.get(
        "/v1/monitoring/drift",
        params={"model_version": monitored["model"], "window": "day"},
        headers=auth(other["admin"]),
    )
    assert drift.status_code == 404 and drift.json()["field"] == "model_version"


def test_labels_from_a_csv_file(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    requests = sim_requests(sim_frame, 5)
    score(client, monitored, requests)
    container.monitor.flush()
    rows = [f"{r['txn_id']},fraud,2018-05-01T00:00:00Z,issuer" for r in requests[:3]]
    csv = "\n".join(["txn_id,label,known_at,source", *rows, "tx_unknown,legit,2018-05-01T00:00:00Z,issuer"])

    def upload(data: str) -> Any:
        return client.post(
            "/v1/labels/csv",
            files={"file": ("labels.csv", data.encode(), "text/csv")},
            headers=auth(monitored["admin"]),
        )

    resp = upload(csv)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"recorded": 3, "updated": 0, "unchanged": 0, "unknown_txn_ids": ["tx_unknown"]}
    assert upload(csv).json()["unchanged"] == 3
    bad = upload("txn_id,label,known_at\nx,fraud,yesterday\n")
    assert bad.status_code == 422 and bad.json()["field"] == "file.known_at"
    assert "line 2" in bad.json()["detail"]
    header = upload("txn,label\nx,fraud\n")
    assert header.status_code == 422 and header.json()["field"] == "file"
