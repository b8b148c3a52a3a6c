"""Tenant stacks are created, updated and deleted with the CloudFormation service role (moto server).

The control plane's own role may not create what tenant stacks hold; CloudFormation must act with
the role the platform stack outputs (``TenantStackRoleArn``), passed as ``RoleARN`` on every call.
"""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.settings import AppSettings
from guardrails.policy import RegoPolicyEngine
from providers.aws.factory import AwsClients
from providers.aws.provisioner import CloudFormationProvisioner
from tests.aws.conftest import ACCOUNT
from tests.aws.contracts_extra import new_tenant
from tests.aws.test_provisioner import compliant_template, make, policy, spec_for  # noqa: F401

pytestmark = pytest.mark.aws

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/fraudrail-platform-TenantStackRole-abc123"


def _provisioner(
    clients: AwsClients,
    policy: RegoPolicyEngine,  # noqa: F811
    role_arn: str | None,
) -> CloudFormationProvisioner:
    return make(clients.cloudformation, policy, compliant_template, service_role_arn=role_arn)


def _record_calls(clients: AwsClients) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    for operation in ("CreateStack", "UpdateStack", "DeleteStack"):
        clients.cloudformation.meta.events.register(
            f"provide-client-params.cloudformation.{operation}",
            lambda params, operation=operation, **_: calls.append((operation, dict(params))),
        )
    return calls


def test_create_update_and_delete_pass_the_service_role(
    clients: AwsClients,
    policy: RegoPolicyEngine,  # noqa: F811
) -> None:
    provisioner = _provisioner(clients, policy, ROLE_ARN)
    calls = _record_calls(clients)
    spec = spec_for(new_tenant())
    resource = provisioner.plan(spec)[0]

    assert provisioner.apply(spec, resource) is True
    stack = clients.cloudformation.describe_stacks(StackName=resource.name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["RoleARN"] == ROLE_ARN  # CloudFormation recorded the role it acts with

    # A stack in another state is updated, again with the role.
    clients.cloudformation.update_stack(StackName=resource.name, UsePreviousTemplate=True)
    assert provisioner.apply(spec, resource) is False
    assert provisioner.destroy(spec) == [f"stack:{resource.name}"]

    operations = [operation for operation, _ in calls]
    assert operations[0] == "CreateStack" and operations[-1] == "DeleteStack"
    ours = [(op, params) for op, params in calls if not params.get("UsePreviousTemplate")]
    assert [op for op, _ in ours] == ["CreateStack", "UpdateStack", "DeleteStack"]
    assert all(params["RoleARN"] == ROLE_ARN for _, params in ours)


def test_without_a_role_no_role_arn_is_sent(
    clients: AwsClients,
    policy: RegoPolicyEngine,  # noqa: F811
) -> None:
    provisioner = _provisioner(clients, policy, None)
    calls = _record_calls(clients)
    spec = spec_for(new_tenant())
    assert provisioner.apply(spec, provisioner.plan(spec)[0]) is True
    provisioner.destroy(spec)
    assert [op for op, _ in calls] == ["CreateStack", "DeleteStack"]
    assert all("RoleARN" not in params for _, params in calls)


def test_production_on_aws_refuses_to_start_without_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    required = {
        "env": "production",
        "provider": "aws",
        "card_hash_key": "k" * 32,
        "database_url": "postgresql+psycopg://u:p@db:5432/fraudrail",
        "metrics_token": "scrape-token",
    }
    with pytest.raises(ValueError, match="FRAUDRAIL_AWS_CFN_ROLE_ARN must be set in production on AWS"):
        AppSettings(**required)  # type: ignore[arg-type]
    assert AppSettings(**required, aws_cfn_role_arn=ROLE_ARN).aws_cfn_role_arn == ROLE_ARN  # type: ignore[arg-type]
    monkeypatch.setenv("FRAUDRAIL_AWS_CFN_ROLE_ARN", ROLE_ARN)
    assert AppSettings(**required).aws_cfn_role_arn == ROLE_ARN  # type: ignore[arg-type]
    # The local provider has no tenant stacks: the role is not needed there.
    monkeypatch.delenv("FRAUDRAIL_AWS_CFN_ROLE_ARN")
    assert AppSettings(**{**required, "provider": "local"}).aws_cfn_role_arn is None  # type: ignore[arg-type]
