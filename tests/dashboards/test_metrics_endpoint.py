"""GET /metrics: a scrape token when one is set (required in production), tenant labels as chosen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from control_plane.app import create_app
from control_plane.bootstrap.state import State
from control_plane.settings import AppSettings

TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def scrape(settings: AppSettings, container: State) -> Iterator[Any]:
    """Factory: a client of an app whose metrics settings are ``overrides``."""
    clients: list[TestClient] = []

    def _make(**overrides: Any) -> TestClient:
        container.settings = settings.model_copy(update=overrides)
        client = TestClient(create_app(container.settings, container), raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield _make
    for client in clients:
        client.__exit__(None, None, None)


def _traffic(container: State) -> None:
    metrics = container.providers.metrics
    for tenant in ("ten_alpha", "ten_beta"):
        metrics.increment("fraudrail_fraud_check_total", tenant=tenant, decision="LEGIT", cohort="stable")
        metrics.observe("fraudrail_fraud_check_seconds", 0.004, tenant=tenant)


def test_with_a_token_set_metrics_need_it(scrape: Any, container: State) -> None:
    client = scrape(metrics_token=SecretStr(TOKEN))
    _traffic(container)
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ):
        denied = client.get("/metrics", headers=headers)
        assert denied.status_code == 401, headers
        assert denied.headers["content-type"] == "application/problem+json"
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert "ten_alpha" not in denied.text and "fraudrail_" not in denied.text
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert 'fraudrail_fraud_check_total{cohort="stable",decision="LEGIT",tenant="ten_alpha"} 1.0' in ok.text


def test_without_a_token_metrics_are_open_outside_production(scrape: Any, container: State) -> None:
    client = scrape()
    _traffic(container)
    resp = client.get("/metrics")
    assert resp.status_code == 200 and 'tenant="ten_beta"' in resp.text


def test_tenant_labels_none_shows_no_tenant_id(scrape: Any, container: State) -> None:
    client = scrape(metrics_token=SecretStr(TOKEN), metrics_tenant_labels="none")
    _traffic(container)
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "ten_alpha" not in text and "ten_beta" not in text
    assert 'fraudrail_fraud_check_total{cohort="stable",decision="LEGIT",tenant="*"} 2.0' in text
    assert 'fraudrail_fraud_check_seconds_count{tenant="*"} 2.0' in text


def test_tenant_labels_list_shows_only_the_chosen_tenants(scrape: Any, container: State) -> None:
    client = scrape(metrics_tenant_labels="ten_beta")
    _traffic(container)
    text = client.get("/metrics").text
    assert 'tenant="ten_beta"' in text and 'tenant="*"' in text and "ten_alpha" not in text


def test_production_refuses_to_start_without_a_scrape_token(settings: AppSettings) -> None:
    base = settings.model_dump(
        exclude={"env", "metrics_token", "metrics_tenant_labels", "card_hash_key", "run_worker_in_process"}
    )
    prod = {**base, "env": "production", "card_hash_key": "k" * 32, "run_worker_in_process": True}
    # Production also needs PostgreSQL: give it one, whatever database this run tests on.
    prod["database_url"] = "postgresql+psycopg://app@127.0.0.1:5432/fraudrail"
    with pytest.raises(ValidationError, match="FRAUDRAIL_METRICS_TOKEN"):
        AppSettings(**prod)
    with pytest.raises(ValidationError, match="FRAUDRAIL_METRICS_TOKEN"):
        AppSettings(**prod, metrics_token="")
    started = AppSettings(**prod, metrics_token=TOKEN)
    # In production no tenant id is scraped unless the operator lists them (or says all).
    assert started.metrics_tenant_policy.mode == "none"
    assert (
        AppSettings(**prod, metrics_token=TOKEN, metrics_tenant_labels="all").metrics_tenant_policy.mode
        == "all"
    )
    assert TOKEN not in repr(started)


def test_tenant_labels_setting_is_checked_at_start(settings: AppSettings) -> None:
    assert settings.metrics_tenant_policy.mode == "all"  # development and test default
    with pytest.raises(ValidationError, match="tenant labels"):
        AppSettings(**settings.model_dump(exclude={"metrics_tenant_labels"}), metrics_tenant_labels=" , ")


def test_openapi_declares_the_401(scrape: Any) -> None:
    operation = scrape().get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert {"200", "401"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["401"]["content"]
