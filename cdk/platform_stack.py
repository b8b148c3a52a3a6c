"""The shared platform: key, alarm topic and rollback Lambda, tables, cache, pooled endpoint, dashboard."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk import iam_statements
from cdk.config import (
    DASHBOARDS_DIR,
    DEFAULT_COST_CENTER,
    TAG_COST_CENTER,
    TAG_TENANT_ID,
    TAG_TIER,
    PlatformNames,
)
from cdk.platform_compute import ControlPlaneCompute, platform_vpc
from cdk.platform_identity import PlatformIdentity
from cdk.platform_monitoring import DriftAlarms
from cdk.platform_rollback import rollback_function

PLATFORM_TIER = "platform"
PLATFORM_TENANT = "shared"
CLOUDWATCH_DASHBOARD_FILE = DASHBOARDS_DIR / "cloudwatch" / "platform.json"
TENANTS_PREFIX = "tenants/"


class PlatformStack(Stack):
    """Resources every tenant shares; tenant stacks find them by the names in ``PlatformNames``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: PlatformNames | None = None,
        cost_center: str = DEFAULT_COST_CENTER,
        cache_node_type: str = "cache.t4g.small",
        pooled_instance_type: str = "ml.m5.large",
        notification_secret_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.names = names or PlatformNames()
        Tags.of(self).add(TAG_TENANT_ID, PLATFORM_TENANT)
        Tags.of(self).add(TAG_TIER, PLATFORM_TIER)
        Tags.of(self).add(TAG_COST_CENTER, cost_center)

        self.key = self._key()
        self.bucket = self._bucket()
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=self.names.alarm_topic_name,
            display_name="Fraudrail alarms",
            master_key=self.key,
        )
        self.flagged_table = self._flagged_table()
        self.rollback_table = self._rollback_table()
        self.rollback_function = rollback_function(self, notification_secret_arn)
        self.alarm_topic.add_subscription(subscriptions.LambdaSubscription(self.rollback_function))
        self.vpc = platform_vpc(self, "Vpc")
        self.cache, self.cache_auth_secret = self._cache(cache_node_type)
        self.pooled_endpoint = self._pooled_endpoint(pooled_instance_type)
        self.compute = ControlPlaneCompute(self, "ControlPlane", platform=self)
        self.identity = PlatformIdentity(
            self,
            "Identity",
            default_public_url=f"https://{self.compute.load_balancer.load_balancer_dns_name}",
            key=self.key,
            api=self.compute.api_service,
        )
        self.dashboard = cloudwatch.CfnDashboard(
            self,
            "Dashboard",
            dashboard_name=self.names.dashboard_name,
            dashboard_body=Fn.sub(CLOUDWATCH_DASHBOARD_FILE.read_text(encoding="utf-8")),
        )
        self.drift_alarms = DriftAlarms(
            self, "Monitoring", key=self.key, namespace=self.names.metrics_namespace
        )
        self._outputs()

    def _key(self) -> kms.Key:
        key = kms.Key(
            self,
            "PlatformKey",
            alias=self.names.key_alias,
            description="Fraudrail platform data: bucket, tables, topic, cache, endpoints",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the KMS-encrypted topic; a key policy's "*" means this key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        return key

    def _bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "PlatformBucket",
            bucket_name=self.names.bucket_name(self.account, self.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="logs-to-glacier",
                    prefix="logs/",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER, transition_after=Duration.days(30)
                        )
                    ],
                )
            ],
        )

    def _flagged_table(self) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            "FlaggedTransactions",
            table_name=self.names.flagged_table_name,
            partition_key=dynamodb.Attribute(name="tenant_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="flagged_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
        )
        # "<tenant_id>#<status>" keeps the review queue tenant-scoped; score sorts it.
        table.add_global_secondary_index(
            index_name="status-score-index",
            partition_key=dynamodb.Attribute(name="tenant_status", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="score", type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        return table

    def _rollback_table(self) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "RollbackLog",
            table_name=self.names.rollback_table_name,
            partition_key=dynamodb.Attribute(name="tenant_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="rollback_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _cache(self, node_type: str) -> tuple[elasticache.CfnReplicationGroup, secretsmanager.Secret]:
        security_group = ec2.SecurityGroup(
            self,
            "CacheSecurityGroup",
            vpc=self.vpc,
            description="Fraudrail feature cache: Redis from inside the VPC only",
            allow_all_outbound=False,
        )
        security_group.add_ingress_rule(
            ec2.Peer.ipv4(self.vpc.vpc_cidr_block), ec2.Port.tcp(6379), "Redis from the VPC"
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "CacheSubnetGroup",
            description="Fraudrail feature cache (isolated subnets)",
            subnet_ids=[subnet.subnet_id for subnet in self.vpc.isolated_subnets],
        )
        auth_secret = secretsmanager.Secret(
            self,
            "CacheAuthToken",
            description="Redis AUTH token of the Fraudrail feature cache",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=64
            ),
        )
        cache = elasticache.CfnReplicationGroup(
            self,
            "FeatureCache",
            replication_group_description="Fraudrail online features (velocity counters)",
            engine="redis",
            engine_version="7.1",
            cache_node_type=node_type,
            num_cache_clusters=2,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.key_arn,
            transit_encryption_enabled=True,
            auth_token=auth_secret.secret_value.unsafe_unwrap(),
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[security_group.security_group_id],
            port=6379,
            snapshot_retention_limit=1,
        )
        return cache, auth_secret

    def _pooled_endpoint(self, instance_type: str) -> sagemaker.CfnEndpoint:
        endpoint_name = self.names.pooled_endpoint_name
        role = iam.Role(
            self,
            "PooledModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Pooled multi-model endpoint: read tenants/*, pull the image, write logs",
        )
        for statement in iam_statements.sagemaker_hosting_statements(
            self,
            bucket_name=self.bucket.bucket_name,
            prefix=TENANTS_PREFIX,
            repository_name=self.names.image_repository,
            endpoint_name=endpoint_name,
        ):
            role.add_to_policy(statement)
        # The same role runs training and Batch Transform jobs (the control plane passes it): they
        # write their outputs and spot checkpoints under the tenant's training/ and batch/ folders.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="JobOutputs",
                actions=["s3:PutObject"],
                resources=[
                    self.bucket.arn_for_objects(f"{TENANTS_PREFIX}*/training/*"),
                    self.bucket.arn_for_objects(f"{TENANTS_PREFIX}*/batch/*"),
                ],
            )
        )
        role.add_to_policy(iam_statements.use_key_by_arn([self.key.key_arn], write=True))
        image = (
            f"{self.account}.dkr.ecr.{self.region}.{self.url_suffix}/"
            f"{self.names.image_repository}:{self.names.image_tag}"
        )
        model = sagemaker.CfnModel(
            self,
            "PooledModel",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image,
                mode="MultiModel",
                model_data_url=f"s3://{self.bucket.bucket_name}/{TENANTS_PREFIX}",
                multi_model_config=sagemaker.CfnModel.MultiModelConfigProperty(model_cache_setting="Enabled"),
            ),
        )
        # The role's policy must exist before SageMaker validates access to the artifacts.
        model.node.add_dependency(role)
        config = sagemaker.CfnEndpointConfig(
            self,
            "PooledEndpointConfig",
            kms_key_id=self.key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name="pooled",
                    model_name=model.attr_model_name,
                    initial_instance_count=2,
                    instance_type=instance_type,
                    initial_variant_weight=1,
                )
            ],
        )
        return sagemaker.CfnEndpoint(
            self,
            "PooledEndpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
        )

    def _outputs(self) -> None:
        outputs = {
            "PlatformBucketName": self.bucket.bucket_name,
            "PlatformKeyArn": self.key.key_arn,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
            "MonitoringTopicArn": self.drift_alarms.topic.topic_arn,
            "FlaggedTableName": self.flagged_table.table_name,
            "RollbackTableName": self.rollback_table.table_name,
            "RollbackFunctionName": self.rollback_function.function_name,
            # GetAtt, not the literal: emulators that ignore EndpointName still report the truth.
            "PooledEndpointName": self.pooled_endpoint.attr_endpoint_name,
            "CachePrimaryEndpoint": self.cache.attr_primary_end_point_address,
            "CacheAuthSecretArn": self.cache_auth_secret.secret_arn,
            "DashboardName": self.names.dashboard_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)
