"""The shared platform stack: key, topic and rollback Lambda, tables, cache, pooled endpoint, dashboard."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk.assertions import Match

from cdk.platform_rollback import ROLLBACK_HANDLER, ROLLBACK_TIMEOUT_S, ROLLBACK_WAIT_S
from cdk.platform_stack import CLOUDWATCH_DASHBOARD_FILE
from tests.cdk.support import REPO_ROOT, Synthesized, logical_id


def test_kms_key_rotates(synthesized: Synthesized) -> None:
    template = synthesized.templates["platform"]
    template.resource_count_is("AWS::KMS::Key", 1)
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": "alias/fraudrail-platform"})


def test_alarm_topic_is_encrypted_and_feeds_the_rollback_lambda(synthesized: Synthesized) -> None:
    stack = synthesized.platform
    template = synthesized.templates["platform"]
    key_id = logical_id(stack, stack.key)
    topic_id = logical_id(stack, stack.alarm_topic)
    function_id = logical_id(stack, stack.rollback_function)
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": "fraudrail-alarms", "KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}},
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "lambda",
            "TopicArn": {"Ref": topic_id},
            "Endpoint": {"Fn::GetAtt": [function_id, "Arn"]},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunction", "Principal": "sns.amazonaws.com", "SourceArn": {"Ref": topic_id}},
    )
    # CloudWatch alarms may publish to the CMK-encrypted topic.
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            }
        },
    )


def test_rollback_lambda_runs_the_lambdas_asset(synthesized: Synthesized) -> None:
    template = synthesized.templates["platform"]
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": ROLLBACK_HANDLER,
            "Runtime": "python3.11",
            "FunctionName": "fraudrail-rollback",
            "DeadLetterConfig": {"TargetArn": Match.any_value()},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "FRAUDRAIL_AWS_ROLLBACK_TABLE": Match.any_value(),
                        "FRAUDRAIL_AWS_FLAGGED_TABLE": Match.any_value(),
                        "FRAUDRAIL_AWS_ALARM_TOPIC_ARN": Match.any_value(),
                    }
                )
            },
        },
    )
    # No AWSLambdaBasicExecutionRole (logs on "*"): the role has only its own scoped policy.
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})]}
            ),
            "ManagedPolicyArns": Match.absent(),
        },
    )
    # The staged asset carries lambdas/ and everything the handler imports (tests/cdk/test_rollback_asset.py
    # imports it in isolation); its timeout is above the longest weight-change wait.
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "fraudrail-rollback",
            "Timeout": ROLLBACK_TIMEOUT_S,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "FRAUDRAIL_ROLLBACK_ENDPOINT_TIMEOUT_S": str(ROLLBACK_WAIT_S),
                        "FRAUDRAIL_AWS_BUCKET": Match.any_value(),
                    }
                )
            },
        },
    )
    assert ROLLBACK_TIMEOUT_S > ROLLBACK_WAIT_S
    staged = rollback_asset_dir(synthesized)
    assert _files(REPO_ROOT / "lambdas") == {
        str(p.relative_to("lambdas")) for p in map(Path, _files(staged)) if p.parts[0] == "lambdas"
    }
    assert {"traffic", "providers", "lambdas"} == {Path(f).parts[0] for f in _files(staged)}


def rollback_asset_dir(synthesized: Synthesized) -> Path:
    """The rollback function's asset folder, as cdk.out's asset manifest names it."""
    manifest = json.loads((synthesized.assembly_dir / "FraudrailPlatform.assets.json").read_text())
    zips = [entry["source"] for entry in manifest["files"].values() if entry["source"]["packaging"] == "zip"]
    assert len(zips) == 1
    return synthesized.assembly_dir / zips[0]["path"]


def _files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_flagged_transactions_table(synthesized: Synthesized) -> None:
    stack = synthesized.platform
    template = synthesized.templates["platform"]
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "fraudrail-flagged-transactions",
            "KeySchema": [
                {"AttributeName": "tenant_id", "KeyType": "HASH"},
                {"AttributeName": "flagged_id", "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "status-score-index",
                    "KeySchema": [
                        {"AttributeName": "tenant_status", "KeyType": "HASH"},
                        {"AttributeName": "score", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": {"Fn::GetAtt": [logical_id(stack, stack.key), "Arn"]},
            },
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "BillingMode": "PAY_PER_REQUEST",
        },
    )


def test_rollback_log_table(synthesized: Synthesized) -> None:
    synthesized.templates["platform"].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "fraudrail-rollback-log",
            "KeySchema": [
                {"AttributeName": "tenant_id", "KeyType": "HASH"},
                {"AttributeName": "rollback_id", "KeyType": "RANGE"},
            ],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        },
    )


def test_cache_is_encrypted_in_isolated_subnets(synthesized: Synthesized) -> None:
    stack = synthesized.platform
    template = synthesized.templates["platform"]
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {
            "Engine": "redis",
            "AtRestEncryptionEnabled": True,
            "TransitEncryptionEnabled": True,
            "KmsKeyId": {"Fn::GetAtt": [logical_id(stack, stack.key), "Arn"]},
            "AuthToken": Match.any_value(),
            "CacheSubnetGroupName": {"Ref": Match.string_like_regexp("CacheSubnetGroup")},
            "AutomaticFailoverEnabled": True,
        },
    )
    # The AUTH token is a dynamic reference to the generated secret, never a literal.
    (group,) = template.find_resources("AWS::ElastiCache::ReplicationGroup").values()
    assert "{{resolve:secretsmanager:" in json.dumps(group["Properties"]["AuthToken"])
    isolated = [{"Ref": logical_id(stack, subnet)} for subnet in stack.vpc.isolated_subnets]
    template.has_resource_properties("AWS::ElastiCache::SubnetGroup", {"SubnetIds": isolated})
    # The load balancer's public subnets have an internet gateway; the cache's subnets route nowhere.
    isolated_ids = {ref["Ref"] for ref in isolated}
    tables = {
        a["Properties"]["RouteTableId"]["Ref"]
        for a in template.find_resources("AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"].get("Ref") in isolated_ids
    }
    assert len(tables) == len(isolated_ids)
    outward = [
        r
        for r in template.find_resources("AWS::EC2::Route").values()
        if r["Properties"]["RouteTableId"].get("Ref") in tables
    ]
    assert outward == [], f"isolated subnets must have no route out: {outward}"
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like({"FromPort": 6379, "ToPort": 6379, "IpProtocol": "tcp"})
            ],
        },
    )


def test_pooled_multi_model_endpoint(synthesized: Synthesized) -> None:
    stack = synthesized.platform
    template = synthesized.templates["platform"]
    template.has_resource_properties(
        "AWS::SageMaker::Model",
        {
            "PrimaryContainer": {
                "Mode": "MultiModel",
                "Image": Match.any_value(),
                "ModelDataUrl": {
                    "Fn::Join": ["", ["s3://", {"Ref": logical_id(stack, stack.bucket)}, "/tenants/"]]
                },
                "MultiModelConfig": {"ModelCacheSetting": "Enabled"},
            },
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": {"Fn::GetAtt": [logical_id(stack, stack.key), "Arn"]},
            "ProductionVariants": [
                Match.object_like({"VariantName": "pooled", "InstanceType": "ml.m5.large"})
            ],
        },
    )
    template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": "fraudrail-pooled"})


def test_platform_bucket_is_private_and_encrypted(synthesized: Synthesized) -> None:
    synthesized.templates["platform"].has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})}
                    )
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )


def test_dashboard_body_is_the_cloudwatch_json(synthesized: Synthesized) -> None:
    synthesized.templates["platform"].has_resource_properties(
        "AWS::CloudWatch::Dashboard",
        {
            "DashboardName": "fraudrail-platform",
            "DashboardBody": {"Fn::Sub": CLOUDWATCH_DASHBOARD_FILE.read_text(encoding="utf-8")},
        },
    )


def test_platform_outputs(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("platform")["Outputs"]
    assert {
        "PlatformBucketName",
        "PlatformKeyArn",
        "AlarmTopicArn",
        "FlaggedTableName",
        "RollbackTableName",
        "PooledEndpointName",
        "CachePrimaryEndpoint",
        "CacheAuthSecretArn",
    } <= set(outputs)
    endpoint_id = logical_id(synthesized.platform, synthesized.platform.pooled_endpoint)
    assert outputs["PooledEndpointName"]["Value"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
