"""Escalation is a status with its own queue; a tenant-admin resolves it. Bulk claims; the
queue's summary (total, oldest open item) and each item's top reason codes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.orm_base import utcnow
from control_plane.review import service
from control_plane.review.orm import ReviewItem
from tests.control_plane.conftest import auth
from tests.control_plane.review.conftest import IngestFn, flagged, key_id


def _audit(client: TestClient, tenant: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.get(
        f"/v1/tenants/{tenant['id']}/audit", params={"limit": 1000}, headers=auth(tenant["admin"])
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def test_an_escalated_item_waits_in_its_own_queue_until_a_tenant_admin_resolves_it(
    client: TestClient,
    tenant: dict[str, Any],
    ingest: IngestFn,
    container: State,
    labels_seen: list[dict[str, Any]],
) -> None:
    r1, r2 = ingest(tenant["id"], flagged(1), flagged(2))
    a1, adm = auth(tenant["analyst"]), auth(tenant["admin"])
    assert client.post(f"/v1/reviews/{r1}/claim", headers=a1).status_code == 200
    esc = client.post(f"/v1/reviews/{r1}/verdict", json={"verdict": "escalate", "note": "odd"}, headers=a1)
    assert esc.status_code == 200, esc.text
    body = esc.json()
    # An existing client still reads verdict "escalate"; the status says it is not final.
    assert body["status"] == "escalated" and body["verdict"] == "escalate"
    assert body["escalated_by"] == key_id(tenant["analyst"]) and body["escalation_note"] == "odd"
    assert body["decided_by"] is None and body["claimed_by"] is None

    def queue(status: str) -> list[str]:
        resp = client.get("/v1/reviews", params={"status": status}, headers=a1)
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["items"]]

    assert queue("escalated") == [r1] and queue("open") == [r2] and queue("decided") == []
    # Not claimable or decidable by analysts any more; the 409 says who resolves it.
    again = client.post(f"/v1/reviews/{r1}/claim", headers=auth(tenant["analyst2"]))
    assert again.status_code == 409 and again.json()["review_status"] == "escalated"
    assert "resolve" in again.json()["detail"]
    admin_verdict = client.post(f"/v1/reviews/{r1}/verdict", json={"verdict": "legit"}, headers=adm)
    assert admin_verdict.status_code == 409
    # Only a tenant-admin resolves, only an escalated item, only to fraud or legit.
    assert client.post(f"/v1/reviews/{r1}/resolve", json={"verdict": "fraud"}, headers=a1).status_code == 403
    assert client.post(f"/v1/reviews/{r2}/resolve", json={"verdict": "fraud"}, headers=adm).status_code == 409
    bad = client.post(f"/v1/reviews/{r1}/resolve", json={"verdict": "escalate"}, headers=adm)
    assert bad.status_code == 422 and "verdict" in bad.text
    assert labels_seen == []  # an escalation carries no label
    with container.factory() as s:
        assert service.analyst_labels(s, tenant["id"]) == {}

    done = client.post(
        f"/v1/reviews/{r1}/resolve", json={"verdict": "fraud", "note": "confirmed"}, headers=adm
    )
    assert done.status_code == 200, done.text
    d = done.json()
    assert d["status"] == "decided" and d["verdict"] == "fraud" and d["note"] == "confirmed"
    assert d["decided_by"] == key_id(tenant["admin"]) and d["escalated_by"] == key_id(tenant["analyst"])
    assert queue("escalated") == [] and queue("decided") == [r1]
    assert [m["txn_id"] for m in labels_seen] == ["tx_0001"] and labels_seen[0]["label"] == 1
    actions = [(e["action"], e["subject"]) for e in _audit(client, tenant)]
    assert ("review.escalated", r1) in actions and ("review.resolved", r1) in actions
    twice = client.post(f"/v1/reviews/{r1}/resolve", json={"verdict": "legit"}, headers=adm)
    assert twice.status_code == 409


def test_reopen_returns_an_escalated_item_to_the_open_queue(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    adm = auth(tenant["admin"])
    assert (
        client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "escalate"}, headers=adm).status_code
        == 200
    )
    back = client.post(f"/v1/reviews/{rid}/reopen", json={"reason": "needs a second look"}, headers=adm)
    assert back.status_code == 200 and back.json()["status"] == "open"
    assert back.json()["escalated_by"] is None and back.json()["verdict"] is None


def test_a_bulk_escalation_sends_every_matched_item_to_the_escalated_queue(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    r1, r2, r3 = ingest(tenant["id"], flagged(1, card="c9"), flagged(2, card="c9"), flagged(3))
    h = auth(tenant["analyst"])
    body = {"filter": {"card_token": "c9"}, "verdict": "escalate"}
    assert client.post("/v1/reviews/bulk-verdict", json=body, headers=h).status_code == 200
    items = client.get("/v1/reviews", params={"status": "escalated"}, headers=h).json()["items"]
    assert sorted(i["id"] for i in items) == sorted([r1, r2])
    # An escalated item blocks a later bulk verdict on it: all or nothing.
    blocked = client.post(
        "/v1/reviews/bulk-verdict", json={"filter": {"ids": [r1, r3]}, "verdict": "fraud"}, headers=h
    )
    assert blocked.status_code == 409 and blocked.json()["blockers"][0]["status"] == "escalated"
    assert client.get(f"/v1/reviews/{r3}", headers=h).json()["status"] == "open"


def test_bulk_claim_on_a_selection_is_all_or_nothing(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    r1, r2, r3 = ingest(tenant["id"], flagged(1), flagged(2), flagged(3))
    a1, a2 = auth(tenant["analyst"]), auth(tenant["analyst2"])
    assert client.post(f"/v1/reviews/{r3}/claim", headers=a2).status_code == 200
    refused = client.post("/v1/reviews/bulk-claim", json={"filter": {"ids": [r1, r3]}}, headers=a1)
    assert refused.status_code == 409 and refused.json()["blocker_count"] == 1
    assert client.get(f"/v1/reviews/{r1}", headers=a1).json()["status"] == "open"  # nothing changed
    ok = client.post("/v1/reviews/bulk-claim", json={"filter": {"ids": [r1, r2]}, "minutes": 5}, headers=a1)
    assert ok.status_code == 200, ok.text
    assert sorted(ok.json()["ids"]) == sorted([r1, r2]) and ok.json()["count"] == 2
    for rid in (r1, r2):
        got = client.get(f"/v1/reviews/{rid}", headers=a1).json()
        assert got["status"] == "claimed" and got["claimed_by"] == key_id(tenant["analyst"])
    # Then one bulk verdict on the same selection, through the all-or-nothing route.
    decided = client.post(
        "/v1/reviews/bulk-verdict", json={"filter": {"ids": [r1, r2]}, "verdict": "legit"}, headers=a1
    )
    assert decided.status_code == 200 and decided.json()["count"] == 2
    empty = client.post("/v1/reviews/bulk-claim", json={"filter": {}}, headers=a1)
    assert empty.status_code == 422 and "filter" in empty.text
    too_many = client.post("/v1/reviews/bulk-claim", json={"filter": {"ids": ["x"] * 1001}}, headers=a1)
    assert too_many.status_code == 422 and "ids" in too_many.text


def test_the_queue_counts_its_items_dates_the_oldest_open_one_and_names_top_reasons(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn, container: State
) -> None:
    ids = ingest(tenant["id"], *[flagged(n) for n in range(1, 6)])
    waited_since = utcnow().replace(microsecond=0) - timedelta(hours=5)
    with unit_of_work(container.factory) as s:
        s.execute(update(ReviewItem).where(ReviewItem.id == ids[2]).values(created_at=waited_since))
    h = auth(tenant["analyst"])
    page = client.get("/v1/reviews", params={"limit": 2}, headers=h).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert page["oldest_open_since"].startswith(waited_since.isoformat()[:19])
    first = page["items"][0]
    detail = client.get(f"/v1/reviews/{first['id']}", headers=h).json()
    ranked = sorted(detail["reasons"], key=lambda r: -r["contribution"])
    assert first["top_reasons"] == [r["code"] for r in ranked[:3]] and first["top_reasons"]
    # The count follows the filter; the oldest open item is the open queue's, whatever the filter.
    decided = client.get("/v1/reviews", params={"status": "decided"}, headers=h).json()
    assert decided["total"] == 0 and decided["oldest_open_since"] is not None
