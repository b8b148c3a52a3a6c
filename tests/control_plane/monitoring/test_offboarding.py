"""Offboarding removes a tenant's monitoring data, stored and still in memory."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from control_plane.bootstrap.state import State
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, TransactionLabel
from tests.control_plane.conftest import auth
from tests.control_plane.monitoring.conftest import score
from tests.control_plane.scoring.conftest import sim_requests


def test_offboarding_purges_monitoring_data(
    client: TestClient,
    container: State,
    admin_key: str,
    monitored: dict[str, Any],
    sim_frame: pd.DataFrame,
) -> None:
    requests = sim_requests(sim_frame, 12)
    score(client, monitored, requests[:10])
    container.monitor.flush()
    label = {"txn_id": requests[0]["txn_id"], "label": "fraud", "known_at": "2018-05-01T00:00:00Z"}
    assert (
        client.post("/v1/labels", json={"items": [label]}, headers=auth(monitored["admin"])).status_code
        == 200
    )
    score(client, monitored, requests[10:])  # still in memory when the tenant leaves
    resp = client.delete(f"/v1/tenants/{monitored['id']}", headers=auth(admin_key))
    assert resp.status_code == 200, resp.text
    stores = {s["store"]: s for s in resp.json()["stores"]}
    assert stores["monitoring"]["remaining"] == [] and stores["monitoring"]["purged"] >= 12
    container.monitor.flush()  # nothing of the tenant is written back
    with container.factory() as session:
        for table in (DriftBucket, ScoredTransaction, TransactionLabel):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table.__tablename__
