"""A PRODUCTION model that fails to load or score: checks answer from the rules, degraded, and alert."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from providers.local.model_host import LocalModelHost
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, txn


def test_a_failing_production_model_degrades_checks_instead_of_failing_them(
    client: TestClient, live_tenant: LiveFn, container: State, caplog: pytest.LogCaptureFixture
) -> None:
    t = live_tenant()
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    container.scoring.checker.warm(t["id"], [t["model"]])
    host.inject_fault(t["id"], t["model"], error=True)
    with caplog.at_level(logging.ERROR, logger="control_plane.scoring.service"):
        answers = [
            client.post("/v1/fraud-check", json=txn(f"f_{i}", card_token=f"c_{i}"), headers=auth(t["app"]))
            for i in range(20)
        ]
    assert [a.status_code for a in answers] == [200] * 20, answers[0].text
    body = answers[0].json()
    assert body["degraded"] is True and body["degraded_inputs"] == ["production_model"]
    assert body["model_version"] is None and body["cohort"] == "rules"
    assert body["decision"] in {"LEGIT", "REVIEW", "SUSPICIOUS"}
    metrics = container.providers.metrics
    assert metrics.counter("fraudrail_degraded_total", tenant=t["id"], input="production_model") == 20
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and t["model"] in r.getMessage()]
    assert len(errors) == 1, "one ERROR line per failing version and minute, not one per check"
    # The failures still burn the version's error budget (the SLO sees them).
    container.scoring.recorder.flush()
    slo = client.get("/v1/slo", headers=auth(t["sre"])).json()
    assert slo["error_budget"]["bad_requests"] == 20 and slo["error_budget"]["requests"] == 20

    host.clear_faults()
    healthy = client.post("/v1/fraud-check", json=txn("healthy"), headers=auth(t["app"])).json()
    assert healthy["degraded"] is False and healthy["model_version"] == t["model"]


def test_a_tampered_production_artifact_answers_from_the_rules(
    client: TestClient, live_tenant: LiveFn, container: State, trained_artifact: bytes
) -> None:
    t = live_tenant()
    key = f"tenants/{t['id']}/models/{t['model']}.frm"
    container.providers.object_store.put(key, trained_artifact[:-8] + b"tampered")
    resp = client.post("/v1/fraud-check", json=txn("tx_t"), headers=auth(t["app"]))
    assert resp.status_code == 200 and resp.json()["degraded_inputs"] == ["production_model"]
