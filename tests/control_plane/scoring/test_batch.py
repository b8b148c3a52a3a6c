"""Batch scoring gives the online path's decisions for the same transactions in the same order."""

from __future__ import annotations

import io

import pandas as pd
from fastapi.testclient import TestClient

from control_plane.jobs.worker import Worker
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, sim_requests


def test_batch_equals_online(
    client: TestClient, live_tenant: LiveFn, worker: Worker, sim_frame: pd.DataFrame
) -> None:
    t = live_tenant()
    config = {"review_threshold": "0.2", "suspicious_threshold": "0.6"}
    client.put("/v1/scoring-config", json=config, headers=auth(t["admin"]))
    rows = sim_frame.head(400).drop(columns=["is_fraud", "fraud_scenario"])
    csv = rows.to_csv(index=False).encode()
    started = client.post(
        "/v1/batch-scoring", files={"file": ("batch.csv", csv, "text/csv")}, headers=auth(t["admin"])
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert worker.run_once(job_id=job_id) == job_id
    status = client.get(f"/v1/batch-scoring/{job_id}", headers=auth(t["admin"])).json()
    assert status["status"] == "succeeded" and status["result"]["rows"] == 400
    batch = pd.read_csv(
        io.StringIO(client.get(f"/v1/batch-scoring/{job_id}/result", headers=auth(t["admin"])).text)
    )

    online = [
        client.post("/v1/fraud-check", json=body, headers=auth(t["app"])).json()
        for body in sim_requests(sim_frame, 400)
    ]
    assert list(batch["txn_id"]) == [o["txn_id"] for o in online]
    assert list(batch["decision"]) == [o["decision"] for o in online]
    assert max(abs(b - o["score"]) for b, o in zip(batch["score"], online, strict=True)) < 1e-5
    assert set(batch["decision"]) != {"LEGIT"}, "the comparison should cover flagged decisions too"


def test_batch_rejects_a_bad_file(client: TestClient, live_tenant: LiveFn) -> None:
    t = live_tenant()
    resp = client.post(
        "/v1/batch-scoring", files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")}, headers=auth(t["admin"])
    )
    assert resp.status_code == 422 and resp.json()["field"] == "file"
