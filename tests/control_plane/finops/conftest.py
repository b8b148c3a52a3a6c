"""FinOps fixtures: clocks you move by hand, usage written directly, tenant contacts on a loopback sink."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

import pytest

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.finops.prices import Meter
from control_plane.finops.service import UsageRecord, record_usage
from control_plane.tenants.orm import Tenant
from providers.ports import DeliveryResult, Notification
from tests.control_plane.scoring.conftest import (  # noqa: F401  (fixtures shared with the scoring tests)
    live_tenant,
    sim_frame,
    trained_artifact,
)
from tests.webhook_sink import WebhookSink

_ids = count()


class FakeClock:
    """A float clock (seconds since the epoch) for the rate limiter."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], Notification]] = []

    def send(self, contacts: Mapping[str, Any], note: Notification) -> list[DeliveryResult]:
        self.sent.append((dict(contacts), note))
        return [DeliveryResult("slack", "test://", True, 200, 1)]


def record(
    c: State,
    tenant_id: str,
    meter: Meter,
    quantity: Decimal | int | str,
    at: datetime,
    *,
    event_id: str | None = None,
) -> bool:
    """Write one usage record as the meters would (priced at the tenant's tier)."""
    with unit_of_work(c.factory) as s:
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
        rec = UsageRecord(
            id=event_id or f"test:{next(_ids)}",
            tenant_id=tenant_id,
            meter=meter,
            quantity=Decimal(str(quantity)),
            occurred_at=at,
            source="test",
        )
        return record_usage(s, c.finops.prices, c.template(tenant.tier), rec, now=at)


def spend(c: State, tenant_id: str, amount: Decimal | str, at: datetime) -> None:
    """Usage costing exactly ``amount`` (training seconds at the tier's price)."""
    with c.factory() as s:
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
        tier = tenant.tier
    price = c.finops.prices.unit_price(Meter.TRAINING_SECONDS, tier)
    record(c, tenant_id, Meter.TRAINING_SECONDS, Decimal(str(amount)) / price, at)


def set_contacts(c: State, tenant_id: str, contacts: Mapping[str, Any]) -> None:
    with unit_of_work(c.factory) as s:
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.contacts = dict(contacts)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def notifier(container: State) -> RecordingNotifier:
    recording = RecordingNotifier()
    container.finops.enforcer.notifier = recording
    return recording


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


@pytest.fixture
def limiter_clock(container: State) -> FakeClock:
    clock = FakeClock()
    container.finops.limiter.clock = clock
    return clock


@pytest.fixture(autouse=True)
def _quiet_background(container: State) -> None:
    """Tests flush and tick by hand: the background flusher waits longer than any test."""
    container.finops.settings.flush_interval_s = 3600.0
