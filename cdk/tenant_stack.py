"""One tenant's infrastructure, shaped by its tier template.

trial    -> a SageMaker serverless endpoint on the tenant's prefix of the platform bucket
standard -> no endpoint: an SSM parameter records the tenant's slot on the pooled endpoint
premium  -> a silo (see ``cdk.premium``): bucket, key, Studio domain, canary endpoint, budget
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from aws_cdk import CfnOutput, Environment, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk import iam_statements
from cdk.config import (
    TAG_COST_CENTER,
    TAG_TENANT_ID,
    TAG_TIER,
    PlatformNames,
    TenantStackError,
    tenant_endpoint_name,
    tenant_model_prefix,
)
from cdk.premium import PremiumSilo

SERVERLESS_VARIANT = "serverless"
HOSTING_MODES = ("serverless", "pooled", "dedicated")

__all__ = ["SERVERLESS_VARIANT", "TenantStack", "TenantStackError"]


class TenantStack(Stack):
    """Infrastructure of one tenant; every resource is tagged tenant_id, tier and cost-center."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenant_id: str,
        tier_template: Mapping[str, Any],
        region: str,
        budget_amount: str,
        budget_currency: str = "USD",
        contacts_email: str | None = None,
        cost_center: str,
        names: PlatformNames | None = None,
        instance_type: str | None = None,
        vpc_id: str | None = None,
        subnet_ids: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        # Validate before the stack joins the app: a refused tenant leaves nothing behind.
        budget = _validate(
            tier_template,
            tenant_id=tenant_id,
            region=region,
            budget_amount=budget_amount,
            budget_currency=budget_currency,
            contacts_email=contacts_email,
            instance_type=instance_type,
        )
        if bool(vpc_id) != bool(subnet_ids):
            raise TenantStackError("give both vpc_id and subnet_ids, or neither")
        kwargs.setdefault("env", Environment(region=region))
        kwargs.setdefault("description", f"Fraudrail tenant {tenant_id} ({tier_template.get('tier')})")
        super().__init__(scope, construct_id, **kwargs)
        self.tenant_id = tenant_id
        self.tier = str(tier_template["tier"])
        self.hosting = str(tier_template["hosting"])
        self.names = names or PlatformNames()
        self.budget_amount = budget
        self.platform_bucket_name = self.names.bucket_name(self.account, self.region)
        self.model_prefix = tenant_model_prefix(tenant_id)
        self.silo: PremiumSilo | None = None

        Tags.of(self).add(TAG_TENANT_ID, tenant_id)
        Tags.of(self).add(TAG_TIER, self.tier)
        Tags.of(self).add(TAG_COST_CENTER, cost_center)

        outputs: dict[str, str] = {"TenantId": tenant_id, "Tier": self.tier, "HostingMode": self.hosting}
        if self.hosting == "serverless":
            outputs |= self._serverless(tier_template)
        elif self.hosting == "pooled":
            outputs |= self._pooled()
        elif self.hosting == "dedicated":
            silo = self.silo = PremiumSilo(
                self,
                "Silo",
                tenant_id=tenant_id,
                tier_template=tier_template,
                names=self.names,
                instance_type=instance_type or str(tier_template["instance_types"][0]),
                budget_amount=self.budget_amount,
                budget_currency=budget_currency,
                contacts_email=str(contacts_email),
                vpc_id=vpc_id,
                subnet_ids=subnet_ids,
            )
            outputs |= silo.outputs
        else:  # unreachable: _validate checked the hosting mode
            raise TenantStackError(f"unknown hosting {self.hosting!r} in tier {self.tier!r}")
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)

    def _serverless(self, tier_template: Mapping[str, Any]) -> dict[str, str]:
        serverless = tier_template.get("serverless") or {}
        endpoint_name = tenant_endpoint_name(self.tenant_id)
        role = iam.Role(
            self,
            "ModelRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"Serverless endpoint of {self.tenant_id}: its prefix of the platform bucket only",
        )
        for statement in iam_statements.sagemaker_hosting_statements(
            self,
            bucket_name=self.platform_bucket_name,
            prefix=self.model_prefix,
            repository_name=self.names.image_repository,
            endpoint_name=endpoint_name,
        ):
            role.add_to_policy(statement)
        role.add_to_policy(iam_statements.use_key_by_alias(self, self.names.key_alias))
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self._image_uri(),
                model_data_url=f"s3://{self.platform_bucket_name}/{self.model_prefix}current/model.tar.gz",
            ),
        )
        model.node.add_dependency(role)
        # AWS documents KmsKeyId as optional for serverless configs (it encrypts the pulled image).
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            kms_key_id=f"arn:{self.partition}:kms:{self.region}:{self.account}:{self.names.key_alias}",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=SERVERLESS_VARIANT,
                    model_name=model.attr_model_name,
                    serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=int(serverless.get("memory_mb", 2048)),
                        max_concurrency=int(serverless.get("max_concurrency", 5)),
                    ),
                )
            ],
        )
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
        )
        return {
            "BucketName": self.platform_bucket_name,
            "ModelPrefix": self.model_prefix,
            "EndpointName": endpoint.attr_endpoint_name,
            "VariantNames": SERVERLESS_VARIANT,
        }

    def _pooled(self) -> dict[str, str]:
        parameter = ssm.StringParameter(
            self,
            "HostingParameter",
            parameter_name=f"/fraudrail/tenants/{self.tenant_id}/hosting",
            description=f"Where {self.tenant_id}'s models live on the pooled multi-model endpoint",
            string_value=json.dumps(
                {
                    "hosting": "pooled",
                    "endpoint_name": self.names.pooled_endpoint_name,
                    "bucket": self.platform_bucket_name,
                    "model_prefix": self.model_prefix,
                }
            ),
        )
        return {
            "BucketName": self.platform_bucket_name,
            "ModelPrefix": self.model_prefix,
            "EndpointName": self.names.pooled_endpoint_name,
            "VariantNames": "pooled",
            "HostingParameterName": parameter.parameter_name,
        }

    def _image_uri(self) -> str:
        return (
            f"{self.account}.dkr.ecr.{self.region}.{self.url_suffix}/"
            f"{self.names.image_repository}:{self.names.image_tag}"
        )


