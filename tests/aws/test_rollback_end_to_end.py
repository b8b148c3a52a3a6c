"""The rollback Lambda on AWS, emulated: an SNS alarm event → the handler with the deps it builds
from env → SageMaker endpoint weights (moto) read back and verified → rollback log (DynamoDB)."""

from __future__ import annotations

import json

import pytest

from lambdas.rollback.env import deps_from_env
from lambdas.rollback.handler import RollbackFailed, handle
from providers.aws.dynamo import DynamoRollbackLog
from providers.aws.factory import AwsClients
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from tests.aws import contracts_extra
from tests.aws.test_model_host import EndpointUpdates, endpoint_updates, make_host  # noqa: F401

pytestmark = pytest.mark.aws


def _event(tenant: str, rollout_id: str, stable: str = "mv_stable") -> dict[str, object]:
    alarm = {
        "type": "rollout.alarm",
        "tenant_id": tenant,
        "rollout_id": rollout_id,
        "stable_version": stable,
        "canary_version": "mv_canary",
        "severity": "page",
        "reason": "canary analysis failed: error_burn_rate observed 1000.0 against threshold 14.4",
        "evidence": {"metric": "error_burn_rate", "threshold": 14.4, "observed": 1000.0},
    }
    record = {"EventSource": "aws:sns", "Sns": {"MessageId": "m-1", "Message": json.dumps(alarm)}}
    return {"Records": [record]}


def test_the_lambda_rolls_the_moto_endpoint_back_and_records_it_once(
    clients: AwsClients,
    aws_settings: AwsSettings,
    monkeypatch: pytest.MonkeyPatch,
    endpoint_updates: EndpointUpdates,  # noqa: F811 - the fixture imported above
) -> None:
    store = S3ObjectStore(clients.s3, aws_settings.bucket, None)
    host = make_host(clients, store, aws_settings)
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    host.deploy(contracts_extra.hosted(store, tenant, "mv_stable"))
    host.deploy(contracts_extra.hosted(store, tenant, "mv_canary"))
    host.set_weights(tenant, {"mv_stable": 5_000, "mv_canary": 5_000})

    env = {
        "FRAUDRAIL_AWS_REGION": aws_settings.region,
        "FRAUDRAIL_AWS_ENDPOINT_URL": str(aws_settings.endpoint_url),
        "FRAUDRAIL_AWS_BUCKET": aws_settings.bucket,
        "FRAUDRAIL_AWS_ROLLBACK_TABLE": aws_settings.rollback_table,
        "FRAUDRAIL_AWS_ENDPOINT_POLL_S": "0.01",
    }
    deps = deps_from_env(env)
    first = handle(_event(tenant, "ro_e2e"), deps)
    again = handle(_event(tenant, "ro_e2e"), deps)  # SNS redelivers: the record is stored once

    assert (first["rolled_back"], again["duplicate"]) == (1, 1)
    described = clients.sagemaker.describe_endpoint(EndpointName=host.endpoint_name(tenant))
    weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}
    assert weights == {host.variant_name("mv_stable"): 10_000.0, host.variant_name("mv_canary"): 0.0}
    records = DynamoRollbackLog(clients.dynamodb, aws_settings.rollback_table).list(tenant)
    assert len(records) == 1 and records[0].evidence["rollout_id"] == "ro_e2e"
    assert records[0].weights_after == {"mv_stable": 10_000, "mv_canary": 0}

    with pytest.raises(RollbackFailed, match="WeightChangeFailed"):  # Lambda retries, then the DLQ
        handle(_event(tenant, "ro_other", stable="mv_never_deployed"), deps)
