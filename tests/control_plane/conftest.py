"""Control-plane fixtures: a container on the test database, a client, the platform-admin key, factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.app import build_worker, create_app
from control_plane.bootstrap.admin_key import ensure_admin_key
from control_plane.bootstrap.state import State, build_state
from control_plane.jobs.worker import Worker
from control_plane.settings import AppSettings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> AppSettings:
    return AppSettings(
        env="test",
        home=tmp_path / "home",
        database_url=database_url,
        run_worker_in_process=False,
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
def container(settings: AppSettings, clean_db: None) -> Iterator[State]:
    c = build_state(settings)
    build_worker(c)
    yield c
    c.engine.dispose()


@pytest.fixture
def worker(container: State) -> Worker:
    return container.worker


@pytest.fixture
def client(settings: AppSettings, container: State) -> Iterator[TestClient]:
    with TestClient(create_app(settings, container), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin_key(container: State) -> str:
    token = ensure_admin_key(container.factory)
    assert token is not None
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tenant_body(slug: str = "acme-pay", tier: str = "standard", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"{slug} Ltd",
        "slug": slug,
        "tier": tier,
        "region": "eu-west-1",
        "budget": {"amount": "2500.00", "currency": "USD"},
        "contacts": {
            "email": "ops@example.com",
            "slack_webhook_url": "https://127.0.0.1:9/services/T/B/X",
        },
    }
    if tier == "trial":
        body["budget"] = {"amount": "400.00", "currency": "USD"}
    if tier == "premium":
        body["encryption"] = {"at_rest": True, "kms_key_alias": f"alias/{slug}-data"}
    body.update(overrides)
    return body


OnboardFn = Callable[..., dict[str, Any]]


@pytest.fixture
def onboard(client: TestClient, admin_key: str, worker: Worker) -> OnboardFn:
    """Factory: onboard a tenant, run its provisioning, return tenant, its admin key and extra keys."""

    def _onboard(
        slug: str = "acme-pay", tier: str = "standard", scopes: tuple[str, ...] = (), activate: bool = True
    ) -> dict[str, Any]:
        resp = client.post("/v1/tenants", json=tenant_body(slug, tier), headers=auth(admin_key))
        assert resp.status_code == 202, resp.text
        data = resp.json()
        if activate:
            worker.drain()
        out: dict[str, Any] = {
            "id": data["tenant"]["id"],
            "admin": data["admin_key"]["key"],
            "job_id": data["provisioning_job_id"],
        }
        for scope in scopes:
            r = client.post(
                f"/v1/tenants/{out['id']}/keys",
                json={"scope": scope, "name": scope},
                headers=auth(out["admin"]),
            )
            assert r.status_code == 201, r.text
            out[scope] = r.json()["key"]
        return out

    return _onboard