def _validate(
    tier_template: Mapping[str, Any],
    *,
    tenant_id: str,
    region: str,
    budget_amount: str,
    budget_currency: str,
    contacts_email: str | None,
    instance_type: str | None,
) -> Decimal:
    """Refuse parameters the tier does not allow; returns the budget as a Decimal."""
    tier = tier_template["tier"]
    hosting = tier_template.get("hosting")
    if hosting not in HOSTING_MODES:
        raise TenantStackError(f"unknown hosting {hosting!r} in tier {tier!r}")
    if hosting != "pooled":
        tenant_endpoint_name(tenant_id)  # raises when SageMaker would refuse the name
    allowed_regions = list(tier_template.get("allowed_regions", []))
    if region not in allowed_regions:
        raise TenantStackError(f"region {region!r} is not allowed for tier {tier!r}: {allowed_regions}")
    try:
        amount = Decimal(budget_amount)
    except InvalidOperation as exc:
        raise TenantStackError(f"budget amount {budget_amount!r} is not a number") from exc
    cap = tier_template.get("budget_cap") or {}
    if not amount.is_finite() or amount <= 0:
        raise TenantStackError("budget amount must be a positive number")
    if "amount" in cap and amount > Decimal(str(cap["amount"])):
        raise TenantStackError(f"budget {amount} exceeds the {tier} cap of {cap['amount']}")
    if "currency" in cap and budget_currency != cap["currency"]:
        raise TenantStackError(
            f"budget currency {budget_currency!r} differs from the cap's {cap['currency']!r}"
        )
    if tier_template.get("requires_notification_contact") and not contacts_email:
        raise TenantStackError(f"tier {tier!r} needs a notification contact email")
    allowed_types = list(tier_template.get("instance_types") or [])
    if hosting == "dedicated" and not allowed_types:
        raise TenantStackError(f"tier {tier!r} is dedicated but lists no instance types")
    if instance_type is not None and instance_type not in allowed_types:
        raise TenantStackError(f"instance type {instance_type!r} is not allowed for tier {tier!r}")
    return amount
