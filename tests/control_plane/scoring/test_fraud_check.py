"""POST /v1/fraud-check: decisions, reasons, lists, idempotency, validation, fallbacks."""

from __future__ import annotations

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from fraud_model.online_features import CardState
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import LiveFn, txn


def test_check_answers_a_decision_with_score_version_and_timing(
    client: TestClient, live_tenant: LiveFn
) -> None:
    t = live_tenant()
    resp = client.post("/v1/fraud-check", json=txn(), headers=auth(t["app"]))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["decision"] in {"LEGIT", "REVIEW", "SUSPICIOUS"}
    assert 0.0 <= body["score"] <= 1.0
    assert body["model_version"] == t["model"] and body["cohort"] == "stable"
    assert body["degraded"] is False and body["server_time_ms"] > 0


def test_block_list_flags_with_a_named_reason_and_reaches_the_store(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    t = live_tenant()
    config = {
        "review_threshold": "0.5",
        "suspicious_threshold": "0.8",
        "block_cards": ["card_stolen"],
        "allow_terminals": ["term_trusted"],
    }
    assert client.put("/v1/scoring-config", json=config, headers=auth(t["admin"])).status_code == 200
    blocked = client.post(
        "/v1/fraud-check", json=txn("tx_b", card_token="card_stolen"), headers=auth(t["app"])
    ).json()
    assert blocked["decision"] == "SUSPICIOUS"
    assert blocked["reasons"][0]["code"] == "BLOCKLIST_CARD"
    allowed = client.post(
        "/v1/fraud-check",
        json=txn("tx_a", terminal_id="term_trusted", amount="9000.00"),
        headers=auth(t["app"]),
    ).json()
    assert allowed["decision"] == "LEGIT" and allowed["reasons"][0]["code"] == "ALLOWLIST_TERMINAL"

    container.scoring.spool.drain(container.scoring.drainer.sink)
    flagged = client.get("/v1/flagged", headers=auth(t["analyst"])).json()
    assert [f["txn_id"] for f in flagged] == ["tx_b"]
    assert flagged[0]["reasons"][0]["code"] == "BLOCKLIST_CARD" and "card_nb_tx_1d" in flagged[0]["features"]


def test_retry_is_identical_and_counts_velocity_once(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    t = live_tenant()
    first = client.post("/v1/fraud-check", json=txn("tx_9"), headers=auth(t["app"])).json()
    again = client.post("/v1/fraud-check", json=txn("tx_9"), headers=auth(t["app"])).json()
    assert again["replayed"] is True
    for key in ("decision", "score", "model_version", "reasons", "cohort"):
        assert again[key] == first[key]
    raw = container.providers.feature_cache.get_many(t["id"], ["card:card_42"])[0]
    assert raw is not None and len(CardState.from_bytes(raw).ts) == 1

    other_body = client.post("/v1/fraud-check", json=txn("tx_9", amount="43.00"), headers=auth(t["app"]))
    assert other_body.status_code == 409 and other_body.json()["field"] == "txn_id"


def test_bad_input_names_the_field(client: TestClient, live_tenant: LiveFn) -> None:
    t = live_tenant()
    cases = {
        "amount": txn(amount="-5"),
        "timestamp": txn(timestamp="2026-11-20T10:15:00"),
        "card_token": txn(card_token="4111111111111111"),
        "currency": txn(currency="dollars"),
        "txn_id": txn(txn_id=""),
        "surprise": {**txn(), "surprise": 1},
    }
    for field, body in cases.items():
        resp = client.post("/v1/fraud-check", json=body, headers=auth(t["app"]))
        assert resp.status_code == 422, (field, resp.text)
        assert resp.json()["field"] == field
    assert (
        client.post(
            "/v1/fraud-check",
            content=b"{nope",
            headers={**auth(t["app"]), "content-type": "application/json"},
        ).status_code
        == 422
    )
    assert (
        client.post("/v1/fraud-check", json=txn(), headers=auth("frk_0000000000000000.x")).status_code == 401
    )
    assert client.post("/v1/fraud-check", json=txn(), headers=auth(t["admin"])).status_code == 403


def test_no_production_model_is_409_unless_rules_fallback(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("fresh-co", scopes=("app",))
    resp = client.post("/v1/fraud-check", json=txn(), headers=auth(t["app"]))
    assert resp.status_code == 409 and "PRODUCTION" in resp.json()["detail"]
    config = {"review_threshold": "0.5", "suspicious_threshold": "0.8", "fallback": "rules"}
    assert client.put("/v1/scoring-config", json=config, headers=auth(t["admin"])).status_code == 200
    ruled = client.post(
        "/v1/fraud-check", json=txn("tx_big", amount="5000.00"), headers=auth(t["app"])
    ).json()
    assert ruled["cohort"] == "rules" and ruled["model_version"] is None
    assert ruled["decision"] == "REVIEW" and ruled["reasons"][0]["code"] == "RULE_LARGE_AMOUNT"


def test_suspended_tenant_is_refused(client: TestClient, live_tenant: LiveFn, admin_key: str) -> None:
    t = live_tenant()
    client.post(f"/v1/tenants/{t['id']}/suspend", json={"reason": "admin"}, headers=auth(admin_key))
    resp = client.post("/v1/fraud-check", json=txn(), headers=auth(t["app"]))
    assert resp.status_code == 409 and "suspended" in resp.json()["detail"]


def test_thresholds_must_be_ordered(client: TestClient, live_tenant: LiveFn) -> None:
    t = live_tenant()
    resp = client.put(
        "/v1/scoring-config",
        json={"review_threshold": "0.9", "suspicious_threshold": "0.5"},
        headers=auth(t["admin"]),
    )
    assert resp.status_code == 422 and resp.json()["field"] == "review_threshold"
