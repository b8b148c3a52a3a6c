"""SageMaker weights read back from AWS (verify_weights) and traffic.set_weights against moto."""

from __future__ import annotations

from typing import Any

import pytest

from providers.aws.factory import AwsClients
from providers.aws.model_host import SageMakerModelHost
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from tests.aws import contracts_extra
from tests.aws.test_model_host import EndpointUpdates, endpoint_updates, make_host, store  # noqa: F401
from traffic import WeightChangeFailed, set_weights

pytestmark = pytest.mark.aws


@pytest.fixture
def host(clients: AwsClients, store: S3ObjectStore, aws_settings: AwsSettings) -> SageMakerModelHost:  # noqa: F811
    return make_host(clients, store, aws_settings)


def _two_versions(host: SageMakerModelHost, store: S3ObjectStore, kind: str) -> str:  # noqa: F811
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, kind)
    host.deploy(contracts_extra.hosted(store, tenant, "mv_stable"))
    host.deploy(contracts_extra.hosted(store, tenant, "mv_canary"))
    return tenant


def test_verify_weights_reads_the_endpoint_not_the_record(
    host: SageMakerModelHost,
    store: S3ObjectStore,  # noqa: F811
    clients: AwsClients,
    endpoint_updates: EndpointUpdates,  # noqa: F811
) -> None:
    tenant = _two_versions(host, store, "dedicated")
    assert host.verify_weights(tenant) == {}  # no endpoint yet: nothing is served
    assert set_weights(host, tenant, {"mv_stable": 9_000, "mv_canary": 1_000}) == {
        "mv_stable": 9_000,
        "mv_canary": 1_000,
    }
    # Someone moves the endpoint's weights behind the host's back: the read-back sees it.
    clients.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=host.endpoint_name(tenant),
        DesiredWeightsAndCapacities=[
            {"VariantName": host.variant_name("mv_stable"), "DesiredWeight": 5_000.0},
            {"VariantName": host.variant_name("mv_canary"), "DesiredWeight": 5_000.0},
        ],
    )
    assert host.verify_weights(tenant) == {"mv_stable": 5_000, "mv_canary": 5_000}
    # ... and traffic.set_weights puts them back, verified.
    assert set_weights(host, tenant, {"mv_stable": 9_000, "mv_canary": 1_000})["mv_canary"] == 1_000
    described = clients.sagemaker.describe_endpoint(EndpointName=host.endpoint_name(tenant))
    current = {v["VariantName"]: v.get("CurrentWeight") for v in described["ProductionVariants"]}
    assert current == {host.variant_name("mv_stable"): 9_000.0, host.variant_name("mv_canary"): 1_000.0}


def test_a_weight_update_the_endpoint_never_applied_fails_the_change(
    host: SageMakerModelHost,
    store: S3ObjectStore,  # noqa: F811
    clients: AwsClients,
    endpoint_updates: EndpointUpdates,  # noqa: F811
) -> None:
    tenant = _two_versions(host, store, "dedicated")
    set_weights(host, tenant, {"mv_stable": 10_000, "mv_canary": 0})
    events = clients.sagemaker.meta.events

    def swallow(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse

        return AWSResponse("https://moto/weights", 200, {}, None), {"EndpointArn": "arn:x"}

    events.register("before-call.sagemaker.UpdateEndpointWeightsAndCapacities", swallow)
    try:
        with pytest.raises(WeightChangeFailed) as failed:
            set_weights(host, tenant, {"mv_stable": 5_000, "mv_canary": 5_000})
    finally:
        events.unregister("before-call.sagemaker.UpdateEndpointWeightsAndCapacities", swallow)
    assert failed.value.observed == {"mv_stable": 10_000, "mv_canary": 0}
    assert host.verify_weights(tenant) == {"mv_stable": 10_000, "mv_canary": 0}


def test_a_pooled_slot_reads_its_record_back_from_the_object_store(
    host: SageMakerModelHost,
    store: S3ObjectStore,  # noqa: F811
    clients: AwsClients,
    aws_settings: AwsSettings,
) -> None:
    tenant = _two_versions(host, store, "pooled")
    set_weights(host, tenant, {"mv_stable": 8_000, "mv_canary": 2_000})
    other_process = make_host(clients, store, aws_settings)
    assert other_process.verify_weights(tenant) == {"mv_stable": 8_000, "mv_canary": 2_000}
