"""Claims, verdicts, reopening, bulk verdicts, labels and the audit trail they leave."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from control_plane.auth.scopes import Principal, Scope
from control_plane.bootstrap.state import State
from control_plane.errors import Conflict
from control_plane.orm_base import utcnow
from control_plane.outbox.orm import OutboxEvent
from control_plane.review import bulk, repository, service
from control_plane.review.orm import ReviewItem
from tests.control_plane.conftest import auth
from tests.control_plane.review.conftest import IngestFn, flagged, key_id


def _expire_claim(container: State, review_id: str) -> None:
    with container.factory() as s:
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.id == review_id)
            .values(claim_expires_at=utcnow() - timedelta(seconds=1))
        )
        s.commit()


def _audit(client: TestClient, tenant: dict[str, Any], prefix: str = "review.") -> list[dict[str, Any]]:
    events = client.get(
        f"/v1/tenants/{tenant['id']}/audit", params={"limit": 1000}, headers=auth(tenant["admin"])
    ).json()
    return [e for e in events if e["action"].startswith(prefix)]


def test_claim_leases_for_an_hour_and_the_holder_may_extend(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    before = utcnow()
    resp = client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst"]))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "claimed" and body["claimed_by"] == key_id(tenant["analyst"])
    expires = body["claim_expires_at"]
    lease = datetime.fromisoformat(expires) - before
    assert timedelta(minutes=59) < lease <= timedelta(minutes=61)
    again = client.post(f"/v1/reviews/{rid}/claim", json={"minutes": 240}, headers=auth(tenant["analyst"]))
    assert again.status_code == 200
    assert datetime.fromisoformat(again.json()["claim_expires_at"]) - before > timedelta(minutes=230)


def test_someone_elses_live_claim_is_409_naming_holder_and_expiry(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn, container: State
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    first = client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst"])).json()
    resp = client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst2"]))
    assert resp.status_code == 409
    problem = resp.json()
    assert problem["claimed_by"] == key_id(tenant["analyst"]) == first["claimed_by"]
    assert problem["claim_expires_at"] == first["claim_expires_at"].replace("Z", "+00:00")
    assert key_id(tenant["analyst"]) in problem["detail"]

    _expire_claim(container, rid)  # an expired lease frees the item
    taken = client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst2"]))
    assert taken.status_code == 200 and taken.json()["claimed_by"] == key_id(tenant["analyst2"])


def _race_for_claim(container: State, tenant_id: str, rid: str, principals: list[Principal]) -> list[str]:
    """Each principal claims ``rid`` in its own session and thread, released at the same moment."""
    start = threading.Barrier(len(principals))
    outcomes: list[str] = []

    def race(principal: Principal) -> None:
        session = container.factory()
        try:
            start.wait(timeout=10)
            service.claim(session, tenant_id, rid, principal=principal, minutes=60, now=utcnow())
            session.commit()
            outcomes.append("won")
        except Conflict:
            session.rollback()
            outcomes.append("lost")
        finally:
            session.close()

    threads = [threading.Thread(target=race, args=(p,)) for p in principals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_two_sessions_racing_for_a_claim_never_both_win(
    container: State, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    analysts = [
        Principal(key_id=key_id(tenant[k]), scope=Scope.ANALYST, tenant_id=tenant["id"])
        for k in ("analyst", "analyst2")
    ]
    for n in range(5):
        (rid,) = ingest(tenant["id"], flagged(n))
        outcomes = _race_for_claim(container, tenant["id"], rid, analysts)
        assert sorted(outcomes) == ["lost", "won"], outcomes
        with container.factory() as s:
            item = repository.get(s, tenant["id"], rid)
            assert item.status == "claimed" and item.claimed_by in {p.key_id for p in analysts}


def test_claim_is_for_analysts_and_a_decided_item_cannot_be_claimed(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    assert client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["admin"])).status_code == 403
    client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst"]))
    client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud"}, headers=auth(tenant["analyst"]))
    resp = client.post(f"/v1/reviews/{rid}/claim", headers=auth(tenant["analyst2"]))
    assert resp.status_code == 409 and resp.json()["field"] == "status"


def test_verdict_needs_the_live_claim_and_is_final(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn, container: State
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    a1, a2 = auth(tenant["analyst"]), auth(tenant["analyst2"])
    unclaimed = client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud"}, headers=a1)
    assert unclaimed.status_code == 409 and "claim" in unclaimed.json()["detail"]
    client.post(f"/v1/reviews/{rid}/claim", headers=a1)
    other = client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "legit"}, headers=a2)
    assert other.status_code == 409 and other.json()["claimed_by"] == key_id(tenant["analyst"])

    _expire_claim(container, rid)
    lapsed = client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud"}, headers=a1)
    assert lapsed.status_code == 409 and "expired" in lapsed.json()["detail"]

    client.post(f"/v1/reviews/{rid}/claim", headers=a1)
    ok = client.post(
        f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud", "note": "card testing"}, headers=a1
    )
    assert ok.status_code == 200, ok.text
    d = ok.json()
    assert d["status"] == "decided" and d["verdict"] == "fraud" and d["note"] == "card testing"
    assert d["decided_by"] == key_id(tenant["analyst"]) and d["claimed_by"] is None
    second = client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "legit"}, headers=a1)
    assert second.status_code == 409 and second.json()["verdict"] == "fraud"
    admin_second = client.post(
        f"/v1/reviews/{rid}/verdict", json={"verdict": "legit"}, headers=auth(tenant["admin"])
    )
    assert admin_second.status_code == 409


def test_tenant_admin_decides_without_a_claim_even_over_another(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    r1, r2 = ingest(tenant["id"], flagged(1), flagged(2))
    adm = auth(tenant["admin"])
    assert client.post(f"/v1/reviews/{r1}/verdict", json={"verdict": "legit"}, headers=adm).status_code == 200
    client.post(f"/v1/reviews/{r2}/claim", headers=auth(tenant["analyst"]))
    resp = client.post(f"/v1/reviews/{r2}/verdict", json={"verdict": "escalate"}, headers=adm)
    assert resp.status_code == 200 and resp.json()["verdict"] == "escalate"
    assert resp.json()["status"] == "escalated"
    decided = [e for e in _audit(client, tenant) if e["action"] == "review.escalated" and e["subject"] == r2]
    assert decided[0]["evidence"]["override_claim_of"] == key_id(tenant["analyst"])


def test_reopen_is_for_tenant_admins_with_a_reason(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    (rid,) = ingest(tenant["id"], flagged(1))
    a1, adm = auth(tenant["analyst"]), auth(tenant["admin"])
    not_decided = client.post(f"/v1/reviews/{rid}/reopen", json={"reason": "x"}, headers=adm)
    assert not_decided.status_code == 409
    client.post(f"/v1/reviews/{rid}/claim", headers=a1)
    client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud"}, headers=a1)
    assert client.post(f"/v1/reviews/{rid}/reopen", json={"reason": "x"}, headers=a1).status_code == 403
    no_reason = client.post(f"/v1/reviews/{rid}/reopen", json={"reason": ""}, headers=adm)
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    resp = client.post(f"/v1/reviews/{rid}/reopen", json={"reason": "chargeback says legit"}, headers=adm)
    assert resp.status_code == 200 and resp.json()["status"] == "open" and resp.json()["verdict"] is None
    client.post(f"/v1/reviews/{rid}/claim", headers=a1)
    again = client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "legit"}, headers=a1)
    assert again.status_code == 200 and again.json()["verdict"] == "legit"


def test_every_state_change_is_audited_with_actor_and_before_after(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    r1, r2 = ingest(tenant["id"], flagged(1), flagged(2, decision="REVIEW"))
    a1, adm = auth(tenant["analyst"]), auth(tenant["admin"])
    client.post(f"/v1/reviews/{r1}/claim", headers=a1)
    client.post(f"/v1/reviews/{r1}/verdict", json={"verdict": "fraud", "note": "stolen card"}, headers=a1)
    client.post(f"/v1/reviews/{r1}/reopen", json={"reason": "second look"}, headers=adm)
    bulk = client.post(
        "/v1/reviews/bulk-verdict",
        json={"filter": {"decision": "REVIEW"}, "verdict": "legit", "note": "known merchant"},
        headers=a1,
    )
    assert bulk.status_code == 200, bulk.text
    events = _audit(client, tenant)
    by_action = {e["action"]: e for e in events}
    assert [e["action"] for e in events] == [
        "review.claimed",
        "review.decided",
        "review.reopened",
        "review.decided",
        "review.bulk_decided",
    ]
    analyst_actor = f"key:{key_id(tenant['analyst'])}"
    claimed = by_action["review.claimed"]
    assert claimed["actor"] == analyst_actor and claimed["subject"] == r1
    assert claimed["before"]["status"] == "open" and claimed["after"]["status"] == "claimed"
    decided = events[1]
    assert decided["reason"] == "stolen card" and decided["before"]["status"] == "claimed"
    assert decided["after"] == {**decided["after"], "status": "decided", "verdict": "fraud"}
    reopened = by_action["review.reopened"]
    assert reopened["actor"] == f"key:{key_id(tenant['admin'])}" and reopened["reason"] == "second look"
    assert reopened["before"]["verdict"] == "fraud" and reopened["after"]["status"] == "open"
    bulk_event = by_action["review.bulk_decided"]
    assert bulk_event["reason"] == "known merchant" and bulk_event["evidence"]["ids"] == [r2]
    assert bulk_event["evidence"]["filter"] == {"decision": "REVIEW"}
    assert events[3]["subject"] == r2 and events[3]["evidence"]["bulk_id"] == bulk_event["subject"]


def _states(container: State, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    with container.factory() as s:
        rows = s.scalars(select(ReviewItem).where(ReviewItem.id.in_(ids)))
        return {r.id: (r.status, r.verdict) for r in rows}


def test_bulk_verdict_is_all_or_nothing(
    client: TestClient,
    tenant: dict[str, Any],
    ingest: IngestFn,
    container: State,
    labels_seen: list[dict[str, Any]],
) -> None:
    ids = ingest(
        tenant["id"], *[flagged(n, terminal="term_bad") for n in range(6)], flagged(9, terminal="ok")
    )
    a1, a2 = auth(tenant["analyst"]), auth(tenant["analyst2"])
    client.post(f"/v1/reviews/{ids[0]}/claim", headers=a1)  # the caller's own claim does not block
    client.post(f"/v1/reviews/{ids[1]}/claim", headers=a2)  # someone else's does
    client.post(f"/v1/reviews/{ids[2]}/claim", headers=a2)
    client.post(f"/v1/reviews/{ids[2]}/verdict", json={"verdict": "legit"}, headers=a2)  # decided blocks
    labels_seen.clear()
    before = _states(container, ids)
    body = {"filter": {"terminal_id": "term_bad"}, "verdict": "fraud", "note": "terminal compromised"}

    blocked = client.post("/v1/reviews/bulk-verdict", json=body, headers=a1)
    assert blocked.status_code == 409, blocked.text
    problem = blocked.json()
    assert {b["id"] for b in problem["blockers"]} == {ids[1], ids[2]}
    assert problem["blocker_count"] == 2 and problem["matched"] == 6
    holder = next(b for b in problem["blockers"] if b["id"] == ids[1])
    assert holder["claimed_by"] == key_id(tenant["analyst2"])
    assert _states(container, ids) == before and labels_seen == []

    wrong_count = client.post(
        "/v1/reviews/bulk-verdict",
        json={**body, "filter": {"terminal_id": "term_bad", "status": "open"}, "expected_count": 5},
        headers=a1,
    )
    assert wrong_count.status_code == 409 and wrong_count.json()["matched"] == 3
    assert _states(container, ids) == before

    # Narrowed to what is open, the same verdict applies to every match, and only to the matches.
    narrowed = {**body, "filter": {"terminal_id": "term_bad", "status": "open"}, "expected_count": 3}
    done = client.post("/v1/reviews/bulk-verdict", json=narrowed, headers=a1)
    assert done.status_code == 200, done.text
    assert done.json()["count"] == 3 and set(done.json()["ids"]) == set(ids[3:6])
    after = _states(container, ids)
    assert all(after[i] == ("decided", "fraud") for i in ids[3:6])
    assert after[ids[0]] == ("claimed", None) and after[ids[1]] == ("claimed", None)
    assert after[ids[2]] == ("decided", "legit") and after[ids[6]] == ("open", None)
    assert sorted(m["txn_id"] for m in labels_seen) == ["tx_0003", "tx_0004", "tx_0005"]


def test_bulk_includes_items_the_caller_holds_and_refuses_to_touch_everything(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    ids = ingest(tenant["id"], flagged(1, card="c9"), flagged(2, card="c9"))
    a1 = auth(tenant["analyst"])
    client.post(f"/v1/reviews/{ids[0]}/claim", headers=a1)
    empty = client.post("/v1/reviews/bulk-verdict", json={"filter": {}, "verdict": "legit"}, headers=a1)
    assert empty.status_code == 422 and empty.json()["field"] == "filter"
    bad = client.post(
        "/v1/reviews/bulk-verdict", json={"filter": {"card_token": "c9"}, "verdict": "maybe"}, headers=a1
    )
    assert bad.status_code == 422 and bad.json()["field"] == "verdict"
    ok = client.post(
        "/v1/reviews/bulk-verdict",
        json={"filter": {"card_token": "c9"}, "verdict": "legit", "expected_count": 2},
        headers=a1,
    )
    assert ok.status_code == 200 and ok.json()["count"] == 2
    assert (
        client.post(
            "/v1/reviews/bulk-verdict",
            json={"filter": {"card_token": "c9"}, "verdict": "legit"},
            headers=auth(tenant["app"]),
        ).status_code
        == 403
    )


def test_bulk_that_loses_a_race_changes_nothing(
    container: State, tenant: dict[str, Any], ingest: IngestFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = ingest(tenant["id"], *[flagged(n, card="c7") for n in range(3)])
    me = Principal(key_id=key_id(tenant["analyst"]), scope=Scope.ANALYST, tenant_id=tenant["id"])
    rival = Principal(key_id=key_id(tenant["analyst2"]), scope=Scope.ANALYST, tenant_id=tenant["id"])
    real_matching = repository.matching

    def matching_then_rival_claims(*args: Any, **kwargs: Any) -> list[ReviewItem]:
        rows = real_matching(*args, **kwargs)
        with container.factory() as other:  # another analyst claims one between our read and write
            service.claim(other, tenant["id"], ids[1], principal=rival, minutes=60, now=utcnow())
            other.commit()
        return rows

    monkeypatch.setattr(repository, "matching", matching_then_rival_claims)
    from control_plane.review.schemas import BulkVerdictRequest

    request = BulkVerdictRequest.model_validate({"filter": {"card_token": "c7"}, "verdict": "fraud"})
    session = container.factory()
    with pytest.raises(Conflict, match="meanwhile"):
        bulk.bulk_decide(session, tenant["id"], request, principal=me, now=utcnow())
    session.rollback()
    session.close()
    states = _states(container, ids)
    assert states[ids[0]] == ("open", None) and states[ids[2]] == ("open", None)
    assert states[ids[1]] == ("claimed", None)
    with container.factory() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_analyst_labels_map_txn_to_fraud_or_legit(
    client: TestClient,
    tenant: dict[str, Any],
    ingest: IngestFn,
    container: State,
    labels_seen: list[dict[str, Any]],
) -> None:
    r1, r2, r3, r4, _ = ingest(tenant["id"], *[flagged(n) for n in range(1, 6)])
    adm = auth(tenant["admin"])
    for rid, verdict in ((r1, "fraud"), (r2, "legit"), (r3, "escalate"), (r4, "fraud")):
        assert (
            client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": verdict}, headers=adm).status_code
            == 200
        )
    client.post(f"/v1/reviews/{r4}/reopen", json={"reason": "wrong card"}, headers=adm)
    with container.factory() as s:
        assert service.analyst_labels(s, tenant["id"]) == {"tx_0001": 1, "tx_0002": 0}
    published = {m["txn_id"]: m for m in labels_seen}
    assert set(published) == {"tx_0001", "tx_0002", "tx_0004"}  # escalations carry no label
    m = published["tx_0001"]
    assert m["tenant_id"] == tenant["id"] and m["label"] == 1 and m["card_token"] == "card_1"
    assert m["terminal_id"] == "term_1" and m["ts"].startswith("2026-11-01T09:01")
    assert published["tx_0002"]["label"] == 0
