"""The durable queue: leases, backoff, exhaustion, and a worker killed mid-provisioning."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from control_plane.bootstrap.state import State
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import Worker
from control_plane.orm_base import utcnow
from control_plane.settings import REPO_ROOT, AppSettings
from providers.local.provisioner import LocalProvisioner
from tests.control_plane.conftest import OnboardFn, auth


def _job(session: Session, job_id: str) -> Job:
    return queue.get_job(session, job_id, tenant_id=None)


def test_claim_is_exclusive_until_the_lease_expires(container: State) -> None:
    now = utcnow()
    with container.factory() as s:
        job = queue.enqueue(s, kind="noop", payload={}, tenant_id=None, now=now)
        s.commit()
        job_id = job.id
    with container.factory() as s:
        first = queue.claim(s, worker_id="w1", now=now, lease_s=30)
        s.commit()
        assert first is not None and first.id == job_id and first.attempts == 1
    with container.factory() as s:
        assert queue.claim(s, worker_id="w2", now=now + timedelta(seconds=29), lease_s=30) is None
        second = queue.claim(s, worker_id="w2", now=now + timedelta(seconds=31), lease_s=30)
        s.commit()
        assert second is not None and second.lease_owner == "w2" and second.attempts == 2


def test_failed_attempts_back_off_then_fail_the_tenant(
    client: TestClient, admin_key: str, onboard: OnboardFn, worker: Worker, container: State
) -> None:
    provisioner = container.providers.provisioner
    assert isinstance(provisioner, LocalProvisioner)
    original = provisioner.apply

    def broken(*_: object) -> bool:
        raise RuntimeError("quota exceeded in region")

    provisioner.apply = broken  # type: ignore[method-assign]
    t = onboard("acme-pay", activate=False)
    clock = [utcnow()]
    worker.clock = lambda: clock[0]
    run_afters: list[datetime] = []
    for _ in range(5):
        assert worker.run_once() == t["job_id"]
        with container.factory() as s:
            job = _job(s, t["job_id"])
            run_afters.append(job.run_after)
            clock[0] = job.run_after + timedelta(milliseconds=1)
    gaps = [round((b - a).total_seconds()) for a, b in itertools.pairwise(run_afters)]
    assert gaps[:3] == [2, 4, 8]
    with container.factory() as s:
        job = _job(s, t["job_id"])
        assert job.status == "failed" and "quota exceeded" in (job.last_error or "")
    tenant = client.get(f"/v1/tenants/{t['id']}", headers=auth(admin_key)).json()
    assert tenant["status"] == "FAILED" and "quota exceeded" in tenant["status_reason"]

    provisioner.apply = original  # type: ignore[method-assign]
    retry = client.post(f"/v1/tenants/{t['id']}/retry", headers=auth(admin_key))
    assert retry.status_code == 202
    assert worker.run_once() == retry.json()["provisioning_job_id"]
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(admin_key)).json()["status"] == "ACTIVE"


def test_killed_worker_is_finished_by_the_next_and_nothing_is_created_twice(
    client: TestClient, onboard: OnboardFn, worker: Worker, container: State, settings: AppSettings
) -> None:
    t = onboard("acme-pay", activate=False)
    env = {
        **os.environ,
        "FRAUDRAIL_DATABASE_URL": settings.resolved_database_url,
        "FRAUDRAIL_HOME": str(settings.home),
        "FRAUDRAIL_JOB_LEASE_S": "30",
        "FRAUDRAIL_FAULT_CRASH_AT": "provision.after_apply.cache_namespace",
    }
    killed = subprocess.run(
        [sys.executable, "-m", "control_plane.cli", "worker", "--once"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 137, killed.stderr

    with container.factory() as s:
        job = _job(s, t["job_id"])
        assert job.status == "running" and job.lease_expires_at is not None
        lease_end = job.lease_expires_at
    tenant = client.get(f"/v1/tenants/{t['id']}", headers=auth(t["admin"])).json()
    assert tenant["status"] == "PROVISIONING"
    assert tenant["provisioning"]["done"] == [f"object_store:tenants/{t['id']}/"]

    worker.clock = lambda: lease_end - timedelta(seconds=1)
    assert worker.run_once() is None  # the dead worker's lease still holds
    worker.clock = lambda: lease_end + timedelta(seconds=1)
    assert worker.run_once() == t["job_id"]

    tenant = client.get(f"/v1/tenants/{t['id']}", headers=auth(t["admin"])).json()
    assert tenant["status"] == "ACTIVE"
    provisioner = container.providers.provisioner
    assert isinstance(provisioner, LocalProvisioner)
    created = [(e["kind"]) for e in provisioner.ledger_entries(t["id"]) if e["action"] == "created"]
    # The killed worker created the prefix and the (process-local) cache namespace; the next
    # worker re-ran the unrecorded cache step in its own process and created the slot once.
    assert created.count("object_store") == 1
    assert created.count("model_slot") == 1
    with container.factory() as s:
        job = _job(s, t["job_id"])
        assert job.status == "succeeded" and job.attempts == 2
