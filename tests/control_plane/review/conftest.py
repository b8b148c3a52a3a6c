"""Review fixtures: a tenant with analyst keys, flagged-record factories, a label collector."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.review import service
from control_plane.review.contract import LABEL_TOPIC, example_payload
from tests.control_plane.conftest import OnboardFn, auth

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def key_id(token: str) -> str:
    """The key id inside a token (``frk_<hex>.<secret>`` → ``key_<hex>``)."""
    return "key_" + token.removeprefix("frk_").split(".", 1)[0]


def flagged(
    n: int,
    *,
    score: float = 0.9,
    amount: str = "100.00",
    card: str = "card_1",
    terminal: str = "term_1",
    decision: str = "SUSPICIOUS",
    ts: datetime | None = None,
) -> dict[str, Any]:
    """A valid flagged record; ``n`` makes its ids and (by default) its time."""
    txn_id = f"tx_{n:04d}"
    payload = example_payload(flagged_id=f"flg_{n:04d}", txn_id=txn_id, score=score, decision=decision)
    payload["transaction"] = {
        **payload["transaction"],
        "txn_id": txn_id,
        "card_token": card,
        "terminal_id": terminal,
        "amount": amount,
        "ts": (ts or T0 + timedelta(minutes=n)).isoformat(),
    }
    return payload


IngestFn = Callable[..., list[str]]


@pytest.fixture
def ingest(container: State) -> IngestFn:
    """Factory: put flagged records in a tenant's queue (committed); returns the review ids."""

    def _ingest(tenant_id: str, *payloads: Mapping[str, Any]) -> list[str]:
        with unit_of_work(container.factory) as session:
            return [service.ingest(session, tenant_id, p).id for p in payloads]

    return _ingest


@pytest.fixture
def tenant(onboard: OnboardFn, client: TestClient) -> dict[str, Any]:
    """A tenant with admin, app, sre, analyst keys and a second analyst (``analyst2``)."""
    t = onboard("acme-pay", scopes=("app", "analyst", "sre"))
    r = client.post(
        f"/v1/tenants/{t['id']}/keys", json={"scope": "analyst", "name": "second"}, headers=auth(t["admin"])
    )
    assert r.status_code == 201, r.text
    t["analyst2"] = r.json()["key"]
    return t


@pytest.fixture
def labels_seen(container: State) -> list[dict[str, Any]]:
    """Every ``label.recorded`` message published on the bus during the test."""
    seen: list[dict[str, Any]] = []
    container.providers.event_bus.subscribe(LABEL_TOPIC, lambda _topic, msg: seen.append(dict(msg)))
    return seen
