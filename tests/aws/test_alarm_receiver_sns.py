"""bus_backend=sns: the control plane's SNS receiver only records the abort and queues a reconcile.

The alarm goes through moto's SNS to the receiver's HTTP endpoint, as the rollback Lambda gets it
from the same topic; the receiver must not move weights itself (the reconcile and the Lambda
do, through traffic.handle_alarm), and a redelivered alarm changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.audit.orm import AuditEvent
from control_plane.db import make_session_factory
from control_plane.jobs.orm import Job
from control_plane.orm_base import utcnow
from control_plane.rollouts.orm import Rollout
from control_plane.rollouts.service import RECONCILE_JOB
from control_plane.rollouts.wiring import register_alarm_receiver
from control_plane.tenants.orm import Tenant
from providers.aws.event_bus import SnsEventBus
from providers.aws.factory import AwsClients
from tests.helpers import wait_until

pytestmark = pytest.mark.aws


class NoWeightWrites:
    """A model host that fails the test if the receiver tries to move weights."""

    def weights(self, tenant_id: str) -> dict[str, int]:
        return {}

    def set_weights(self, tenant_id: str, weights: object) -> None:
        raise AssertionError("the alarm receiver must not write weights")


@pytest.fixture
def factory(db_engine: Engine, clean_db: None) -> Iterator[sessionmaker[Session]]:
    yield make_session_factory(db_engine)


def _rollout(factory: sessionmaker[Session]) -> Rollout:
    now = utcnow()
    with factory.begin() as session:
        session.add(
            Tenant(
                id="ten_sns",
                slug="sns-co",
                name="SNS Co",
                tier="standard",
                region="eu-west-1",
                budget_amount=Decimal("100.00"),
                budget_currency="USD",
                contacts={},
                status="ACTIVE",
            )
        )
        session.flush()
        rollout = Rollout(
            id="ro_sns",
            tenant_id="ten_sns",
            candidate_version="mv_canary",
            stable_version="mv_stable",
            strategy="canary",
            steps=[5000, 10000],
            bake_s=600,
            min_requests=20,
            state="PROGRESSING",
            phase="canary",
            step_index=0,
            weight_bp=5000,
            step_started_at=now - timedelta(seconds=30),
            analyses=[],
            salt="s",
            emergency=False,
            created_by="test",
        )
        session.add(rollout)
    return rollout


def test_the_sns_receiver_records_the_abort_once_and_moves_nothing(
    clients: AwsClients, factory: sessionmaker[Session]
) -> None:
    _rollout(factory)
    bus = SnsEventBus(clients.sns, None, create_topics=True)
    alarm = {
        "type": "rollout.alarm",
        "tenant_id": "ten_sns",
        "rollout_id": "ro_sns",
        "stable_version": "mv_stable",
        "canary_version": "mv_canary",
        "reason": "canary 5xx alarm (CloudWatch)",
        "evidence": {"metric": "error_burn_rate", "observed": 30.0},
    }

    def state() -> str | None:
        with factory() as session:
            return session.scalar(select(Rollout.state).where(Rollout.id == "ro_sns"))

    def aborts() -> int:
        with factory() as session:
            stmt = select(func.count()).where(AuditEvent.action == "rollout.rolling_back")
            return int(session.scalar(stmt) or 0)

    handled: list[str] = []
    try:
        # The receiver's part of the rollouts' ports: the session factory, the bus, a model host.
        ports = SimpleNamespace(factory=factory, event_bus=bus, model_host=NoWeightWrites())
        register_alarm_receiver(ports)  # type: ignore[arg-type]
        # Subscribed after the receiver: it runs once the receiver has handled that delivery.
        bus.subscribe("rollout.alarm", lambda _t, m: handled.append(str(m.get("rollout_id"))))
        bus.publish("rollout.alarm", alarm)
        wait_until(lambda: state() == "ROLLING_BACK", timeout_s=20, what="the receiver to record the abort")
        bus.publish("rollout.alarm", alarm)  # SNS redelivers
        bus.publish("rollout.alarm", {**alarm, "rollout_id": "ro_unknown"})  # logged, dropped
        wait_until(lambda: len(handled) >= 3, timeout_s=20, what="every delivery to be handled")
    finally:
        bus.close()
    assert aborts() == 1
    with factory() as session:
        jobs = session.scalars(select(Job).where(Job.kind == RECONCILE_JOB)).all()
        assert [j.payload for j in jobs] == [{"tenant_id": "ten_sns", "rollout_id": "ro_sns"}]
        rollout = session.get(Rollout, "ro_sns")
        assert rollout is not None and rollout.status_reason == "canary 5xx alarm (CloudWatch)"
