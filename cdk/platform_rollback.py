"""The platform's rollback Lambda: an explicit least-privilege role, its log group and dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from cdk import iam_statements
from cdk.lambda_asset import stage_rollback_asset

if TYPE_CHECKING:
    from cdk.platform_stack import PlatformStack

ROLLBACK_HANDLER = "lambdas.rollback.handler.lambda_handler"
# The rollback waits up to this long for the endpoint to be InService; the function's timeout is
# above it, so a slow SageMaker update fails with an error (and a retry) instead of a timeout.
ROLLBACK_WAIT_S = 600
ROLLBACK_TIMEOUT_S = 900


def rollback_function(self: PlatformStack, notification_secret_arn: str | None) -> lambda_.Function:
    """The rollback Lambda (subscribed to the alarm topic): its role, log group, dead letters."""
    function_name = self.names.rollback_function_name
    log_group = logs.LogGroup(
        self,
        "RollbackLogGroup",
        log_group_name=f"/aws/lambda/{function_name}",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    dead_letters = sqs.Queue(
        self,
        "RollbackDeadLetters",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=self.key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    # An explicit role: the default one would attach AWSLambdaBasicExecutionRole (logs on "*").
    role = iam.Role(
        self,
        "RollbackRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Rollback Lambda: shift endpoint weights to stable, log and notify",
    )
    endpoint_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:endpoint/fraudrail-*"
    statements = [
        iam.PolicyStatement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        ),
        # Tenant endpoints come and go with tenant stacks; all are named fraudrail-<tenant>.
        iam.PolicyStatement(
            sid="ShiftEndpointWeights",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=[endpoint_arn],
        ),
        # The model host reads the endpoint's config (variant set) and its slot record.
        iam.PolicyStatement(
            sid="ReadEndpointConfigs",
            actions=["sagemaker:DescribeEndpointConfig"],
            resources=[
                f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:endpoint-config/fraudrail-*"
            ],
        ),
        iam.PolicyStatement(
            sid="ModelHostRecords",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[self.bucket.arn_for_objects("model-host/*")],
        ),
        iam.PolicyStatement(
            sid="RecordRollbacks",
            actions=["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
            resources=[self.rollback_table.table_arn],
        ),
        iam_statements.use_key_by_arn([self.key.key_arn], write=True),
        iam_statements.put_metrics([self.names.metrics_namespace]),
    ]
    if notification_secret_arn:
        statements.append(
            iam.PolicyStatement(
                sid="ReadNotificationWebhooks",
                actions=["secretsmanager:GetSecretValue"],
                resources=[notification_secret_arn],
            )
        )
    for statement in statements:
        role.add_to_policy(statement)
    environment = {
        "FRAUDRAIL_AWS_REGION": self.region,
        "FRAUDRAIL_AWS_ROLLBACK_TABLE": self.rollback_table.table_name,
        "FRAUDRAIL_AWS_FLAGGED_TABLE": self.flagged_table.table_name,
        "FRAUDRAIL_AWS_ALARM_TOPIC_ARN": self.alarm_topic.topic_arn,
        "FRAUDRAIL_METRICS_NAMESPACE": self.names.metrics_namespace,
        "FRAUDRAIL_AWS_METRICS_NAMESPACE": self.names.metrics_namespace,
        "FRAUDRAIL_AWS_BUCKET": self.bucket.bucket_name,
        "FRAUDRAIL_AWS_POOLED_ENDPOINT": self.names.pooled_endpoint_name,
        "FRAUDRAIL_ROLLBACK_ENDPOINT_TIMEOUT_S": str(ROLLBACK_WAIT_S),
    }
    if notification_secret_arn:
        environment["FRAUDRAIL_NOTIFICATION_SECRET_ARN"] = notification_secret_arn
    function = lambda_.Function(
        self,
        "RollbackFunction",
        function_name=function_name,
        runtime=lambda_.Runtime.PYTHON_3_11,
        handler=ROLLBACK_HANDLER,
        code=lambda_.Code.from_asset(str(stage_rollback_asset())),
        role=role,
        log_group=log_group,
        timeout=Duration.seconds(ROLLBACK_TIMEOUT_S),
        memory_size=256,
        environment=environment,
        environment_encryption=self.key,
        dead_letter_queue=dead_letters,
        retry_attempts=2,
    )
    return function
