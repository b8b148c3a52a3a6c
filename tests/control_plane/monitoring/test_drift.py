"""Production drift: checks counted in memory, flushed in hourly buckets, compared with the profile."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from control_plane.bootstrap.state import State
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction
from fraud_model.features import FEATURE_NAMES
from tests.control_plane.conftest import auth
from tests.control_plane.monitoring.conftest import register_profiled, score
from tests.control_plane.scoring.conftest import sim_requests


def drift(client: TestClient, t: dict[str, Any], key: str = "admin", **params: str) -> Any:
    return client.get("/v1/monitoring/drift", params=params, headers=auth(t[key]))


def test_scored_checks_are_binned_and_compared_worst_first(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    answers = score(client, monitored, sim_requests(sim_frame, 120))
    container.monitor.flush()
    resp = drift(client, monitored, model_version=monitored["model"], window="day")
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["volume"] == 120 and report["volume_by_cohort"] == {"stable": 120}
    assert [f["feature"] for f in report["features"]] != [] and len(report["features"]) == len(FEATURE_NAMES)
    psis = [f["psi"] for f in report["features"]]
    assert psis == sorted(psis, reverse=True)
    assert sum(report["score"]["histogram"]["current"]) == 120
    for f in report["features"]:
        h = f["histogram"]
        assert len(h["current"]) == len(h["reference"]) == len(h["edges"]) + 1
        assert 0 <= f["js_distance"] <= 1
    rates = {r["decision"]: r for r in report["decision_rates"]}
    flagged = sum(1 for a in answers if a["decision"] != "LEGIT")
    assert abs(rates["LEGIT"]["current"] - (120 - flagged) / 120) < 1e-6
    # The gauge dashboards read is set for every feature and for the score.
    metrics = container.providers.metrics
    gauge = metrics.value("fraudrail_feature_psi", tenant=monitored["id"], feature="score")  # type: ignore[attr-defined]
    assert gauge == report["score"]["psi"]
    # Every answered check is recorded once for the delayed labels, LEGIT ones included.
    with container.factory() as session:
        n = session.scalar(select(func.count()).select_from(ScoredTransaction))
        assert n == 120
        assert session.scalar(select(func.sum(DriftBucket.volume))) == 120


def test_a_shifted_amount_is_the_worst_feature(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    requests = sim_requests(sim_frame, 80)
    for r in requests:  # legitimate spending moved up twentyfold
        r["amount"] = f"{float(r['amount']) * 20 + 500:.2f}"
    score(client, monitored, requests)
    container.monitor.flush()
    report = drift(client, monitored, model_version=monitored["model"], window="day").json()
    assert report["features"][0]["feature"] == "amount"
    assert report["features"][0]["psi"] > 0.25
    out_of_range = {(q["feature"], q["kind"]) for q in report["quality"]}
    assert ("amount", "out_of_range") in out_of_range


def test_flushes_add_up_in_the_same_hour_bucket(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    requests = sim_requests(sim_frame, 40)
    score(client, monitored, requests[:20])
    container.monitor.flush()
    score(client, monitored, requests[20:])
    container.monitor.flush()
    container.monitor.flush()  # nothing new: writes nothing twice
    report = drift(client, monitored, model_version=monitored["model"], window="day").json()
    assert report["volume"] == 40
    assert sum(report["score"]["histogram"]["current"]) == 40
    hour = drift(client, monitored, model_version=monitored["model"], window="hour").json()
    assert 0 < hour["volume"] <= 40


def test_bad_requests_name_the_field(
    client: TestClient,
    container: State,
    monitored: dict[str, Any],
    trained_artifact: bytes,
) -> None:
    unknown = drift(client, monitored, model_version="mv_nope", window="day")
    assert unknown.status_code == 404 and unknown.json()["field"] == "model_version"
    quiet = drift(client, monitored, model_version=monitored["model"], window="day")
    assert quiet.status_code == 404 and quiet.json()["field"] == "window"
    assert "no traffic" in quiet.json()["detail"]
    bad_window = drift(client, monitored, model_version=monitored["model"], window="week")
    assert bad_window.status_code == 422 and "window" in bad_window.json()["field"]
    old = register_profiled(container, monitored["id"], trained_artifact, None)
    unprofiled = drift(client, monitored, model_version=old, window="day")
    assert unprofiled.status_code == 409 and unprofiled.json()["field"] == "model_version"
    analyst = drift(client, monitored, key="analyst", model_version=monitored["model"], window="day")
    assert analyst.status_code == 403


def test_the_model_shows_its_reference_profile(
    client: TestClient, monitored: dict[str, Any], reference: dict[str, Any]
) -> None:
    resp = client.get(f"/v1/models/{monitored['model']}", headers=auth(monitored["admin"]))
    assert resp.status_code == 200
    profile = resp.json()["reference_profile"]
    assert profile["features"]["amount"]["edges"] == reference["features"]["amount"]["edges"]
    assert profile["decision_rates"] == reference["decision_rates"]
