"""The control plane's compute in the platform stack (cdk/platform_compute.py), read from the template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from cdk.app import add_platform_stack, new_app
from cdk.platform_compute import (
    CTX_API_TASKS,
    CTX_CERTIFICATE_ARN,
    CTX_CONTROL_PLANE_REPOSITORY,
    CTX_CONTROL_PLANE_TAG,
    ControlPlaneCompute,
)
from cdk.platform_stack import PlatformStack
from tests.cdk.support import REGION, Synthesized, logical_id

CERTIFICATE = f"arn:aws:acm:{REGION}:123456789012:certificate/abc-123"


@pytest.fixture(scope="module")
def platform(synthesized: Synthesized) -> PlatformStack:
    return synthesized.platform


@pytest.fixture(scope="module")
def compute(platform: PlatformStack) -> ControlPlaneCompute:
    return platform.compute


@pytest.fixture(scope="module")
def template(synthesized: Synthesized) -> Template:
    return synthesized.templates["platform"]


@pytest.fixture(scope="module")
def resources(synthesized: Synthesized) -> dict[str, Any]:
    resources: dict[str, Any] = synthesized.template_json("platform")["Resources"]
    return resources


def _ref(stack: PlatformStack, construct: Any) -> dict[str, str]:
    return {"Ref": logical_id(stack, construct)}


def _containers(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        c["Name"]: c
        for r in resources.values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"]
    }


def test_api_and_worker_run_the_same_image_with_their_own_command(resources: dict[str, Any]) -> None:
    containers = _containers(resources)
    assert set(containers) == {"api", "worker"}
    assert containers["api"]["Command"] == ["serve", "--no-worker"]
    assert containers["worker"]["Command"] == ["worker"]
    assert containers["api"]["Image"] == containers["worker"]["Image"]
    assert "/fraudrail:latest" in str(containers["api"]["Image"])
    assert containers["api"]["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]
    assert "healthz" in containers["api"]["HealthCheck"]["Command"][-1]


def test_services_are_fargate_in_private_subnets(
    template: Template, platform: PlatformStack, compute: ControlPlaneCompute
) -> None:
    private = [_ref(platform, s) for s in platform.vpc.private_subnets]
    template.resource_count_is("AWS::ECS::Service", 2)
    template.all_resources_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "AssignPublicIp": "DISABLED",
                    "SecurityGroups": [
                        {"Fn::GetAtt": [logical_id(platform, compute.service_security_group), "GroupId"]}
                    ],
                    "Subnets": private,
                }
            },
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
        },
    )


def test_settings_come_from_stack_resources_and_credentials_from_secrets(
    resources: dict[str, Any], platform: PlatformStack, compute: ControlPlaneCompute
) -> None:
    for name, container in _containers(resources).items():
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["FRAUDRAIL_PROVIDER"] == "aws"
        assert env["FRAUDRAIL_ENV"] == "production"
        assert env["FRAUDRAIL_CACHE_BACKEND"] == env["FRAUDRAIL_BUS_BACKEND"] == "redis"
        assert env["FRAUDRAIL_AWS_BUCKET"] == _ref(platform, platform.bucket)
        assert env["FRAUDRAIL_AWS_FLAGGED_TABLE"] == _ref(platform, platform.flagged_table)
        assert env["FRAUDRAIL_AWS_ROLLBACK_TABLE"] == _ref(platform, platform.rollback_table)
        assert env["FRAUDRAIL_AWS_ALARM_TOPIC_ARN"] == _ref(platform, platform.alarm_topic)
        assert env["FRAUDRAIL_AWS_KMS_KEY_ID"] == {"Fn::GetAtt": [logical_id(platform, platform.key), "Arn"]}
        pooled = logical_id(platform, platform.pooled_endpoint)
        assert env["FRAUDRAIL_AWS_POOLED_ENDPOINT"] == {"Fn::GetAtt": [pooled, "EndpointName"]}
        assert "fraudrail-inference:latest" in str(env["FRAUDRAIL_AWS_INFERENCE_IMAGE_URI"])
        # Credentials only as ECS secrets, never as plain environment values.
        assert not {"FRAUDRAIL_DATABASE_URL", "FRAUDRAIL_REDIS_URL", "FRAUDRAIL_METRICS_TOKEN"} & set(env)
        secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        # Only the API signs people in by OIDC: it alone holds the key of the sealed client secrets.
        signs_in = {"FRAUDRAIL_OIDC_SECRET_KEY": _ref(platform, platform.identity.secret_key)}
        assert secrets == {
            "FRAUDRAIL_DATABASE_URL": _ref(platform, compute.database.url_secret),
            "FRAUDRAIL_REDIS_URL": _ref(platform, compute.redis_url_secret),
            "FRAUDRAIL_CARD_HASH_KEY": _ref(platform, compute.card_hash_secret),
            "FRAUDRAIL_METRICS_TOKEN": _ref(platform, compute.metrics_token_secret),
            **(signs_in if name == "api" else {}),
        }


def test_composed_urls_hold_dynamic_references_never_a_password(
    resources: dict[str, Any], platform: PlatformStack, compute: ControlPlaneCompute
) -> None:
    database_url = resources[logical_id(platform, compute.database.url_secret)]["Properties"]["SecretString"]
    parts = database_url["Fn::Join"][1]
    assert parts[0] == "postgresql+psycopg://fraudrail:{{resolve:secretsmanager:"
    assert parts[1] == _ref(platform, compute.database.credentials)
    assert parts[2].startswith(":SecretString:password::}}@")
    assert parts[-1].endswith("?sslmode=require")
    redis_url = resources[logical_id(platform, compute.redis_url_secret)]["Properties"]["SecretString"]
    assert redis_url["Fn::Join"][1][:2] == [
        "rediss://:{{resolve:secretsmanager:",
        _ref(platform, platform.cache_auth_secret),
    ]
    for secret in (compute.database.url_secret, compute.redis_url_secret):
        assert resources[logical_id(platform, secret)]["Properties"]["KmsKeyId"] == {
            "Fn::GetAtt": [logical_id(platform, platform.key), "Arn"]
        }


def test_https_listener_with_the_certificate_parameter_and_an_http_redirect(
    template: Template, synthesized: Synthesized
) -> None:
    parameters = synthesized.template_json("platform")["Parameters"]
    assert "ApiCertificateArn" in parameters
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "Type": "application",
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": {"Ref": "ApiCertificateArn"}}],
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"},
                }
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"Port": 8000, "TargetType": "ip", "HealthCheckPath": "/healthz", "Matcher": {"HttpCode": "200"}},
    )


def test_autoscaling_tracks_requests_per_target_and_cpu(
    template: Template, compute: ControlPlaneCompute
) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 2, "MaxCapacity": 10, "ScalableDimension": "ecs:service:DesiredCount"},
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": Match.object_like(
                        {"PredefinedMetricType": "ALBRequestCountPerTarget"}
                    ),
                    "TargetValue": compute.settings.requests_per_target,
                }
            ),
        },
    )
    cpu = template.find_resources(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "Properties": {
                "TargetTrackingScalingPolicyConfiguration": {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    }
                }
            }
        },
    )
    assert len(cpu) == 2  # the API and the worker


def test_waf_rate_limit_per_ip_and_common_rules_on_the_load_balancer(
    template: Template, platform: PlatformStack, compute: ControlPlaneCompute
) -> None:
    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "Rules": [
                Match.object_like(
                    {
                        "Action": {"Block": {}},
                        "Statement": {
                            "RateBasedStatement": Match.object_like(
                                {"AggregateKeyType": "IP", "Limit": compute.settings.waf_rate_limit}
                            )
                        },
                    }
                ),
                Match.object_like(
                    {
                        "OverrideAction": {"None": {}},
                        "Statement": {
                            "ManagedRuleGroupStatement": Match.object_like(
                                {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}
                            )
                        },
                    }
                ),
            ],
        },
    )
    template.has_resource_properties(
        "AWS::WAFv2::WebACLAssociation",
        {
            "ResourceArn": _ref(platform, compute.load_balancer),
            "WebACLArn": {"Fn::GetAtt": [logical_id(platform, compute.web_acl), "Arn"]},
        },
    )


def test_database_is_encrypted_private_backed_up_and_protected(
    template: Template, platform: PlatformStack, compute: ControlPlaneCompute
) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "StorageEncrypted": True,
            "KmsKeyId": {"Fn::GetAtt": [logical_id(platform, platform.key), "Arn"]},
            "PubliclyAccessible": False,
            "DeletionProtection": True,
            "BackupRetentionPeriod": 14,
            "MultiAZ": True,
            "MasterUserPassword": Match.object_like(
                {
                    "Fn::Join": Match.array_with(
                        [Match.array_with([Match.string_like_regexp("resolve:secretsmanager")])]
                    )
                }
            ),
        },
    )
    isolated = [_ref(platform, s) for s in platform.vpc.isolated_subnets]
    template.has_resource_properties("AWS::RDS::DBSubnetGroup", {"SubnetIds": isolated})
    # The only way in: 5432 from the services' security group.
    db_group = logical_id(platform, compute.database.security_group)
    ingress = template.find_resources(
        "AWS::EC2::SecurityGroupIngress", {"Properties": {"GroupId": {"Fn::GetAtt": [db_group, "GroupId"]}}}
    )
    assert [r["Properties"]["SourceSecurityGroupId"] for r in ingress.values()] == [
        {"Fn::GetAtt": [logical_id(platform, compute.service_security_group), "GroupId"]}
    ]
    assert [r["Properties"]["FromPort"] for r in ingress.values()] == [5432]


def test_log_groups_have_retention(template: Template) -> None:
    for name in (
        "/fraudrail/control-plane/api",
        "/fraudrail/control-plane/worker",
        "/aws/rds/instance/fraudrail-control-plane/postgresql",
    ):
        template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": name, "RetentionInDays": 30, "KmsKeyId": Match.any_value()},
        )


def test_only_the_load_balancer_is_open_to_the_internet_and_only_on_443_and_80(
    resources: dict[str, Any],
) -> None:
    open_rules = []
    for rid, resource in resources.items():
        rules = []
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            rules = resource["Properties"].get("SecurityGroupIngress", [])
        elif resource["Type"] == "AWS::EC2::SecurityGroupIngress":
            rules = [resource["Properties"]]
        open_rules += [(rid, r["FromPort"], r["ToPort"]) for r in rules if r.get("CidrIp") == "0.0.0.0/0"]
    assert sorted((port, to) for _, port, to in open_rules) == [(80, 80), (443, 443)]
    assert {rid for rid, _, _ in open_rules} == {
        rid for rid in resources if rid.startswith("ControlPlaneLoadBalancerSecurityGroup")
    }


def test_outputs_cover_what_an_operator_needs(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("platform")["Outputs"]
    for name in (
        "ApiUrl",
        "LoadBalancerDnsName",
        "WebAclArn",
        "ClusterName",
        "ApiServiceName",
        "WorkerServiceName",
        "ApiTaskDefinitionArn",
        "ServiceSecurityGroupId",
        "ServiceSubnetIds",
        "ApiLogGroupName",
        "WorkerLogGroupName",
        "DatabaseEndpoint",
        "DatabaseSecretArn",
        "DatabaseUrlSecretArn",
        "RedisUrlSecretArn",
        "MetricsTokenSecretArn",
        "ControlPlaneImage",
        "InferenceImageUri",
        "SageMakerRoleArn",
        "TaskRoleArn",
    ):
        assert name in outputs, name


def test_context_sets_certificate_image_and_task_counts() -> None:
    app = new_app(
        {
            CTX_CERTIFICATE_ARN: CERTIFICATE,
            CTX_CONTROL_PLANE_REPOSITORY: "ops/fraudrail",
            CTX_CONTROL_PLANE_TAG: "v1.2.3",
            CTX_API_TASKS: "3-7",
        }
    )
    template = Template.from_stack(add_platform_stack(app, {}))
    assert (
        "Parameters" not in template.to_json() or "ApiCertificateArn" not in template.to_json()["Parameters"]
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Certificates": [{"CertificateArn": CERTIFICATE}]},
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 3, "MaxCapacity": 7}
    )
    images = {str(c["Image"]) for c in _containers(template.to_json()["Resources"]).values()}
    assert len(images) == 1 and "/ops/fraudrail:v1.2.3" in images.pop()


def test_cfn_lint_finds_no_error_in_the_platform_template(synthesized: Synthesized) -> None:
    # cfn-lint knows each resource type's schema (WAF rules, ECS, RDS engine versions); W3005 (a
    # redundant DependsOn that CDK writes) is the only warning it may report.
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(synthesized.template_json("platform")), config=ManualArgs(regions=[REGION]))
    assert [(m.rule.id, m.message) for m in matches if m.rule.id != "W3005"] == []
