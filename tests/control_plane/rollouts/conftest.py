"""Rollout fixtures: a live tenant, a second approved version, steady traffic, a controllable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from control_plane.orm_base import utcnow
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import (  # noqa: F401  (fixtures shared with the scoring tests)
    LiveFn,
    live_tenant,
    register_model,
    sim_frame,
    trained_artifact,
    txn,
)


class Clock:
    """The worker's clock: real time plus an offset the test moves forward (no sleeping)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(worker: Worker, container: State) -> Clock:
    c = Clock()
    worker.clock = c
    container.scoring.recorder.bucket_s = 1
    container.scoring.recorder.clock = lambda: c().timestamp()  # samples on the same timeline
    return c


@pytest.fixture
def canary_setup(live_tenant: LiveFn, container: State, trained_artifact: bytes) -> dict[str, Any]:  # noqa: F811
    t = live_tenant()
    t["candidate"] = register_model(container, t["id"], trained_artifact)
    return t


TrafficFn = Callable[[dict[str, Any], int, str], list[int]]


@pytest.fixture
def traffic(client: TestClient) -> TrafficFn:
    """Send n small legitimate-looking checks over distinct cards; return the status codes."""

    def _send(t: dict[str, Any], n: int, prefix: str) -> list[int]:
        codes = []
        for i in range(n):
            body = txn(
                f"{prefix}_{i}",
                card_token=f"card_{prefix}_{i}",
                terminal_id=f"term_{i % 17}",
                amount=f"{10 + (i % 40)}.00",
            )
            codes.append(client.post("/v1/fraud-check", json=body, headers=auth(t["app"])).status_code)
        return codes

    return _send
