"""Backtests: proposed thresholds / lists replayed on the tenant's scored traffic vs the live policy."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.monitoring.conftest import score
from tests.control_plane.scoring.conftest import sim_requests


def backtest(client: TestClient, t: dict[str, Any], body: dict[str, Any], key: str = "admin") -> Any:
    return client.post("/v1/backtests", json={"days": 90, **body}, headers=auth(t[key]))


def live_history(
    client: TestClient, container: State, t: dict[str, Any], frame: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    thresholds = {"review_threshold": "0.3", "suspicious_threshold": "0.7"}
    assert client.put("/v1/scoring-config", json=thresholds, headers=auth(t["admin"])).status_code == 200
    answers = {a["txn_id"]: a for a in score(client, t, sim_requests(frame, len(frame)))}
    container.monitor.flush()
    frauds = [r.txn_id for r in frame.itertuples() if r.is_fraud]
    items = [{"txn_id": x, "label": "fraud", "known_at": "2018-06-01T00:00:00Z"} for x in frauds]
    assert client.post("/v1/labels", json={"items": items}, headers=auth(t["admin"])).status_code == 200
    return answers


def test_replaying_the_live_policy_gives_the_online_decisions(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    frame = sim_frame.head(150)
    answers = live_history(client, container, monitored, frame)
    resp = backtest(client, monitored, {"review_threshold": "0.3", "suspicious_threshold": "0.7"})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["transactions"] == 150 and report["replay_mismatches"] == 0
    assert report["flips"] == [] and report["live"] == report["proposed"]
    flagged = sum(1 for a in answers.values() if a["decision"] != "LEGIT")
    assert report["live"]["flagged"] == flagged
    assert sum(d["transactions"] for d in report["days"]) == 150


def test_a_lower_threshold_and_a_block_list_flip_decisions(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    frame = sim_frame.head(150)
    answers = live_history(client, container, monitored, frame)
    legit = [t for t, a in answers.items() if a["decision"] == "LEGIT"]
    report = backtest(client, monitored, {"review_threshold": "0"}).json()
    assert report["proposed"]["flagged"] == 150
    flips = {(f["from_decision"], f["to_decision"]): f for f in report["flips"]}
    assert flips[("LEGIT", "REVIEW")]["count"] == len(legit)
    assert set(flips[("LEGIT", "REVIEW")]["examples"]) <= set(legit)
    if report["proposed"]["recall"] is not None:
        assert report["proposed"]["recall"] == 1.0
        assert float(report["proposed"]["fraud_amount_missed"]) == 0
    card = frame.iloc[0]["card_token"]
    blocked = backtest(client, monitored, {"block_cards": [card]}).json()
    on_card = [r.txn_id for r in frame.itertuples() if r.card_token == card]
    moved = sum(f["count"] for f in blocked["flips"] if f["to_decision"] == "SUSPICIOUS")
    assert moved == sum(1 for t in on_card if answers[t]["decision"] != "SUSPICIOUS")


def test_bad_proposals_name_the_field(
    client: TestClient,
    container: State,
    onboard: OnboardFn,
    monitored: dict[str, Any],
    sim_frame: pd.DataFrame,
) -> None:
    empty = backtest(client, monitored, {})
    assert empty.status_code == 422 and empty.json()["field"] == "proposal"
    model = backtest(client, monitored, {"model_version": monitored["model"]})
    assert model.status_code == 422 and model.json()["field"] == "model_version"
    quiet = backtest(client, monitored, {"review_threshold": "0.1"})
    assert quiet.status_code == 422 and quiet.json()["field"] == "days"
    inverted = backtest(client, monitored, {"review_threshold": "0.9", "suspicious_threshold": "0.2"})
    assert inverted.status_code == 422 and inverted.json()["field"] == "review_threshold"
    assert backtest(client, monitored, {"review_threshold": "0.1"}, key="sre").status_code == 403
    # Another tenant replays only its own traffic: none.
    live_history(client, container, monitored, sim_frame.head(20))
    other = onboard("other-co", scopes=("app", "sre", "analyst"))
    theirs = backtest(client, other, {"review_threshold": "0.1"})
    assert theirs.status_code == 422 and theirs.json()["field"] == "days"
