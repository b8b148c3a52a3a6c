"""From the fraud-check hot path to a label: flagged → review item → claim → verdict → label.recorded."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.review import service
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, live_tenant, sim_frame, trained_artifact, txn  # noqa: F401


def test_a_flagged_transaction_becomes_a_review_item_and_its_verdict_a_label(
    client: TestClient,
    live_tenant: LiveFn,  # noqa: F811 - the fixture imported above
    container: State,
    labels_seen: list[dict[str, Any]],
) -> None:
    t = live_tenant()
    config = {"review_threshold": "0.5", "suspicious_threshold": "0.8", "block_cards": ["card_stolen"]}
    assert client.put("/v1/scoring-config", json=config, headers=auth(t["admin"])).status_code == 200
    checked = client.post(
        "/v1/fraud-check", json=txn("tx_b", card_token="card_stolen"), headers=auth(t["app"])
    )
    assert checked.json()["decision"] == "SUSPICIOUS"
    container.scoring.spool.drain(container.scoring.drainer.sink)

    items = client.get("/v1/reviews", headers=auth(t["analyst"])).json()["items"]
    assert [i["txn_id"] for i in items] == ["tx_b"]
    rid = items[0]["id"]
    detail = client.get(f"/v1/reviews/{rid}", headers=auth(t["analyst"])).json()
    assert detail["reasons"][0]["code"] == "BLOCKLIST_CARD" and detail["model_version"] == t["model"]
    assert detail["amount"] == "42.50" and "card_nb_tx_1d" in detail["features"]

    assert client.post(f"/v1/reviews/{rid}/claim", headers=auth(t["analyst"])).status_code == 200
    decided = client.post(f"/v1/reviews/{rid}/verdict", json={"verdict": "fraud"}, headers=auth(t["analyst"]))
    assert decided.status_code == 200
    assert [(m["txn_id"], m["label"], m["terminal_id"]) for m in labels_seen] == [("tx_b", 1, "term_7")]
    with container.factory() as s:
        assert service.analyst_labels(s, t["id"]) == {"tx_b": 1}
