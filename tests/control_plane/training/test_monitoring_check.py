"""The periodic monitoring check: the trigger policy (fraudrail.monitoring, the tier's thresholds)
decides, with the real engine, whether a tenant's champion is retrained."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from control_plane.audit.orm import AuditEvent
from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.jobs.orm import Job
from control_plane.monitoring.orm import ScoredTransaction
from control_plane.orm_base import utcnow
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.training.monitoring_check import CHECK_JOB, MonitoringCheck
from control_plane.training.orm import Retraining
from fraud_model.features import batch_features
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.monitoring.conftest import reference, register_profiled  # noqa: F401
from tests.control_plane.scoring.conftest import sim_frame, trained_artifact  # noqa: F401


@pytest.fixture
def watched(
    onboard: OnboardFn,
    client: TestClient,
    container: State,
    trained_artifact: bytes,  # noqa: F811
    reference: dict[str, Any],  # noqa: F811
) -> dict[str, Any]:
    """A trial-tier tenant (drift counts from 200 checks) serving a profiled version."""
    t = onboard("watch-co", tier="trial", scopes=("app", "sre", "analyst"))
    t["model"] = register_profiled(container, t["id"], trained_artifact, reference)
    assert client.post(f"/v1/models/{t['model']}/promote", headers=auth(t["admin"])).status_code == 200
    return t


def observe_shifted(container: State, t: dict[str, Any], frame: pd.DataFrame, n: int) -> None:
    """``n`` checks whose legitimate spending moved up twentyfold, as the hot path hands them to
    the drift monitor (the HTTP path to ``observe`` is covered by the monitoring tests; a trial
    tenant's rate limit would make this slow), then one flush."""
    rows = frame.head(n).copy()
    rows["amount"] = rows["amount"] * 20 + 500
    features = batch_features(rows)
    for (_, r), vector in zip(rows.iterrows(), features.to_numpy(), strict=True):
        request = FraudCheckRequest(
            txn_id=r.txn_id, card_token=r.card_token, terminal_id=r.terminal_id, timestamp=r.ts,
            amount=Decimal(f"{r.amount:.2f}"), currency="EUR",
        )  # fmt: skip
        container.monitor.observe(t["id"], t["model"], "stable", request, vector.tolist(), 0.9, "SUSPICIOUS")
    container.monitor.flush()


def check(container: State, tenant_id: str, *, days_later: float = 0) -> str | None:
    checker = MonitoringCheck(container.templates, container.policy, container.providers.metrics)
    with unit_of_work(container.factory) as session:
        return checker.check(session, tenant_id, utcnow() + timedelta(days=days_later))


def retrainings(container: State, tenant_id: str) -> list[Retraining]:
    with container.factory() as session:
        return list(session.scalars(select(Retraining).where(Retraining.tenant_id == tenant_id)))


def test_drift_over_the_tier_threshold_triggers_a_retraining_with_its_figures(
    client: TestClient,
    container: State,
    watched: dict[str, Any],
    sim_frame: pd.DataFrame,  # noqa: F811
) -> None:
    observe_shifted(container, watched, sim_frame, 300)

    started = check(container, watched["id"])

    assert started is not None
    (row,) = retrainings(container, watched["id"])
    assert (row.id, row.trigger, row.status) == (started, "drift", "waiting_for_labels")
    assert row.champion_version == watched["model"]
    rules = {v["rule"] for v in row.trigger_evidence["violations"]}
    assert "feature_drift" in rules
    drift = row.trigger_evidence["input"]["drift"]
    assert drift["feature"] == "amount" and drift["max_feature_psi"] > 0.35 and drift["volume"] == 300
    # The PSI gauge is published by the check itself, not only when someone reads a report.
    gauge = container.providers.metrics.value("fraudrail_feature_psi", tenant=watched["id"], feature="amount")  # type: ignore[attr-defined]
    assert gauge == pytest.approx(drift["max_feature_psi"], abs=1e-6)
    with container.factory() as session:
        audited = session.scalars(select(AuditEvent).where(AuditEvent.subject == started)).all()
        assert [a.action for a in audited] == ["retraining.triggered"]
        assert audited[0].evidence["violations"] == row.trigger_evidence["violations"]
        kinds = set(session.scalars(select(Job.kind).where(Job.tenant_id == watched["id"])))
        assert "retraining.notify" in kinds and "retraining.run" not in kinds  # it waits for labels
    # One retraining at a time, and none again inside the tier's cool-down.
    assert check(container, watched["id"]) is None
    assert len(retrainings(container, watched["id"])) == 1


def traffic_until(container: State, t: dict[str, Any], ts: datetime) -> None:
    """One more stored check at ``ts``: the tenant's traffic time moves there."""
    with unit_of_work(container.factory) as session:
        later = ScoredTransaction(
            tenant_id=t["id"], txn_id=f"tx_later_{int(ts.timestamp())}", ts=ts, amount=Decimal("12.00"),
            card_token="card_later", terminal_id="term_later", score=0.1, decision="LEGIT",
            model_version=t["model"], cohort="stable",
        )  # fmt: skip
        session.add(later)


def test_a_drift_retraining_waits_for_mature_labels_then_the_check_starts_it(
    client: TestClient,
    container: State,
    watched: dict[str, Any],
    sim_frame: pd.DataFrame,  # noqa: F811
) -> None:
    observe_shifted(container, watched, sim_frame, 300)
    started = check(container, watched["id"])
    limits = container.templates["trial"]["monitoring"]
    (row,) = retrainings(container, watched["id"])
    waiting = row.trigger_evidence["waiting"]
    since = datetime.fromisoformat(waiting["drift_since"])
    assert since.isoformat() == row.trigger_evidence["input"]["drift"]["window_start"]
    days = limits["label_maturity_days"] + limits["compare_days"] + limits["drift_learn_days"]
    start_after = datetime.fromisoformat(waiting["start_after"])
    assert start_after == since + timedelta(days=days)
    shown = client.get(f"/v1/retraining/{started}", headers=auth(watched["admin"])).json()
    assert shown["status"] == "waiting_for_labels"
    assert datetime.fromisoformat(shown["start_after"]) == start_after
    traffic_until(container, watched, start_after - timedelta(hours=1))
    assert check(container, watched["id"], days_later=30) is None  # the traffic is not there yet
    assert retrainings(container, watched["id"])[0].status == "waiting_for_labels"

    traffic_until(container, watched, start_after + timedelta(minutes=5))
    assert check(container, watched["id"], days_later=30) == started

    (row,) = retrainings(container, watched["id"])
    assert row.status == "queued" and row.job_id is not None
    assert row.cutoff == start_after + timedelta(minutes=5)  # the latest stored traffic
    with container.factory() as session:
        job = session.get(Job, row.job_id)
        assert job is not None and job.kind == "retraining.run"
        stmt = select(AuditEvent).where(AuditEvent.subject == started).order_by(AuditEvent.seq)
        audited = list(session.scalars(stmt))
        assert [a.action for a in audited] == ["retraining.triggered", "retraining.labels_matured"]
        assert (audited[1].after or {})["cutoff"] == row.cutoff.isoformat()
        assert (audited[1].evidence or {})["waiting"]["start_after"] == waiting["start_after"]


def test_a_person_asking_now_supersedes_a_waiting_retraining(
    client: TestClient,
    container: State,
    watched: dict[str, Any],
    sim_frame: pd.DataFrame,  # noqa: F811
) -> None:
    observe_shifted(container, watched, sim_frame, 300)
    waiting = check(container, watched["id"])
    assert waiting is not None
    resp = client.post("/v1/retraining", json={"reason": "now"}, headers=auth(watched["admin"]))
    assert resp.status_code == 202, resp.text
    rows = {r.id: r for r in retrainings(container, watched["id"])}
    assert rows[waiting].status == "cancelled" and "person" in str(rows[waiting].error)
    assert rows[resp.json()["id"]].status == "queued"
    # The manual one is running now: a second request is refused naming it.
    again = client.post("/v1/retraining", json={"reason": "again"}, headers=auth(watched["admin"]))
    assert again.status_code == 409 and again.json()["retraining_id"] == resp.json()["id"]


def test_too_little_traffic_is_no_reason_and_the_schedule_retrains_when_due(
    client: TestClient,
    container: State,
    watched: dict[str, Any],
    sim_frame: pd.DataFrame,  # noqa: F811
) -> None:
    observe_shifted(container, watched, sim_frame, 40)
    assert check(container, watched["id"]) is None  # 40 checks: under the trial tier's 200
    assert retrainings(container, watched["id"]) == []

    started = check(container, watched["id"], days_later=15)  # the trial tier retrains every 14 days

    (row,) = retrainings(container, watched["id"])
    assert (row.id, row.trigger) == (started, "schedule")
    assert [v["rule"] for v in row.trigger_evidence["violations"]] == ["retrain_due"]


def test_the_check_is_a_periodic_job_of_the_worker(container: State, watched: dict[str, Any]) -> None:
    assert CHECK_JOB in {job.kind for job in container.periodic.jobs}
    queued = [j for j in container.periodic.enqueue_due() if CHECK_JOB.replace(".", "") in j.replace(".", "")]
    assert len(queued) == 1
    assert container.worker.run_once(job_id=queued[0]) == queued[0]
    with container.factory() as session:
        job = session.get(Job, queued[0])
        assert job is not None and job.status == "succeeded", job.last_error
        assert job.result == {"tenants": 1, "retrainings": {}}  # no traffic yet: nothing to say


def test_offboarding_purges_retrainings_and_settings(
    client: TestClient,
    container: State,
    admin_key: str,
    watched: dict[str, Any],
    sim_frame: pd.DataFrame,  # noqa: F811
) -> None:
    put = client.put("/v1/retraining-settings", json={"auto_rollout": True}, headers=auth(watched["admin"]))
    assert put.status_code == 200
    observe_shifted(container, watched, sim_frame, 40)
    check(container, watched["id"], days_later=15)
    assert len(retrainings(container, watched["id"])) == 1
    resp = client.delete(f"/v1/tenants/{watched['id']}", headers=auth(admin_key))
    assert resp.status_code == 200, resp.text
    stores = {s["store"]: s for s in resp.json()["stores"]}
    assert stores["retraining"]["remaining"] == [] and stores["retraining"]["purged"] == 2
    assert retrainings(container, watched["id"]) == []
