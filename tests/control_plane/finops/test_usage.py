"""Metering: dedup by id, day and month aggregates, the linear forecast, the flusher, job and daily meters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.finops.enforcement import EVALUATE_JOB
from control_plane.finops.metering import METER_DAILY_JOB, MeteredRun, queue_daily_metering
from control_plane.finops.orm import UsageDaily, UsageEvent
from control_plane.finops.prices import Meter
from control_plane.finops.service import FORECAST_METHOD
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import JobContext, Worker
from control_plane.tenants.orm import Tenant
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.finops.conftest import record, utc
from tests.control_plane.scoring.conftest import LiveFn, txn


def _events(c: State, tenant_id: str, meter: str) -> list[UsageEvent]:
    with c.factory() as s:
        stmt = select(UsageEvent).where(UsageEvent.tenant_id == tenant_id, UsageEvent.meter == meter)
        return list(s.scalars(stmt.order_by(UsageEvent.id)))


def test_a_usage_event_id_is_recorded_once(client: TestClient, onboard: OnboardFn, container: State) -> None:
    t = onboard("dedup-co", scopes=("sre",))
    at = datetime.now(UTC)
    assert record(container, t["id"], Meter.BATCH_ROWS, 400, at, event_id="job:job_1:batch_rows") is True
    assert record(container, t["id"], Meter.BATCH_ROWS, 400, at, event_id="job:job_1:batch_rows") is False
    assert record(container, t["id"], Meter.BATCH_ROWS, 100, at, event_id="job:job_2:batch_rows") is True

    with container.factory() as s:
        daily = s.scalars(select(UsageDaily).where(UsageDaily.tenant_id == t["id"])).one()
        assert (daily.quantity, daily.events, daily.dimension) == (Decimal(500), 2, "standard")
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 2
    usage = client.get("/v1/usage", headers=auth(t["sre"])).json()
    assert usage["month_to_date"] == {"batch_rows": {"unit": "row", "quantity": "500"}}


def test_day_and_month_aggregates_and_the_linear_forecast(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("agg-co")
    tid = t["id"]
    record(container, tid, Meter.FRAUD_CHECKS, 1000, utc(2030, 4, 1, 0, 0, 1))
    record(container, tid, Meter.FRAUD_CHECKS, 500, utc(2030, 4, 1, 23, 59, 59))
    record(container, tid, Meter.TRAINING_SECONDS, 3600, utc(2030, 4, 3, 12))
    record(container, tid, Meter.HOSTING_HOURS, 24, utc(2030, 4, 3, 23, 59, 59))
    record(container, tid, Meter.STORAGE_GB_DAYS, "2.5", utc(2030, 4, 3, 23, 59, 59))
    record(container, tid, Meter.FRAUD_CHECKS, 7777, utc(2030, 3, 31, 23, 59, 59))  # the month before
    record(container, tid, Meter.FRAUD_CHECKS, 8888, utc(2030, 5, 1))  # the month after
    container.finops.clock = lambda: utc(2030, 4, 16)  # 15 of 30 days elapsed

    costs = client.get("/v1/costs", headers=auth(t["admin"])).json()
    # standard tier: 0.0002 / check, 0.0004 / training second; pooled hosting 0.05 / h; 0.00077 / GB-day
    assert costs["month"] == "2030-04" and costs["currency"] == "USD"
    assert costs["by_meter"] == {
        "fraud_checks": "0.30",
        "hosting_hours": "1.20",
        "storage_gb_days": "0.00",
        "training_seconds": "1.44",
    }
    assert [(d["day"], d["cost"]) for d in costs["days"]] == [("2030-04-01", "0.30"), ("2030-04-03", "2.64")]
    assert costs["days"][1]["by_meter"]["training_seconds"] == "1.44"
    assert costs["month_to_date"] == "2.94"
    assert costs["forecast"] == {
        "month_end": "5.88",  # 2.94 / 15 days * 30 days
        "method": FORECAST_METHOD,
        "elapsed_days": "15.0000",
        "days_in_month": 30,
        "as_of": "2030-04-16T00:00:00Z",
    }
    hosting = next(line for line in costs["lines"] if line["meter"] == "hosting_hours")
    assert hosting == {
        "meter": "hosting_hours",
        "dimension": "pooled",
        "unit": "hour",
        "quantity": "24",
        "cost": "1.20",
    }
    assert costs["budget"]["amount"] == "2500.00" and costs["budget"]["headroom"] == "2497.06"

    usage = client.get("/v1/usage", headers=auth(t["admin"])).json()
    assert usage["days"][0] == {"day": "2030-04-01", "meters": {"fraud_checks": "1500"}}
    assert usage["month_to_date"]["storage_gb_days"] == {"unit": "GB-day", "quantity": "2.5"}

    march = client.get("/v1/costs", params={"month": "2030-03"}, headers=auth(t["admin"])).json()
    assert march["month_to_date"] == "1.56" and march["forecast"]["month_end"] == "1.56"  # a closed month
    assert march["budget"] is None
    bad = client.get("/v1/costs", params={"month": "2030-13"}, headers=auth(t["admin"]))
    assert bad.status_code == 422 and bad.json()["field"] == "month"


def test_usage_routes_need_a_tenant_admin_or_sre_key(
    client: TestClient, onboard: OnboardFn, admin_key: str
) -> None:
    t = onboard("scope-co", scopes=("app", "analyst"))
    for key in (t["app"], t["analyst"], admin_key):
        assert client.get("/v1/usage", headers=auth(key)).status_code == 403
        assert client.get("/v1/costs", headers=auth(key)).status_code == 403
    assert client.get("/v1/costs").status_code == 401


def test_fraud_checks_are_counted_in_memory_and_flushed_as_one_event_per_tenant(
    client: TestClient, live_tenant: LiveFn, container: State, worker: Worker
) -> None:
    a, b = live_tenant("count-a"), live_tenant("count-b")
    for i in range(5):
        assert client.post("/v1/fraud-check", json=txn(f"a{i}"), headers=auth(a["app"])).status_code == 200
    assert client.post("/v1/fraud-check", json=txn("b0"), headers=auth(b["app"])).status_code == 200
    assert container.finops.usage.peek(a["id"]) == 5 and _events(container, a["id"], "fraud_checks") == []

    assert container.finops.flush() == 6
    [event] = _events(container, a["id"], "fraud_checks")
    assert event.quantity == 5 and event.id.startswith("fc:") and event.id.endswith(f":{a['id']}")
    assert [e.quantity for e in _events(container, b["id"], "fraud_checks")] == [1]
    with container.factory() as s:
        stmt = select(Job.tenant_id).where(Job.kind == EVALUATE_JOB, Job.status == queue.QUEUED)
        kinds = [str(k) for k in s.scalars(stmt)]
    assert sorted(kinds) == sorted([a["id"], b["id"]])  # the budget is evaluated after usage lands
    assert container.finops.flush() == 0  # nothing new, nothing written

    usage = client.get("/v1/usage", headers=auth(a["admin"])).json()
    assert usage["month_to_date"]["fraud_checks"]["quantity"] == "5" and usage["unflushed_fraud_checks"] == 0
    worker.drain()
    with container.factory() as s:
        done = s.scalars(select(Job.status).where(Job.kind == EVALUATE_JOB)).all()
    assert set(done) == {queue.SUCCEEDED}


def test_a_flush_retried_after_an_ambiguous_failure_does_not_double_count(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    t = live_tenant("retry-co")
    for i in range(3):
        client.post("/v1/fraud-check", json=txn(f"r{i}"), headers=auth(t["app"]))
    writer = container.finops.writer
    original = writer._write_batch

    def committed_then_failed(batch: Any, now: datetime) -> None:
        original(batch, now)
        raise ConnectionError("connection lost after COMMIT")

    writer._write_batch = committed_then_failed  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        container.finops.flush()
    writer._write_batch = original  # type: ignore[method-assign]
    assert writer.pending() == 3  # kept, with the same ids
    client.post("/v1/fraud-check", json=txn("r3"), headers=auth(t["app"]))
    assert container.finops.flush() == 4
    assert sorted(e.quantity for e in _events(container, t["id"], "fraud_checks")) == [1, 3]


def _job(tenant_id: str, kind: str, result: dict[str, Any], finished: datetime, created: datetime) -> Job:
    return Job(
        id=f"job_{kind.replace('.', '')}_{tenant_id[-6:]}_{int(finished.timestamp())}",
        kind=kind,
        tenant_id=tenant_id,
        payload={},
        status=queue.SUCCEEDED,
        attempts=1,
        max_attempts=3,
        run_after=created,
        progress={},
        result=result,
        created_at=created,
        finished_at=finished,
    )


def test_batch_rows_and_training_seconds_are_metered_once_per_job(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("jobs-co")
    now = datetime.now(UTC)
    with unit_of_work(container.factory) as s:
        s.add(_job(t["id"], "scoring.batch", {"rows": 400}, now, now - timedelta(seconds=30)))
        s.add(_job(t["id"], "training.run", {"billable_seconds": 90.5}, now, now - timedelta(minutes=10)))
        s.add(_job(t["id"], "training.run", {}, now - timedelta(seconds=1), now - timedelta(seconds=61)))
        old = now - timedelta(days=5)
        s.add(_job(t["id"], "scoring.batch", {"rows": 99}, old, old))  # before the lookback

    assert container.finops.meter_jobs(now) == {"batch_rows": 1, "training_seconds": 2}
    assert container.finops.meter_jobs(now) == {"batch_rows": 0, "training_seconds": 0}
    assert [e.quantity for e in _events(container, t["id"], "batch_rows")] == [400]
    # measured wall time when the result has it; queued-to-finished (an upper bound) otherwise
    assert sorted(e.quantity for e in _events(container, t["id"], "training_seconds")) == [
        60,
        Decimal("90.5"),
    ]


def test_metered_run_adds_the_measured_wall_time(container: State) -> None:
    ticks = iter([100.0, 112.25])

    class Inner:
        def run(self, ctx: JobContext) -> dict[str, Any]:
            return {"model_version": "mv_1"}

        def on_exhausted(self, ctx: JobContext, session: Any, error: str) -> None:
            raise AssertionError("not called")

    wrapped = MeteredRun(Inner(), clock=lambda: next(ticks))
    result = wrapped.run(None)  # type: ignore[arg-type]
    assert result == {"model_version": "mv_1", "billable_seconds": 12.25}


def test_daily_metering_of_hosting_hours_and_storage_is_idempotent(
    client: TestClient, onboard: OnboardFn, container: State, worker: Worker
) -> None:
    t = onboard("daily-co")
    tid = t["id"]
    today = datetime.now(UTC).date()
    day = today - timedelta(days=1)
    with unit_of_work(container.factory) as s:
        tenant = s.get(Tenant, tid)
        assert tenant is not None
        tenant.created_at = datetime.combine(day - timedelta(days=1), datetime.min.time(), UTC)
    container.providers.object_store.put(f"tenants/{tid}/datasets/big.parquet", b"x" * (1024**2))

    assert queue_daily_metering(container.factory, day, now=datetime.now(UTC)) is True
    assert queue_daily_metering(container.factory, day, now=datetime.now(UTC)) is False  # one waits already
    worker.drain()
    with container.factory() as s:
        job = s.scalars(select(Job).where(Job.kind == METER_DAILY_JOB)).one()
    assert job.status == queue.SUCCEEDED and job.result is not None
    assert job.result["tenants"][tid]["hosting_hours"] == "24.000000"
    [hosting] = _events(container, tid, "hosting_hours")
    [storage] = _events(container, tid, "storage_gb_days")
    assert (hosting.quantity, hosting.dimension, hosting.day) == (Decimal(24), "pooled", day)
    assert storage.quantity == Decimal("0.000977")  # 1 MiB for a whole day
    assert queue_daily_metering(container.factory, day, now=datetime.now(UTC)) is False  # metered
    again = container.finops.meter_day(day)
    assert again["tenants"][tid]["new"] is False and len(_events(container, tid, "hosting_hours")) == 1

    created_today = container.finops.meter_day(date(2020, 1, 1))  # before the tenant existed
    assert created_today["tenants"] == {}
