"""A job that fails for good says why, and where it stopped, on its status route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.jobs import queue
from control_plane.jobs.worker import JobContext, PermanentJobError, Worker
from control_plane.orm_base import utcnow
from tests.control_plane.conftest import OnboardFn, auth


class StopsHalfway:
    """Reports two phases, then fails: the first time for a while, then for good."""

    def __init__(self, permanent: bool) -> None:
        self.permanent = permanent

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        ctx.progress("loading", 5)
        ctx.progress("train", 40, round=12, rounds=300)
        if self.permanent:
            raise PermanentJobError("the training window holds no fraud label")
        raise RuntimeError("object store unreachable")

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        return None


def test_a_failed_jobs_reason_and_phase_appear_on_its_status_route(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("acme-pay", scopes=("sre",))
    with unit_of_work(container.factory) as s:
        job_id = queue.enqueue(
            s, kind="test.halfway", payload={}, tenant_id=t["id"], max_attempts=2, now=utcnow()
        ).id
    retrying = Worker(container.factory, {"test.halfway": StopsHalfway(permanent=False)})
    assert retrying.run_once(job_id=job_id) == job_id
    first = client.get(f"/v1/jobs/{job_id}", headers=auth(t["sre"])).json()
    # A failed attempt that will be retried keeps its progress; the error is there to read.
    assert first["status"] == "queued" and first["progress"]["phase"] == "train"
    assert first["failure_reason"] is None and "unreachable" in first["last_error"]

    final = Worker(container.factory, {"test.halfway": StopsHalfway(permanent=True)})
    with unit_of_work(container.factory) as s:  # due now, not after the backoff
        queue.get_job(s, job_id, tenant_id=None).run_after = utcnow()
    assert final.run_once(job_id=job_id) == job_id
    body = client.get(f"/v1/jobs/{job_id}", headers=auth(t["admin"])).json()
    assert body["status"] == "failed"
    assert body["failure_reason"] == "PermanentJobError: the training window holds no fraud label"
    progress = body["progress"]
    assert progress["phase"] == "failed" and progress["failed_in"] == "train"
    assert progress["reason"] == body["failure_reason"] and progress["percent"] == 40
    # Another tenant's key never sees it.
    other = onboard("beta-co", scopes=("sre",))
    assert client.get(f"/v1/jobs/{job_id}", headers=auth(other["sre"])).status_code == 404
