"""The console's review pages over HTTP: queue summary and reasons, bulk actions on a selection,
a verdict that claims first and opens the next item, escalation and resolution, card history."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.monitoring.orm import ScoredTransaction
from control_plane.orm_base import utcnow
from control_plane.review.orm import ReviewItem
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.review.conftest import T0, IngestFn, flagged, key_id


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _sign_in(client: TestClient, token: str) -> str:
    """Sign in with a key; returns the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/console/sign-in")
    resp = client.post(
        "/console/sign-in", data={"token": token, "csrf": _csrf(page.text)}, follow_redirects=False
    )
    assert resp.status_code == 303, resp.text
    return _csrf(client.get("/console/queue").text)


def _review(client: TestClient, token: str, rid: str) -> dict[str, Any]:
    resp = client.get(f"/v1/reviews/{rid}", headers=auth(token))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_the_queue_shows_total_oldest_wait_and_top_reasons_and_a_filter_error_inline(
    client: TestClient, onboard: OnboardFn, ingest: IngestFn, container: State
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    ids = ingest(t["id"], *[flagged(n, score=0.5 + n / 100) for n in range(1, 4)])
    with unit_of_work(container.factory) as s:
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.id == ids[0])
            .values(created_at=utcnow() - timedelta(hours=3, minutes=5))
        )
    _sign_in(client, t["analyst"])
    page = client.get("/console/queue")
    assert page.status_code == 200
    assert re.search(r'data-testid="total">3<', page.text)
    assert re.search(r'data-testid="oldest">3 h [5-6] min<', page.text)
    assert page.text.count('<code class="reason">AMOUNT_HIGH</code>') == 3
    # A filter error is said inline, and the page does not claim the queue is empty.
    bad = client.get("/console/queue", params={"score_min": "7"})
    assert bad.status_code == 422 and 'data-testid="form-errors"' in bad.text and "score_min" in bad.text
    assert "The open queue is empty" not in bad.text and "the filter above has errors" in bad.text
    assert 'data-testid="total"' not in bad.text


