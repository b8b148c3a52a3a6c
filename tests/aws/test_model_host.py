"""SageMaker model host against moto's server (plus a shim and Stubber where moto falls short).

moto lacks ``UpdateEndpoint`` (HTTP 500): ``endpoint_updates`` intercepts that one call in
botocore and does on moto what AWS does (the endpoint switches to the new config), recording
the request so the tests can check its shape. moto's ``InvokeEndpoint`` returns canned bodies
and ignores ``TargetVariant``: the request shape is checked with botocore's Stubber, and
parsing with canned bodies queued through moto's ``/moto-api/static/sagemaker/endpoint-results``.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import Stubber

from providers.aws.factory import AwsClients
from providers.aws.model_archive import model_archive_key
from providers.aws.model_host import SageMakerModelHost, csv_body, parse_scores
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from providers.ports import ArtifactIntegrityError, HostedModel, ProviderError
from tests.aws import contracts_extra
from tests.aws.conftest import ACCOUNT, REGION, moto_post

pytestmark = pytest.mark.aws

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fraudrail-model"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fraudrail-inference:latest"


@dataclass
class EndpointUpdates:
    """``UpdateEndpoint`` requests seen (moto does not implement the call)."""

    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def endpoint_updates(
    clients: AwsClients, aws_settings: AwsSettings, boto_session: boto3.session.Session
) -> Iterator[EndpointUpdates]:
    seen = EndpointUpdates()
    raw = boto_session.client("sagemaker", region_name=REGION, endpoint_url=aws_settings.endpoint_url)
    events = clients.sagemaker.meta.events
    updating_once: list[str] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        seen.requests.append(dict(params))

    def update(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = seen.requests[-1]
        name, config = request["EndpointName"], request["EndpointConfigName"]
        arn = raw.describe_endpoint(EndpointName=name)["EndpointArn"]
        raw.delete_endpoint(EndpointName=name)  # what AWS does, in effect: same name, new config
        raw.create_endpoint(EndpointName=name, EndpointConfigName=config)
        updating_once.append(name)
        return AWSResponse("https://moto/update", 200, {}, None), {"EndpointArn": arn}

    def describe(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not updating_once:
            return None
        name = updating_once.pop()  # one "Updating" answer after each update, then moto's own
        body = dict(raw.describe_endpoint(EndpointName=name))
        body.pop("ResponseMetadata", None)
        body["EndpointStatus"] = "Updating"
        return AWSResponse("https://moto/describe", 200, {}, None), body

    events.register("before-parameter-build.sagemaker.UpdateEndpoint", capture)
    events.register("before-call.sagemaker.UpdateEndpoint", update)
    events.register_first("before-call.sagemaker.DescribeEndpoint", describe)
    yield seen
    events.unregister("before-parameter-build.sagemaker.UpdateEndpoint", capture)
    events.unregister("before-call.sagemaker.UpdateEndpoint", update)
    events.unregister("before-call.sagemaker.DescribeEndpoint", describe)


@pytest.fixture
def store(clients: AwsClients, aws_settings: AwsSettings, kms_key_id: str) -> S3ObjectStore:
    return S3ObjectStore(clients.s3, aws_settings.bucket, kms_key_id)


def make_host(clients: AwsClients, store: S3ObjectStore, aws: AwsSettings, **kw: Any) -> SageMakerModelHost:
    kw.setdefault("poll_s", 0.01)
    kw.setdefault("verify_ttl_s", 0.0)
    return SageMakerModelHost(
        clients.sagemaker,
        clients.sagemaker_runtime,
        store,
        execution_role_arn=ROLE,
        image_uri=IMAGE,
        pooled_endpoint=aws.pooled_endpoint,
        bucket=aws.bucket,
        **kw,
    )


@pytest.fixture
def host(clients: AwsClients, store: S3ObjectStore, aws_settings: AwsSettings) -> SageMakerModelHost:
    return make_host(clients, store, aws_settings, kms_key_id="alias/fraudrail-endpoints")


@pytest.mark.parametrize("kind", ["dedicated", "serverless", "pooled"])
def test_model_host_contract(
    kind: str, host: SageMakerModelHost, store: S3ObjectStore, endpoint_updates: EndpointUpdates
) -> None:
    contracts_extra.check_model_host(host, store, kind)
    if kind == "pooled":
        assert endpoint_updates.requests == []  # the pooled endpoint is never reconfigured
    else:  # undeploying mv_2 moved the live endpoint to a config without its variant
        assert [r["RetainAllVariantProperties"] for r in endpoint_updates.requests] == [False]


@pytest.mark.parametrize("kind", ["dedicated", "pooled"])
def test_model_host_integrity_contract(kind: str, host: SageMakerModelHost, store: S3ObjectStore) -> None:
    contracts_extra.check_model_host_integrity(host, store, kind)


def test_dedicated_endpoint_serves_weighted_variants(
    host: SageMakerModelHost,
    store: S3ObjectStore,
    clients: AwsClients,
    aws_settings: AwsSettings,
    endpoint_updates: EndpointUpdates,
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    v1 = contracts_extra.hosted(store, tenant, "mv_1")
    v2 = contracts_extra.hosted(store, tenant, "mv_2")
    host.deploy(v1)
    host.deploy(v2)
    endpoint = host.endpoint_name(tenant)
    assert endpoint == f"fraudrail-{tenant.replace('_', '-')}"

    host.set_weights(tenant, {"mv_1": 10_000, "mv_2": 0})
    described = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    weights = {v["VariantName"]: v.get("CurrentWeight", 0.0) for v in described["ProductionVariants"]}
    assert weights == {host.variant_name("mv_1"): 10_000.0, host.variant_name("mv_2"): 0.0}

    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    assert config["KmsKeyId"] == "alias/fraudrail-endpoints"
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert set(variants) == {host.variant_name("mv_1"), host.variant_name("mv_2")}
    assert {v["InstanceType"] for v in variants.values()} == {"ml.m5.xlarge"}
    model = clients.sagemaker.describe_model(ModelName=variants[host.variant_name("mv_2")]["ModelName"])
    archive = model_archive_key(v2.artifact_key)
    assert model["PrimaryContainer"]["ModelDataUrl"] == f"s3://{aws_settings.bucket}/{archive}"
    assert archive.endswith("/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(store.get(archive)), mode="r:gz") as tar:
        member = tar.extractfile("model.frm")
        assert member is not None and member.read() == store.get(v2.artifact_key)
    assert model["PrimaryContainer"]["Image"] == IMAGE and model["ExecutionRoleArn"] == ROLE

    host.set_weights(tenant, {"mv_1": 9_000, "mv_2": 1_000})
    described = clients.sagemaker.describe_endpoint(EndpointName=endpoint)
    assert {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]} == {
        host.variant_name("mv_1"): 9_000.0,
        host.variant_name("mv_2"): 1_000.0,
    }
    assert host.weights(tenant) == {"mv_1": 9_000, "mv_2": 1_000}
    assert endpoint_updates.requests == []  # weights alone never replace the endpoint config

    # A third version joins the live endpoint through UpdateEndpoint, keeping the live weights.
    host.deploy(contracts_extra.hosted(store, tenant, "mv_3"))
    host.set_weights(tenant, {"mv_1": 9_000, "mv_2": 500, "mv_3": 500})
    assert len(endpoint_updates.requests) == 1
    update = endpoint_updates.requests[0]
    assert update["EndpointName"] == endpoint and update["EndpointConfigName"].startswith(
        f"fraudrail-{tenant.replace('_', '-')}-cfg-"
    )
    new_config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=update["EndpointConfigName"])
    assert {v["VariantName"]: v["InitialVariantWeight"] for v in new_config["ProductionVariants"]} == {
        host.variant_name("mv_1"): 9_000.0,
        host.variant_name("mv_2"): 500.0,
        host.variant_name("mv_3"): 500.0,
    }
    assert host.weights(tenant) == {"mv_1": 9_000, "mv_2": 500, "mv_3": 500}

    # Slot records live in S3: a new process sees the same slot, versions and weights.
    again = make_host(clients, store, aws_settings)
    assert again.slots(tenant) == host.slots(tenant)
    assert [m.version_id for m in again.deployed(tenant)] == ["mv_1", "mv_2", "mv_3"]
    assert again.weights(tenant) == {"mv_1": 9_000, "mv_2": 500, "mv_3": 500}

    with pytest.raises(ValueError, match="shift it away"):
        host.undeploy(tenant, "mv_3")
    assert host.delete_tenant(tenant) >= 1 + 3 + 1  # slot, three models, the endpoint
    assert clients.sagemaker.list_models(NameContains=tenant.replace("_", "-"))["Models"] == []
    assert clients.sagemaker.list_endpoints(NameContains=tenant.replace("_", "-"))["Endpoints"] == []
    assert (
        clients.sagemaker.list_endpoint_configs(NameContains=tenant.replace("_", "-"))["EndpointConfigs"]
        == []
    )


def test_invoke_parses_scores_from_the_endpoint(
    host: SageMakerModelHost, store: S3ObjectStore, moto_url: str
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    host.deploy(contracts_extra.hosted(store, tenant, "mv_1"))
    variant = host.variant_name("mv_1")
    moto_post(
        moto_url,
        "/moto-api/static/sagemaker/endpoint-results",
        {
            "account_id": ACCOUNT,
            "region": REGION,
            "results": [
                {
                    "Body": "0.25\n0.75\n",
                    "ContentType": "text/csv",
                    "InvokedProductionVariant": variant,
                    "CustomAttributes": "",
                },
                {
                    "Body": "not a score",
                    "ContentType": "text/csv",
                    "InvokedProductionVariant": variant,
                    "CustomAttributes": "",
                },
            ],
        },
    )
    assert host.invoke(tenant, "mv_1", [[1.0, 2.5], [3.0, 4.0]]) == [0.25, 0.75]  # creates the endpoint
    with pytest.raises(ProviderError, match="unreadable body"):
        host.invoke(tenant, "mv_1", [[9.0, 9.0]])
    with pytest.raises(ProviderError, match="not deployed"):
        host.invoke(tenant, "mv_404", [[1.0, 2.0]])
    assert host.explain(tenant, "mv_1", [1.0, 2.5], 3) == []


def _stream(text: str) -> StreamingBody:
    data = text.encode()
    return StreamingBody(io.BytesIO(data), len(data))


@pytest.mark.parametrize("kind", ["dedicated", "pooled"])
def test_invoke_request_shape(
    kind: str, host: SageMakerModelHost, store: S3ObjectStore, clients: AwsClients, aws_settings: AwsSettings
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, kind)
    model = contracts_extra.hosted(store, tenant, "mv_7")
    host.deploy(model)
    host.set_weights(tenant, {"mv_7": 10_000})  # creates the dedicated endpoint (not the pooled one)
    expected: dict[str, Any] = {
        "ContentType": "text/csv",
        "Accept": "text/csv",
        "Body": b"0.5,1.0\n2.0,-3.25\n",
    }
    if kind == "pooled":
        expected |= {
            "EndpointName": aws_settings.pooled_endpoint,
            # The version's model.tar.gz (made at deploy), relative to the endpoint's prefix.
            "TargetModel": model_archive_key(model.artifact_key).removeprefix("tenants/"),
        }
    else:
        expected |= {"EndpointName": host.endpoint_name(tenant), "TargetVariant": host.variant_name("mv_7")}
    stub = Stubber(clients.sagemaker_runtime)
    stub.add_response(
        "invoke_endpoint", {"Body": _stream("0.125,0.875"), "ContentType": "text/csv"}, expected
    )
    with stub:
        assert host.invoke(tenant, "mv_7", [[0.5, 1.0], [2.0, -3.25]]) == [0.125, 0.875]
    stub.assert_no_pending_responses()


def test_pooled_slots_refuse_artifacts_outside_the_endpoint_prefix(
    host: SageMakerModelHost, store: S3ObjectStore
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "pooled")
    data = b"model"
    store.put("elsewhere/model.tar.gz", data)
    with pytest.raises(ProviderError, match="outside the pooled endpoint"):
        host.deploy(HostedModel(tenant, "mv_1", "elsewhere/model.tar.gz", hashlib.sha256(data).hexdigest()))
    assert host.deployed(tenant) == []


def test_deploy_needs_a_slot_and_refuses_a_changed_artifact(
    host: SageMakerModelHost, store: S3ObjectStore
) -> None:
    tenant = contracts_extra.new_tenant()
    model = contracts_extra.hosted(store, tenant, "mv_1")
    with pytest.raises(ProviderError, match="no model-hosting slot"):
        host.deploy(model)
    host.ensure_slot(tenant, "dedicated")
    host.deploy(model)
    other = contracts_extra.hosted(store, tenant, "mv_1", b"retrained bytes under the same version id")
    with pytest.raises(ProviderError, match="another artifact"):
        host.deploy(other)
    with pytest.raises(ValueError, match="unknown slot kind"):
        host.ensure_slot(contracts_extra.new_tenant(), "gpu")


def test_endpoint_failure_is_reported(
    host: SageMakerModelHost, store: S3ObjectStore, clients: AwsClients
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    host.deploy(contracts_extra.hosted(store, tenant, "mv_1"))
    endpoint = host.endpoint_name(tenant)
    failed = {
        "EndpointName": endpoint,
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint}",
        "EndpointConfigName": "cfg",
        "EndpointStatus": "Failed",
        "FailureReason": "The primary container for variant mv-1 did not pass the ping health check.",
        "CreationTime": "2025-01-01T00:00:00Z",
        "LastModifiedTime": "2025-01-01T00:00:00Z",
    }

    calls: list[str] = []  # CreateEndpoint / DeleteEndpoint, in order

    def fail(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if calls != ["create"]:
            return None  # moto's own answer before the first creation and after the replacement
        return AWSResponse("https://moto/describe", 200, {}, None), dict(failed)

    def record(name: str) -> Any:
        return lambda **_: calls.append(name)

    events = clients.sagemaker.meta.events
    events.register("after-call.sagemaker.CreateEndpoint", record("create"))
    events.register("after-call.sagemaker.DeleteEndpoint", record("delete"))
    events.register_first("before-call.sagemaker.DescribeEndpoint", fail)
    try:
        with pytest.raises(ProviderError, match="did not pass the ping health check"):
            host.set_weights(tenant, {"mv_1": 10_000})
        host.set_weights(tenant, {"mv_1": 10_000})  # replaces the failed endpoint this host created
    finally:
        events.unregister("before-call.sagemaker.DescribeEndpoint", fail)
    assert calls == ["create", "delete", "create"]
    assert clients.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    assert host.weights(tenant) == {"mv_1": 10_000}


def test_csv_and_score_parsing() -> None:
    assert csv_body([[1.0, float("nan"), 2.5]]) == b"1.0,,2.5\n"
    assert parse_scores(b"0.1\n0.2\n") == [0.1, 0.2]
    assert parse_scores("0.1,0.2") == [0.1, 0.2]
    assert parse_scores(b"[0.3, [0.4]]") == [0.3, 0.4]
    assert parse_scores(b'{"predictions": [{"score": 0.9}, 0.1]}') == [0.9, 0.1]
    assert parse_scores(b"") == []
    with pytest.raises(ValueError):
        parse_scores(b"body")


def test_misconfigured_host_says_what_is_missing(
    clients: AwsClients, store: S3ObjectStore, aws_settings: AwsSettings
) -> None:
    host = SageMakerModelHost(
        clients.sagemaker,
        clients.sagemaker_runtime,
        store,
        execution_role_arn=None,
        image_uri=None,
        pooled_endpoint=aws_settings.pooled_endpoint,
        bucket=aws_settings.bucket,
    )
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    with pytest.raises(ProviderError, match="FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN"):
        host.deploy(contracts_extra.hosted(store, tenant, "mv_1"))
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        host.deploy(HostedModel(tenant, "mv_2", "tenants/nope/model.tar.gz", "0" * 64))
