"""Retraining with a champion / challenger gate: a person's request, the periodic check's triggers,
the comparison on the window neither model trained on, and the canary or the admin's notice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from control_plane.audit.orm import AuditEvent
from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import Worker
from control_plane.monitoring.orm import ScoredTransaction
from control_plane.orm_base import utcnow
from control_plane.registry.orm import ModelVersion
from control_plane.rollouts.orm import Rollout
from control_plane.training import retrain_data
from control_plane.training.orm import Retraining
from control_plane.training.retraining import OPEN, RETRAIN_JOB
from control_plane.training.retraining_notice import NOTIFY_JOB
from control_plane.training.service import TRAINING_JOB
from fraud_model.features import batch_features
from fraud_model.training import train_model
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import register_model, sim_frame  # noqa: F401
from tests.webhook_sink import WebhookSink


@pytest.fixture(scope="module")
def weak_artifact(sim_frame: pd.DataFrame) -> bytes:  # noqa: F811
    """A champion that learnt from shuffled labels: any honest retraining beats it."""
    features = batch_features(sim_frame)
    shuffled = np.random.default_rng(3).permutation(sim_frame["is_fraud"].to_numpy())
    model = train_model(features, shuffled, params={"num_boost_round": 5, "max_depth": 2}, seed=1)
    return model.to_bytes()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


@pytest.fixture
def champion_tenant(
    onboard: OnboardFn,
    client: TestClient,
    container: State,
    sim_frame: pd.DataFrame,  # noqa: F811
    weak_artifact: bytes,
    sink: WebhookSink,
) -> dict[str, Any]:
    """A tenant serving the weak champion, with its scored history stored and its frauds labelled."""
    t = onboard("loop-co", tier="trial", scopes=("app", "sre", "analyst"))  # the trial gate suits 200 cards
    contacts = {"slack_webhook_url": sink.url("/slack")}
    resp = client.patch(f"/v1/tenants/{t['id']}/contacts", json=contacts, headers=auth(t["admin"]))
    assert resp.status_code == 200, resp.text
    t["champion"] = register_model(container, t["id"], weak_artifact)
    assert client.post(f"/v1/models/{t['champion']}/promote", headers=auth(t["admin"])).status_code == 200
    with unit_of_work(container.factory) as session:
        session.add_all(
            ScoredTransaction(
                tenant_id=t["id"],
                txn_id=r.txn_id,
                ts=r.ts.to_pydatetime(),
                amount=Decimal(str(r.amount)),
                card_token=r.card_token,
                terminal_id=r.terminal_id,
                score=0.1,
                decision="LEGIT",
                model_version=t["champion"],
                cohort="stable",
            )
            for r in sim_frame.itertuples()
        )
    frauds = sim_frame[sim_frame["is_fraud"] == 1]
    items = [
        {"txn_id": r.txn_id, "label": "chargeback", "known_at": (r.ts + pd.Timedelta(days=2)).isoformat()}
        for r in frauds.itertuples()
    ]
    for i in range(0, len(items), 300):  # the request body limit of a test server is 64 KiB
        resp = client.post("/v1/labels", json={"items": items[i : i + 300]}, headers=auth(t["admin"]))
        assert resp.status_code == 200 and resp.json()["unknown_txn_ids"] == [], resp.text
    t["frauds"] = len(items)
    return t


def drive(container: State, tenant_id: str, retraining_id: str) -> Retraining:
    """Run the retraining's jobs and the training run it starts on a clock that moves five minutes
    ahead each round (the job comes back for the run's result a few seconds after it looked)."""
    ahead = timedelta(0)
    later = Worker(container.factory, container.worker.handlers, clock=lambda: utcnow() + ahead)
    for _ in range(12):
        ahead += timedelta(minutes=5)
        with container.factory() as session:
            row = session.get(Retraining, retraining_id)
            assert row is not None
            if row.status not in OPEN:
                return row
            stmt = select(Job.id).where(
                Job.tenant_id == tenant_id, Job.kind.in_((RETRAIN_JOB, TRAINING_JOB)), Job.status == "queued"
            )
            queued = list(session.scalars(stmt.order_by(Job.created_at)))
        assert queued, "the retraining is open but nothing is queued to drive it"
        for job_id in queued:
            later.run_once(job_id=job_id)
    raise AssertionError("the retraining never finished")


def notify(container: State, tenant_id: str) -> None:
    with container.factory() as session:
        stmt = select(Job.id).where(
            Job.tenant_id == tenant_id, Job.kind == NOTIFY_JOB, Job.status == "queued"
        )
        ids = list(session.scalars(stmt))
    for job_id in ids:
        container.worker.run_once(job_id=job_id)


def audit_actions(container: State, tenant_id: str, subject: str) -> list[str]:
    with container.factory() as session:
        stmt = select(AuditEvent.action).where(
            AuditEvent.tenant_id == tenant_id, AuditEvent.subject == subject
        )
        return list(session.scalars(stmt.order_by(AuditEvent.seq)))


def test_a_winning_challenger_of_an_opted_in_tenant_starts_a_canary(
    client: TestClient, container: State, champion_tenant: dict[str, Any], sink: WebhookSink
) -> None:
    t = champion_tenant
    opt_in = client.put("/v1/retraining-settings", json={"auto_rollout": True}, headers=auth(t["admin"]))
    assert opt_in.status_code == 200 and opt_in.json()["auto_rollout"] is True
    resp = client.post("/v1/retraining", json={"reason": "new fraud pattern"}, headers=auth(t["admin"]))
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert started["status"] == "queued" and started["champion_version"] == t["champion"]

    row = drive(container, t["id"], started["id"])

    assert row.status == "canary", (row.status, row.error, row.decision)
    comparison = row.comparison or {}
    assert comparison["fraud"] >= 10 and comparison["transactions"] > 0
    assert comparison["challenger"]["average_precision"] > comparison["champion"]["average_precision"] + 0.01
    assert sum(d["transactions"] for d in comparison["days"]) == comparison["transactions"]
    # The window is the challenger's test window: it trained only on rows 7 days before it.
    with container.factory() as session:
        challenger = session.get(ModelVersion, row.challenger_version)
        assert challenger is not None and challenger.stage == "APPROVED"
        assert challenger.dataset_id == "ds_" + row.id.removeprefix("rt_")
        rollout = session.get(Rollout, row.rollout_id)
        assert rollout is not None
        assert (rollout.candidate_version, rollout.stable_version) == (challenger.id, t["champion"])
        assert rollout.state == "PROGRESSING" and rollout.strategy == "canary"
    assert row.decision == {
        "policy": "fraudrail.monitoring", "wins": True, "auto_rollout": True, "violations": [],
    }  # fmt: skip
    actions = audit_actions(container, t["id"], row.id)
    assert actions[:2] == ["retraining.triggered", "retraining.training_started"]
    assert {"retraining.compared", "retraining.canary_started", "retraining.canary"} <= set(actions)
    read = client.get(f"/v1/retraining/{row.id}", headers=auth(t["analyst"])).json()
    assert read["status"] == "canary" and read["rollout_id"] == row.rollout_id

    notify(container, t["id"])
    titles = [m.text for m in sink.requests("/slack")]
    assert any("canary started" in title for title in titles), titles


def test_without_opt_in_the_admin_gets_the_comparison_and_the_approve_link(
    client: TestClient, container: State, champion_tenant: dict[str, Any], sink: WebhookSink
) -> None:
    t = champion_tenant
    started = client.post("/v1/retraining", json={}, headers=auth(t["admin"])).json()
    row = drive(container, t["id"], started["id"])
    assert row.status == "awaiting_approval", (row.status, row.error)
    assert [v["rule"] for v in (row.decision or {})["violations"]] == ["auto_rollout_off"]
    with container.factory() as session:
        challenger = session.get(ModelVersion, row.challenger_version)
        assert challenger is not None and challenger.stage == "CANDIDATE"
        assert session.scalars(select(Rollout).where(Rollout.tenant_id == t["id"])).first() is None
    notify(container, t["id"])
    bodies = [m.text for m in sink.requests("/slack")]
    assert any(f"/v1/models/{row.challenger_version}/approve" in b for b in bodies), bodies
    assert any("Average precision" in b for b in bodies)
    # The link works: the admin approves the challenger.
    approved = client.post(f"/v1/models/{row.challenger_version}/approve", headers=auth(t["admin"]))
    assert approved.status_code == 200, approved.text


def test_bad_requests_name_the_field(
    client: TestClient, onboard: OnboardFn, champion_tenant: dict[str, Any]
) -> None:
    t = champion_tenant
    unknown = client.post("/v1/retraining", json={"model_version": "mv_nope"}, headers=auth(t["admin"]))
    assert unknown.status_code == 404 and unknown.json()["field"] == "model_version"
    early = client.post("/v1/retraining", json={"cutoff": "2001-01-01T00:00:00Z"}, headers=auth(t["admin"]))
    assert early.status_code == 422 and early.json()["field"] == "cutoff"
    naive = client.post("/v1/retraining", json={"cutoff": "2018-05-01T00:00:00"}, headers=auth(t["admin"]))
    assert naive.status_code == 422
    other = onboard("other-co", scopes=("app", "sre", "analyst"))
    # Another tenant's champion is unknown to this tenant (404), and so is its retraining.
    stolen = client.post(
        "/v1/retraining", json={"model_version": t["champion"]}, headers=auth(other["admin"])
    )
    assert stolen.status_code == 404 and stolen.json()["field"] == "model_version"
    assert client.post("/v1/retraining", json={}, headers=auth(t["analyst"])).status_code == 403
    assert client.put("/v1/retraining-settings", json={}, headers=auth(t["admin"])).status_code == 422
    first = client.post("/v1/retraining", json={}, headers=auth(t["admin"]))
    assert first.status_code == 202
    again = client.post("/v1/retraining", json={}, headers=auth(t["admin"]))
    assert again.status_code == 409 and again.json()["field"] == "retraining"
    assert client.get(f"/v1/retraining/{first.json()['id']}", headers=auth(other["admin"])).status_code == 404
    assert client.get("/v1/retraining", headers=auth(other["admin"])).json() == []


def test_with_nothing_new_to_learn_the_retraining_is_skipped_before_training(
    client: TestClient,
    container: State,
    champion_tenant: dict[str, Any],
    sim_frame: pd.DataFrame,  # noqa: F811
    sink: WebhookSink,
) -> None:
    """A weekly schedule a week after go-live: every labelled row is one the champion learnt from."""
    t = champion_tenant
    with unit_of_work(container.factory) as session:
        own = retrain_data.store_dataset(
            session, container.providers.object_store, tenant_id=t["id"], dataset_id="ds_champions_own",
            frame=sim_frame[[*retrain_data.COLUMNS, "is_fraud"]], name="the champion's", actor="test",
        )  # fmt: skip
        champion = session.get(ModelVersion, t["champion"])
        assert champion is not None
        champion.dataset_id = own.id
    started = client.post("/v1/retraining", json={}, headers=auth(t["admin"])).json()
    row = drive(container, t["id"], started["id"])
    assert row.status == "skipped" and row.challenger_version is None, (row.status, row.error)
    assert row.error is not None and "nothing new to learn" in row.error
    with container.factory() as session:  # no training run was started for it
        runs = select(Job.id).where(Job.tenant_id == t["id"], Job.kind == TRAINING_JOB)
        assert list(session.scalars(runs)) == []
    assert audit_actions(container, t["id"], row.id)[-1] == "retraining.skipped"
    notify(container, t["id"])
    assert any("skipped: no new labelled traffic" in m.text for m in sink.requests("/slack"))