def test_a_verdict_without_a_claim_claims_first_and_the_next_open_item_opens(
    client: TestClient, onboard: OnboardFn, ingest: IngestFn
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    first, second = ingest(t["id"], flagged(1, score=0.9), flagged(2, score=0.8))
    csrf = _sign_in(client, t["analyst"])
    resp = client.post(
        f"/console/reviews/{first}/verdict", data={"csrf": csrf, "verdict": "legit"}, follow_redirects=False
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/console/reviews/{second}?decided={first}"
    shown = client.get(resp.headers["location"])
    assert "Recorded legit for tx_0001" in shown.text and 'data-testid="txn-id">tx_0002<' in shown.text
    got = _review(client, t["analyst"], first)
    assert got["status"] == "decided" and got["decided_by"] == key_id(t["analyst"])
    audit = client.get(f"/v1/tenants/{t['id']}/audit", params={"limit": 100}, headers=auth(t["admin"])).json()
    actions = [e["action"] for e in audit if e["subject"] == first]
    assert "review.claimed" in actions and "review.decided" in actions
    # The last open item: after its verdict the queue opens, saying so.
    last = client.post(
        f"/console/reviews/{second}/verdict", data={"csrf": csrf, "verdict": "fraud"}, follow_redirects=False
    )
    assert last.headers["location"] == f"/console/queue?decided={second}"
    assert "Recorded fraud for tx_0002" in client.get(last.headers["location"]).text


def test_bulk_claim_and_verdict_on_a_selection_are_all_or_nothing(
    client: TestClient, onboard: OnboardFn, ingest: IngestFn
) -> None:
    a = onboard("alpha-co", scopes=("analyst",))
    b = onboard("beta-co", scopes=("analyst",))
    r1, r2, r3 = ingest(a["id"], flagged(1), flagged(2), flagged(3))
    (foreign,) = ingest(b["id"], flagged(9))
    csrf = _sign_in(client, a["analyst"])
    back = "status=open&sort=score"
    claimed = client.post(
        "/console/queue/bulk",
        data={"csrf": csrf, "action": "claim", "ids": [r1, r2], "back": back},
        follow_redirects=False,
    )
    assert claimed.status_code == 303 and "bulk=claim%3A2" in claimed.headers["location"]
    assert "Claimed 2 selected items" in client.get(claimed.headers["location"]).text
    assert {_review(client, a["analyst"], r)["status"] for r in (r1, r2)} == {"claimed"}
    # Another tenant's id in the selection: nothing changes, said inline on the queue.
    mixed = client.post(
        "/console/queue/bulk", data={"csrf": csrf, "action": "fraud", "ids": [r3, foreign], "back": back}
    )
    assert mixed.status_code == 409 and 'data-testid="problem"' in mixed.text
    assert "Nothing was changed" in mixed.text
    assert _review(client, a["analyst"], r3)["status"] == "open"
    assert _review(client, b["analyst"], foreign)["status"] == "open"
    done = client.post(
        "/console/queue/bulk",
        data={"csrf": csrf, "action": "legit", "ids": [r1, r2, r3], "note": "known customer", "back": back},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "bulk=legit%3A3" in done.headers["location"]
    got = _review(client, a["analyst"], r3)
    assert got["status"] == "decided" and got["verdict"] == "legit" and got["note"] == "known customer"
    empty = client.post("/console/queue/bulk", data={"csrf": csrf, "action": "fraud", "back": back})
    assert empty.status_code == 422 and "Select at least one item" in empty.text
    forged = client.post("/console/queue/bulk", data={"csrf": "forged", "action": "fraud", "ids": [r1]})
    assert forged.status_code == 403


def test_an_escalated_item_has_its_own_queue_and_a_tenant_admin_resolves_it(
    client: TestClient, onboard: OnboardFn, ingest: IngestFn
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    (rid,) = ingest(t["id"], flagged(1))
    csrf = _sign_in(client, t["analyst"])
    client.post(f"/console/reviews/{rid}/verdict", data={"csrf": csrf, "verdict": "escalate", "note": "big"})
    escalated = client.get("/console/queue", params={"status": "escalated"})
    assert f'data-review-id="{rid}"' in escalated.text and "escalated · by" in escalated.text
    assert f'data-review-id="{rid}"' not in client.get("/console/queue").text
    detail = client.get(f"/console/reviews/{rid}")
    assert 'data-testid="escalation"' in detail.text and "A tenant admin resolves it" in detail.text
    assert f"/console/reviews/{rid}/resolve" not in detail.text
    refused = client.post(f"/console/reviews/{rid}/resolve", data={"csrf": csrf, "verdict": "fraud"})
    assert refused.status_code == 403 and 'data-testid="problem"' in refused.text

    csrf = _sign_in(client, t["admin"])
    detail = client.get(f"/console/reviews/{rid}")
    assert f"/console/reviews/{rid}/resolve" in detail.text
    bad = client.post(f"/console/reviews/{rid}/resolve", data={"csrf": csrf, "verdict": "escalate"})
    assert bad.status_code == 422
    resolved = client.post(
        f"/console/reviews/{rid}/resolve",
        data={"csrf": csrf, "verdict": "fraud", "note": "confirmed"},
        follow_redirects=False,
    )
    assert resolved.status_code == 303
    got = _review(client, t["admin"], rid)
    assert got["status"] == "decided" and got["verdict"] == "fraud"
    assert got["escalated_by"] == key_id(t["analyst"]) and got["decided_by"] == key_id(t["admin"])


def test_card_history_lists_the_cards_scored_transactions_with_the_velocity_the_model_saw(
    client: TestClient, onboard: OnboardFn, ingest: IngestFn, container: State
) -> None:
    t = onboard("acme-pay", scopes=("analyst",))
    record = flagged(5, card="card_h")
    record["features"] = {"amount": 100.0, "card_nb_tx_1d": 6.0, "card_amount_sum_1d": 812.5}
    rid, older = ingest(t["id"], record, flagged(2, card="card_h"))
    with unit_of_work(container.factory) as s:
        for n, decision in ((1, "LEGIT"), (3, "LEGIT"), (4, "LEGIT")):
            s.add(
                ScoredTransaction(
                    tenant_id=t["id"],
                    txn_id=f"tx_{n:04d}",
                    ts=T0 + timedelta(minutes=n),
                    amount=Decimal("20.00"),
                    card_token="card_h",
                    terminal_id="term_1",
                    score=0.05,
                    decision=decision,
                    model_version=None,
                    cohort="stable",
                )
            )
        s.add(  # another card's transaction never shows
            ScoredTransaction(
                tenant_id=t["id"],
                txn_id="tx_other",
                ts=T0,
                amount=Decimal("1.00"),
                card_token="card_x",
                terminal_id="term_1",
                score=0.1,
                decision="LEGIT",
                model_version=None,
                cohort="stable",
            )
        )
    _sign_in(client, t["analyst"])
    page = client.get(f"/console/reviews/{rid}")
    assert page.status_code == 200
    history = page.text.split('data-testid="history"', 1)[1].split("</table>", 1)[0]
    order = re.findall(r"tx_\d{4}", history)
    assert order == ["tx_0005", "tx_0004", "tx_0003", "tx_0002", "tx_0001"]  # LEGIT ones too
    assert "tx_other" not in page.text and "not flagged" in history
    assert f'href="/console/reviews/{older}"' in history
    velocity = page.text.split('data-testid="velocity"', 1)[1].split("</dl>", 1)[0]
    assert '<span title="card_nb_tx_1d">Card&#39;s transactions in the last 24 hours</span>' in velocity
    assert "812.50" in velocity
    features = page.text.split('data-testid="features"', 1)[1].split("</table>", 1)[0]
    assert 'title="amount"' in features and "Transaction amount" in features
