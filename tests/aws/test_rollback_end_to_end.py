"""The rollback path on AWS, emulated: SNS publish → HTTP subscriber → rollback handler →
SageMaker endpoint weights (moto) → rollback log (DynamoDB) → Slack and Teams (local receivers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from control_plane.notifications.local_rollback import subscribe_rollback_handler
from lambdas.rollback.handler import RollbackDeps
from providers.aws.dynamo import DynamoRollbackLog
from providers.aws.event_bus import SnsEventBus
from providers.aws.factory import AwsClients
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from providers.webhook_notifier import WebhookNotifier
from tests.aws import contracts_extra
from tests.aws.test_model_host import EndpointUpdates, endpoint_updates, make_host  # noqa: F401
from tests.helpers import wait_until
from tests.webhook_sink import WebhookSink

pytestmark = pytest.mark.aws


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    with WebhookSink() as s:
        yield s


def test_sns_alarm_rolls_the_moto_endpoint_back_and_notifies(
    clients: AwsClients,
    aws_settings: AwsSettings,
    sink: WebhookSink,
    endpoint_updates: EndpointUpdates,  # noqa: F811 - the fixture imported above
) -> None:
    store = S3ObjectStore(clients.s3, aws_settings.bucket, None)
    host = make_host(clients, store, aws_settings)
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    host.deploy(contracts_extra.hosted(store, tenant, "mv_stable"))
    host.deploy(contracts_extra.hosted(store, tenant, "mv_canary"))
    host.set_weights(tenant, {"mv_stable": 5_000, "mv_canary": 5_000})

    log = DynamoRollbackLog(clients.dynamodb, aws_settings.rollback_table)
    contacts = {"slack_webhook_url": sink.url("/slack"), "teams_webhook_url": sink.url("/teams")}
    rolled: list[dict[str, Any]] = []
    deps = RollbackDeps(
        model_host=host,
        rollback_log=log,
        notifier=WebhookNotifier(sleep=lambda _s: None),
        contacts_for=lambda _t: contacts,
        on_rolled_back=lambda alarm, _r: rolled.append(dict(alarm)),
    )
    bus = SnsEventBus(clients.sns, None, create_topics=True)
    try:
        subscribe_rollback_handler(bus, deps, topic="rollout.alarm")
        bus.publish(
            "rollout.alarm",
            {
                "type": "rollout.alarm",
                "tenant_id": tenant,
                "rollout_id": "ro_e2e",
                "stable_version": "mv_stable",
                "canary_version": "mv_canary",
                "severity": "page",
                "reason": "canary analysis failed: error_burn_rate observed 1000.0 against threshold 14.4",
                "evidence": {
                    "metric": "error_burn_rate",
                    "threshold": 14.4,
                    "observed": 1000.0,
                    "rollout_id": "ro_e2e",
                },
            },
        )
        wait_until(lambda: rolled, timeout_s=20, what="the handler to run from the SNS delivery")
    finally:
        bus.close()

    described = clients.sagemaker.describe_endpoint(EndpointName=host.endpoint_name(tenant))
    weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}
    assert weights == {host.variant_name("mv_stable"): 10_000.0, host.variant_name("mv_canary"): 0.0}
    records = log.list(tenant)
    assert len(records) == 1 and records[0].evidence["rollout_id"] == "ro_e2e"
    slack = sink.wait_for(1, path="/slack")[0].json
    teams = sink.wait_for(1, path="/teams")[0].json
    assert "error_burn_rate" in str(slack) and "1000" in str(slack)
    assert "ro_e2e" in str(teams) and "14.4" in str(teams)
