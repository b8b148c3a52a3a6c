"""The premium silo: the tenant's own key, bucket, Studio domain, canary endpoint, alarms and budget.

The Studio domain and its network are in :mod:`cdk.premium_studio`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk import iam_statements
from cdk.config import PlatformNames, sagemaker_slug, tenant_endpoint_name
from cdk.premium_studio import studio, studio_network

STABLE_VARIANT = "stable"
CANARY_VARIANT = "canary"
BUDGET_THRESHOLDS_PERCENT = (80, 100)
MODELS_PREFIX = "models/"


class PremiumSilo(Construct):
    """Everything a premium tenant owns alone; ``outputs`` are the names the control plane needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant_id: str,
        tier_template: Mapping[str, Any],
        names: PlatformNames,
        instance_type: str,
        budget_amount: Decimal,
        budget_currency: str,
        contacts_email: str,
        vpc_id: str | None,
        subnet_ids: Sequence[str] | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stack = Stack.of(self)
        self.tenant_id = tenant_id
        self.slug = sagemaker_slug(tenant_id)
        self.names = names
        self.endpoint_name = tenant_endpoint_name(tenant_id)

        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/fraudrail-{self.slug}",
            description=f"Fraudrail premium tenant {tenant_id}: bucket, endpoint volumes, Studio EFS",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
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
        self.model_role = self._model_role()
        self.endpoint = self._endpoint(instance_type)
        self._canary_alarms(tier_template)
        vpc_id, subnet_ids = studio_network(self, vpc_id, subnet_ids)
        self.domain, self.user_profile = studio(self, vpc_id, subnet_ids)
        self.budget_name = f"fraudrail-{tenant_id}"
        self._budget(budget_amount, budget_currency, contacts_email)

        self.outputs: dict[str, str] = {
            "BucketName": self.bucket.bucket_name,
            "ModelPrefix": MODELS_PREFIX,
            "KmsKeyArn": self.key.key_arn,
            "EndpointName": self.endpoint.attr_endpoint_name,
            "VariantNames": f"{STABLE_VARIANT},{CANARY_VARIANT}",
            "StableVariantName": STABLE_VARIANT,
            "CanaryVariantName": CANARY_VARIANT,
            "ModelRoleArn": self.model_role.role_arn,
            "StudioDomainId": self.domain.attr_domain_id,
            "StudioUserProfileName": str(self.user_profile.user_profile_name),
            "BudgetName": self.budget_name,
        }

    def _model_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "ModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Endpoint of premium tenant {self.tenant_id}: its own bucket's models only",
        )
        for statement in iam_statements.sagemaker_hosting_statements(
            self.stack,
            bucket_name=self.bucket.bucket_name,
            prefix=MODELS_PREFIX,
            repository_name=self.names.image_repository,
            endpoint_name=self.endpoint_name,
        ):
            role.add_to_policy(statement)
        role.add_to_policy(iam_statements.use_key_by_arn([self.key.key_arn]))
        return role

    def _image_uri(self) -> str:
        stack = self.stack
        return (
            f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}/"
            f"{self.names.image_repository}:{self.names.image_tag}"
        )

    def _endpoint(self, instance_type: str) -> sagemaker.CfnEndpoint:
        variants = []
        for variant_name, weight in ((STABLE_VARIANT, 1), (CANARY_VARIANT, 0)):
            model = sagemaker.CfnModel(
                self,
                f"{variant_name.capitalize()}Model",
                execution_role_arn=self.model_role.role_arn,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=self._image_uri(),
                    model_data_url=(
                        f"s3://{self.bucket.bucket_name}/{MODELS_PREFIX}{variant_name}/model.tar.gz"
                    ),
                ),
            )
            model.node.add_dependency(self.model_role)
            variants.append(
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=variant_name,
                    model_name=model.attr_model_name,
                    instance_type=instance_type,
                    initial_instance_count=1,
                    initial_variant_weight=weight,
                )
            )
        # m5 / c5 instances have no local NVMe storage, so SageMaker accepts a KmsKeyId for them.
        config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig", kms_key_id=self.key.key_arn, production_variants=variants
        )
        return sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
        )

    def _canary_alarms(self, tier_template: Mapping[str, Any]) -> None:
        """Alarms on the canary variant that publish to the platform topic (and so the rollback Lambda)."""
        stack = self.stack
        topic = sns.Topic.from_topic_arn(
            self,
            "PlatformAlarmTopic",
            f"arn:{stack.partition}:sns:{stack.region}:{stack.account}:{self.names.alarm_topic_name}",
        )
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": CANARY_VARIANT}
        latency_slo_ms = int((tier_template.get("slo") or {}).get("latency_p95_ms", 200))
        description = f"tenant_id={self.tenant_id} endpoint={self.endpoint_name} variant={CANARY_VARIANT}"
        alarms = [
            cloudwatch.Alarm(
                self,
                "CanaryErrorsAlarm",
                alarm_name=f"fraudrail-{self.slug}-canary-5xx",
                alarm_description=description,
                metric=cloudwatch.Metric(
                    namespace="AWS/SageMaker",
                    metric_name="Invocation5XXErrors",
                    dimensions_map=dimensions,
                    statistic="Sum",
                    period=Duration.minutes(1),
                ),
                threshold=5,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "CanaryLatencyAlarm",
                alarm_name=f"fraudrail-{self.slug}-canary-latency",
                alarm_description=description,
                # ModelLatency is reported in microseconds.
                metric=cloudwatch.Metric(
                    namespace="AWS/SageMaker",
                    metric_name="ModelLatency",
                    dimensions_map=dimensions,
                    statistic="p95",
                    period=Duration.minutes(1),
                ),
                threshold=latency_slo_ms * 1000,
                evaluation_periods=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in alarms:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))

    def _budget(self, amount: Decimal, currency: str, contacts_email: str) -> None:
        budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=float(amount), unit=currency),
                # Needs tenant_id activated as a cost-allocation tag in the payer account.
                cost_filters={"TagKeyValue": [f"user:tenant_id${self.tenant_id}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type="ACTUAL",
                        comparison_operator="GREATER_THAN",
                        threshold=threshold,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[
                        budgets.CfnBudget.SubscriberProperty(
                            subscription_type="EMAIL", address=contacts_email
                        )
                    ],
                )
                for threshold in BUDGET_THRESHOLDS_PERCENT
            ],
        )
