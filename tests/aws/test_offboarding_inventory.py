"""Offboarding's inventory by tag, the retained-resource teardown, and FRAUDRAIL_AWS_EMULATION's guard.

The provisioner's ``list_resources`` must name whatever is still tagged with the tenant even when
its stack is gone (the premium VPC moto abandoned on DependencyViolation once went unreported);
``UpdateEndpoint``'s request, answered on moto by the declared stand-in, is the real API shape.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from control_plane.bootstrap.aws import build_aws_providers
from control_plane.settings import AppSettings
from guardrails.policy import RegoPolicyEngine
from providers.aws.emulation import install_update_endpoint_standin, require_emulator
from providers.aws.factory import AwsClients
from providers.aws.inventory import TaggedInventory
from providers.aws.teardown import RetainedResources
from providers.local.model_host import LocalModelHost
from providers.local.object_store import LocalObjectStore
from tests.aws import contracts_extra
from tests.aws.conftest import REGION
from tests.aws.test_model_host import make_host
from tests.aws.test_provisioner import compliant_template, make, policy, spec_for  # noqa: F401

pytestmark = pytest.mark.aws


def _inventory(clients: AwsClients) -> TaggedInventory:
    return TaggedInventory(clients.tagging, clients.ec2, clients.s3, clients.kms)


def _tag(tenant: str) -> list[dict[str, str]]:
    return [{"Key": "tenant_id", "Value": tenant}]


def test_leftovers_tagged_with_the_tenant_are_listed_after_the_stack_is_gone(
    clients: AwsClients,
    policy: RegoPolicyEngine,  # noqa: F811
    tmp_path: Any,
) -> None:
    tenant, other = contracts_extra.new_tenant(), contracts_extra.new_tenant()
    host = LocalModelHost(LocalObjectStore(tmp_path / "objects"))
    provisioner = make(
        clients.cloudformation,
        policy,
        compliant_template,
        model_host=host,
        inventory=_inventory(clients),
        retained=RetainedResources(clients.s3, clients.kms),
    )
    spec = spec_for(tenant)
    plan = provisioner.plan(spec)
    assert [r.kind for r in plan] == ["stack", "model_slot"] and plan[1].name == "serverless"
    assert [provisioner.apply(spec, r) for r in plan] == [True, True]
    assert provisioner.apply(spec, plan[1]) is False  # the slot exists: nothing created twice
    assert [s.kind for s in host.slots(tenant)] == ["serverless"]  # the trial tier

    # What a failed premium teardown left: a VPC with an endpoint, and the silo bucket.
    vpc = clients.ec2.create_vpc(
        CidrBlock="10.9.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tag(tenant)}]
    )["Vpc"]["VpcId"]
    bucket = f"fraudrail-silo-{tenant.replace('_', '-')}"
    clients.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    clients.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tag(tenant)})
    clients.ec2.create_vpc(  # another tenant's: never listed for this one
        CidrBlock="10.8.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": _tag(other)}]
    )

    removed = provisioner.destroy(spec)
    assert removed[0] == f"model_slot:{tenant}" and f"stack:{provisioner.stack_name(tenant)}" in removed
    left = provisioner.list_resources(tenant)
    assert any(vpc in item for item in left), left
    assert any(item.endswith(f":::{bucket}") or item.endswith(f"bucket:{bucket}") for item in left), left
    assert not any(item.startswith(("stack:", "model_slot:")) for item in left)

    # Retained resources removed as offboarding does: the list is empty only then.
    clients.s3.put_object(Bucket=bucket, Key="models/m.frm", Body=b"x")
    assert RetainedResources(clients.s3, clients.kms).remove([("AWS::S3::Bucket", bucket)]) == [
        f"s3:bucket:{bucket}"
    ]
    clients.ec2.delete_vpc(VpcId=vpc)
    assert provisioner.list_resources(tenant) == []
    assert _inventory(clients).tagged(other) != []


def test_a_key_scheduled_for_deletion_no_longer_counts(clients: AwsClients) -> None:
    tenant = contracts_extra.new_tenant()
    key = clients.kms.create_key(Tags=[{"TagKey": "tenant_id", "TagValue": tenant}])["KeyMetadata"]
    assert _inventory(clients).tagged(tenant) == [key["Arn"]]
    assert RetainedResources(clients.s3, clients.kms).remove([("AWS::KMS::Key", key["KeyId"])]) == [
        f"kms:key:{key['KeyId']}"
    ]
    assert _inventory(clients).tagged(tenant) == []


@pytest.mark.parametrize(
    ("endpoint", "env", "refused"),
    [
        (None, "test", "needs FRAUDRAIL_AWS_ENDPOINT_URL"),
        ("https://sagemaker.eu-west-1.amazonaws.com", "test", "refuses FRAUDRAIL_AWS_ENDPOINT_URL"),
        ("https://moto.example.com", "test", "refuses FRAUDRAIL_AWS_ENDPOINT_URL"),
        ("http://127.0.0.1:5000", "production", "FRAUDRAIL_ENV=production"),
    ],
)
def test_emulation_is_refused_where_it_could_reach_aws(endpoint: str | None, env: str, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        require_emulator("moto", endpoint, env=env)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "http://localhost:5000", "http://moto:5000"])
def test_emulation_is_accepted_on_an_emulators_address(endpoint: str) -> None:
    require_emulator("moto", endpoint, env="development")
    require_emulator("off", None, env="production")  # off: nothing to check


def test_the_composition_root_refuses_emulation_against_aws(clients: AwsClients, tmp_path: Any) -> None:
    from providers.aws.settings import AwsSettings

    settings = AppSettings(provider="aws", aws_emulation="moto", home=tmp_path)
    with pytest.raises(ValueError, match="needs FRAUDRAIL_AWS_ENDPOINT_URL"):
        build_aws_providers(settings, AwsSettings(endpoint_url=None), None, clients=clients)  # type: ignore[arg-type]


def test_update_endpoint_on_moto_goes_through_the_stand_in_with_the_real_request_shape(
    clients: AwsClients, aws_settings: Any, kms_key_id: str, boto_session: Any
) -> None:
    from providers.aws.object_store import S3ObjectStore

    store = S3ObjectStore(clients.s3, aws_settings.bucket, kms_key_id)
    standin = install_update_endpoint_standin(clients.sagemaker)
    host = make_host(clients, store, aws_settings, poll_s=0.01)
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "dedicated")
    host.deploy(contracts_extra.hosted(store, tenant, "mv_a"))
    host.set_weights(tenant, {"mv_a": 10_000})  # creates the endpoint
    host.deploy(contracts_extra.hosted(store, tenant, "mv_b"))
    host.set_weights(tenant, {"mv_a": 7_000, "mv_b": 3_000})  # a new variant: UpdateEndpoint
    assert host.verify_weights(tenant) == {"mv_a": 7_000, "mv_b": 3_000}
    assert len(standin.requests) == 1
    request = standin.requests[0]
    assert set(request) == {"EndpointName", "EndpointConfigName", "RetainAllVariantProperties"}
    # Stubber validates the parameters against SageMaker's own API model (what AWS would accept).
    sagemaker = boto_session.client("sagemaker", region_name=REGION)  # no stand-in on this one
    with Stubber(sagemaker) as stub:
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/x"},
            expected_params=request,
        )
        sagemaker.update_endpoint(**request)
        stub.assert_no_pending_responses()


def test_an_html_error_page_never_reaches_a_message_verbatim() -> None:
    from botocore.exceptions import ClientError

    from providers.aws._util import provider_error

    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal</h1>"
    error = ClientError(
        {"Error": {"Code": "500", "Message": page}, "ResponseMetadata": {"HTTPStatusCode": 500}},  # type: ignore[typeddict-item]
        "UpdateEndpointWeightsAndCapacities",
    )
    message = str(provider_error("sagemaker update weights of fraudrail-x", error))
    assert "<" not in message and "HTTP 500" in message and "500 Internal Server Error" in message
