"""Rollback-Lambda fixtures: a local model host with a stable and a canary version, SNS events."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from providers.local.metrics import InMemoryMetrics
from providers.local.model_host import LocalModelHost
from providers.local.object_store import LocalObjectStore
from providers.local.rollback_log import FileRollbackLog
from providers.ports import HostedModel
from tests.webhook_sink import WebhookSink
from traffic import AlarmDeps

TENANT = "ten_acme"
STABLE, CANARY = "mv_stable", "mv_canary"


def alarm(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "rollout.alarm",
        "tenant_id": TENANT,
        "rollout_id": "ro_42",
        "stable_version": STABLE,
        "canary_version": CANARY,
        "reason": "canary p95 latency over its SLO for 3 windows",
        "severity": "page",
        "evidence": {"metric": "p95_latency_ms", "threshold": 250, "observed": 412.5, "window_s": 300},
        "links": {"Dashboard": "https://grafana.example/d/rollouts?var-rollout=ro_42"},
    }
    body.update(overrides)
    return body


def sns_record(message: Mapping[str, Any] | str, message_id: str = "msg-1") -> dict[str, Any]:
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": "2025-03-01T10:00:00.000Z",
        },
    }


def sns_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@pytest.fixture
def host(tmp_path: Path) -> LocalModelHost:
    h = LocalModelHost(LocalObjectStore(tmp_path / "objects"))
    h.ensure_slot(TENANT, "pooled")
    for version in (STABLE, CANARY):  # set_weights needs them deployed only, not loadable
        h.deploy(HostedModel(TENANT, version, f"tenants/{TENANT}/models/{version}.bin", "0" * 64))
    h.set_weights(TENANT, {STABLE: 9_000, CANARY: 1_000})
    return h


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


@pytest.fixture
def deps(tmp_path: Path, host: LocalModelHost) -> AlarmDeps:
    return AlarmDeps(
        model_host=host,
        rollback_log=FileRollbackLog(tmp_path / "rollback-log.jsonl"),
        metrics=InMemoryMetrics(),
        clock=lambda: datetime(2025, 3, 1, 10, 0, 5, tzinfo=UTC),
    )
