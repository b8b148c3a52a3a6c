"""The review queue through the API: filters, sorts, keyset pages, the detail view, bad input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from control_plane.bootstrap.state import State
from control_plane.orm_base import utcnow
from control_plane.review.orm import ReviewItem
from tests.control_plane.conftest import auth
from tests.control_plane.review.conftest import T0, IngestFn, flagged


def _txns(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [i["txn_id"] for i in resp.json()["items"]]


@pytest.fixture
def mixed(tenant: dict[str, Any], ingest: IngestFn) -> list[str]:
    """Six items with distinct decisions, scores, amounts, cards, terminals and times."""
    return ingest(
        tenant["id"],
        flagged(1, score=0.95, amount="1200.00", card="card_a", terminal="term_x", decision="SUSPICIOUS"),
        flagged(2, score=0.55, amount="15.50", card="card_a", terminal="term_y", decision="REVIEW"),
        flagged(3, score=0.75, amount="310.00", card="card_b", terminal="term_x", decision="REVIEW"),
        flagged(4, score=0.85, amount="99.99", card="card_c", terminal="term_z", decision="SUSPICIOUS"),
        flagged(5, score=0.65, amount="5000.00", card="card_b", terminal="term_y", decision="REVIEW"),
        flagged(6, score=0.99, amount="42.00", card="card_c", terminal="term_x", decision="SUSPICIOUS"),
    )


def test_filters_each_narrow_the_queue(client: TestClient, tenant: dict[str, Any], mixed: list[str]) -> None:
    h = auth(tenant["analyst"])

    def q(**params: Any) -> set[str]:
        return set(_txns(client.get("/v1/reviews", params=params, headers=h)))

    assert q() == {f"tx_000{i}" for i in range(1, 7)}
    assert q(decision="REVIEW") == {"tx_0002", "tx_0003", "tx_0005"}
    assert q(score_min=0.8) == {"tx_0001", "tx_0004", "tx_0006"}
    assert q(score_min=0.6, score_max=0.8) == {"tx_0003", "tx_0005"}
    assert q(amount_min="100.00", amount_max="1200.00") == {"tx_0001", "tx_0003"}
    assert q(card_token="card_b") == {"tx_0003", "tx_0005"}
    assert q(terminal_id="term_x", decision="SUSPICIOUS") == {"tx_0001", "tx_0006"}
    since = (T0 + timedelta(minutes=2)).isoformat()
    until = (T0 + timedelta(minutes=4)).isoformat()
    assert q(since=since, until=until) == {"tx_0002", "tx_0003"}  # until is exclusive


def test_status_filter_counts_an_expired_claim_as_open(
    client: TestClient, tenant: dict[str, Any], mixed: list[str], container: State
) -> None:
    h = auth(tenant["analyst"])
    first, second, third = mixed[0], mixed[1], mixed[2]
    for rid in (first, second, third):
        assert client.post(f"/v1/reviews/{rid}/claim", headers=h).status_code == 200
    assert (
        client.post(f"/v1/reviews/{first}/verdict", json={"verdict": "legit"}, headers=h).status_code == 200
    )
    with container.factory() as s:  # the claim on the third item has run out
        s.execute(update(ReviewItem).where(ReviewItem.id == third).values(claim_expires_at=utcnow()))
        s.commit()

    def q(status: str) -> set[str]:
        return set(_txns(client.get("/v1/reviews", params={"status": status}, headers=h)))

    assert q("decided") == {"tx_0001"}
    assert q("claimed") == {"tx_0002"}
    assert q("open") == {"tx_0003", "tx_0004", "tx_0005", "tx_0006"}
    listed = client.get("/v1/reviews", params={"card_token": "card_b"}, headers=h).json()["items"]
    expired = next(i for i in listed if i["txn_id"] == "tx_0003")
    assert expired["status"] == "open" and expired["claimed_by"] is None


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("score", "desc", ["tx_0006", "tx_0001", "tx_0004", "tx_0003", "tx_0005", "tx_0002"]),
        ("score", "asc", ["tx_0002", "tx_0005", "tx_0003", "tx_0004", "tx_0001", "tx_0006"]),
        ("amount", "desc", ["tx_0005", "tx_0001", "tx_0003", "tx_0004", "tx_0006", "tx_0002"]),
        ("amount", "asc", ["tx_0002", "tx_0006", "tx_0004", "tx_0003", "tx_0001", "tx_0005"]),
        ("age", "desc", ["tx_0001", "tx_0002", "tx_0003", "tx_0004", "tx_0005", "tx_0006"]),  # oldest first
        ("age", "asc", ["tx_0006", "tx_0005", "tx_0004", "tx_0003", "tx_0002", "tx_0001"]),
    ],
)
def test_sorts(
    client: TestClient, tenant: dict[str, Any], mixed: list[str], sort: str, order: str, expected: list[str]
) -> None:
    resp = client.get("/v1/reviews", params={"sort": sort, "order": order}, headers=auth(tenant["analyst"]))
    assert _txns(resp) == expected


def _all_pages(client: TestClient, token: str, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        resp = client.get(
            "/v1/reviews", params={**params, "cursor": cursor} if cursor else params, headers=auth(token)
        )
        seen += _txns(resp)
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("sort", "order"), [(s, o) for s in ("score", "amount", "age") for o in ("asc", "desc")]
)
def test_cursor_pages_cover_everything_once_with_ties(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn, sort: str, order: str
) -> None:
    # Many equal scores, amounts and times: the id breaks ties, so no item is skipped or repeated.
    payloads = [
        flagged(
            n,
            score=[0.7, 0.8, 0.9][n % 3],
            amount=["10.00", "20.00"][n % 2],
            ts=T0 + timedelta(minutes=n // 4),
        )
        for n in range(23)
    ]
    ingest(tenant["id"], *payloads)
    whole = _txns(
        client.get(
            "/v1/reviews",
            params={"sort": sort, "order": order, "limit": 200},
            headers=auth(tenant["analyst"]),
        )
    )
    paged = _all_pages(client, tenant["analyst"], sort=sort, order=order, limit=4)
    assert paged == whole
    assert len(paged) == len(set(paged)) == 23


def test_pages_are_stable_under_inserts(client: TestClient, tenant: dict[str, Any], ingest: IngestFn) -> None:
    ingest(tenant["id"], *[flagged(n, score=0.5 + n / 100) for n in range(10)])
    h = auth(tenant["analyst"])
    first = client.get("/v1/reviews", params={"limit": 4}, headers=h).json()
    # New items land both before the cursor (high scores) and after it (low scores).
    ingest(tenant["id"], flagged(50, score=0.99), flagged(51, score=0.01))
    rest = _all_pages(client, tenant["analyst"], limit=4, cursor=first["next_cursor"])
    seen = [i["txn_id"] for i in first["items"]] + rest
    originals = {f"tx_{n:04d}" for n in range(10)}
    assert originals <= set(seen) and len(seen) == len(set(seen))
    assert "tx_0050" not in seen and "tx_0051" in seen


def test_detail_has_transaction_reasons_features_and_card_history(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    ids = ingest(
        tenant["id"], *[flagged(n, card="card_hot") for n in range(23)], flagged(99, card="card_cold")
    )
    resp = client.get(f"/v1/reviews/{ids[5]}", headers=auth(tenant["analyst"]))
    assert resp.status_code == 200, resp.text
    d = resp.json()
    assert d["txn_id"] == "tx_0005" and d["score"] == 0.9 and d["model_version"] == "mv_example"
    assert d["amount"] == "100.00" and d["currency"] == "USD" and d["status"] == "open"
    assert d["reasons"][0]["code"] == "AMOUNT_HIGH"
    assert d["features"] == {"amount": 412.5, "card_nb_tx_1d": 4.0}
    assert d["transaction"]["channel"] == "ecom" and d["transaction"]["country"] == "FR"
    history = [h["txn_id"] for h in d["history"]]
    assert len(history) == 20 and "tx_0005" not in history and "tx_0099" not in history
    assert history[:3] == ["tx_0022", "tx_0021", "tx_0020"]  # newest first
    # Tenant admins may read too.
    assert client.get(f"/v1/reviews/{ids[5]}", headers=auth(tenant["admin"])).status_code == 200
    assert Decimal(
        client.get("/v1/reviews", headers=auth(tenant["admin"])).json()["items"][0]["amount"]
    ) == Decimal("100")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"score_min": 2}, "score_min"),
        ({"score_min": 0.8, "score_max": 0.2}, "score_max"),
        ({"amount_min": "-1"}, "amount_min"),
        ({"amount_min": "50", "amount_max": "10"}, "amount_max"),
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"sort": "merchant"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"status": "pending"}, "status"),
        ({"decision": "LEGIT"}, "decision"),
        ({"since": "2026-11-01T10:00:00"}, "since"),  # no time zone
        ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_list_input_is_422_naming_the_field(
    client: TestClient, tenant: dict[str, Any], params: dict[str, Any], field: str
) -> None:
    resp = client.get("/v1/reviews", params=params, headers=auth(tenant["analyst"]))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["field"] == field


def test_a_cursor_only_works_with_its_own_sort(
    client: TestClient, tenant: dict[str, Any], ingest: IngestFn
) -> None:
    ingest(tenant["id"], *[flagged(n) for n in range(3)])
    h = auth(tenant["analyst"])
    cursor = client.get("/v1/reviews", params={"limit": 1, "sort": "score"}, headers=h).json()["next_cursor"]
    resp = client.get("/v1/reviews", params={"limit": 1, "sort": "amount", "cursor": cursor}, headers=h)
    assert resp.status_code == 422 and resp.json()["field"] == "cursor"
