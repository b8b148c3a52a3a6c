"""Flagged records become review items: from the bus, idempotently, validated against the contract."""

from __future__ import annotations

import logging
from typing import Any, get_type_hints

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from control_plane.bootstrap.state import State
from control_plane.errors import InvalidInput
from control_plane.review import service
from control_plane.review.contract import FLAGGED_TOPIC, FlaggedPayload, FlaggedTransaction
from control_plane.review.orm import ReviewItem
from control_plane.review.schemas import FlaggedPayloadIn, FlaggedTransactionIn
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.review.conftest import IngestFn, flagged


def _count(container: State, tenant_id: str) -> int:
    with container.factory() as s:
        stmt = select(func.count()).select_from(ReviewItem).where(ReviewItem.tenant_id == tenant_id)
        return int(s.scalar(stmt) or 0)


def test_the_ingest_model_reads_every_field_of_the_contract() -> None:
    assert set(get_type_hints(FlaggedPayload)) <= set(FlaggedPayloadIn.model_fields)
    assert set(get_type_hints(FlaggedTransaction)) <= set(FlaggedTransactionIn.model_fields)


def test_flagged_stored_messages_are_ingested_once(
    client: TestClient, tenant: dict[str, Any], container: State
) -> None:
    bus = container.providers.event_bus
    message = {**flagged(1), "tenant_id": tenant["id"]}
    bus.publish(FLAGGED_TOPIC, message)
    items = client.get("/v1/reviews", headers=auth(tenant["analyst"])).json()["items"]
    assert [i["txn_id"] for i in items] == ["tx_0001"]
    rid = items[0]["id"]
    client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst"]))
    bus.publish(FLAGGED_TOPIC, {**message, "score": 0.1})  # a replay changes nothing
    assert _count(container, tenant["id"]) == 1
    again = client.get(f"/v1/reviews/{rid}", headers=auth(tenant["analyst"])).json()
    assert again["status"] == "claimed" and again["score"] == 0.9
    assert "tenant_id" not in again["transaction"]
    with container.factory() as s:
        stored = s.get(ReviewItem, rid)
        assert (
            stored is not None
            and "tenant_id" not in stored.payload
            and stored.payload["flagged_id"] == "flg_0001"
        )


def test_the_same_flagged_id_in_two_tenants_is_two_items(
    onboard: OnboardFn, ingest: IngestFn, container: State
) -> None:
    a, b = onboard("alpha-co"), onboard("beta-co")
    (ra,) = ingest(a["id"], flagged(1))
    (rb,) = ingest(b["id"], flagged(1))
    assert ra != rb and _count(container, a["id"]) == _count(container, b["id"]) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decision": "LEGIT"}, "decision"),
        ({"score": "high"}, "score"),
        ({"flagged_id": ""}, "flagged_id"),
        ({"transaction": {**flagged(1)["transaction"], "ts": "2026-11-01T09:00:00"}}, "transaction.ts"),
        ({"transaction": {**flagged(1)["transaction"], "txn_id": "tx_other"}}, "transaction.txn_id"),
    ],
)
def test_an_invalid_record_is_refused_naming_the_field(
    container: State, tenant: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    with container.factory() as s, pytest.raises(InvalidInput) as info:
        service.ingest(s, tenant["id"], {**flagged(1), **change})
    assert info.value.field == field


def test_a_bad_message_on_the_bus_is_logged_and_dropped(
    tenant: dict[str, Any], container: State, caplog: pytest.LogCaptureFixture
) -> None:
    bus = container.providers.event_bus
    with caplog.at_level(logging.ERROR):
        bus.publish(FLAGGED_TOPIC, flagged(1))  # no tenant_id
        bus.publish(FLAGGED_TOPIC, {**flagged(2), "tenant_id": "ten_unknown"})
    assert _count(container, tenant["id"]) == 0
    assert sum("flagged.stored" in r.getMessage() for r in caplog.records) == 2


def test_offboarding_purges_review_items_and_proves_it(
    client: TestClient, admin_key: str, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst"]))
    client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud"}, headers=auth(tenant["analyst"]))
    resp = client.delete(f"/v1/tenants/{tenant['id']}", headers=auth(admin_key))
    assert resp.status_code == 200, resp.text
    stores = {s["store"]: s for s in resp.json()["stores"]}
    assert stores["review_items"]["purged"] == 1 and stores["review_items"]["remaining"] == []
