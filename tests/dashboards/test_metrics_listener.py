"""The worker's own /metrics listener: the same answer as the API's route, token included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from control_plane.metrics_endpoint import start_metrics_listener
from control_plane.settings import AppSettings
from providers.local.metrics import InMemoryMetrics

TOKEN = "listener-token-0123456789abcdef"


@dataclass
class _Providers:
    metrics: InMemoryMetrics


@dataclass
class _Source:
    settings: AppSettings
    providers: _Providers


@pytest.fixture
def url() -> Iterator[str]:
    metrics = InMemoryMetrics()
    metrics.gauge("fraudrail_canary_weight", 0.25, tenant="ten_a")
    source = _Source(AppSettings(env="test", metrics_token=SecretStr(TOKEN)), _Providers(metrics))
    server = start_metrics_listener(source, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_listener_needs_the_token_and_serves_the_scrape(url: str) -> None:
    denied = httpx.get(f"{url}/metrics")
    assert denied.status_code == 401 and denied.headers["content-type"] == "application/problem+json"
    assert "ten_a" not in denied.text
    ok = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'fraudrail_canary_weight{tenant="ten_a"} 0.25' in ok.text
    assert httpx.get(f"{url}/other", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
