"""Names, context keys and tier data shared by the platform and tenant stacks.

The platform and tenant stacks meet by naming convention (bucket, key alias, topic, pooled
endpoint), not by cross-stack exports, so a tenant template can be synthesized and deployed on
its own (the provisioner's case) while the platform stack is already in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
TENANT_TEMPLATES_DIR: Final = REPO_ROOT / "tenant_templates"
LAMBDAS_DIR: Final = REPO_ROOT / "lambdas"
DASHBOARDS_DIR: Final = REPO_ROOT / "dashboards"

TIERS: Final = ("trial", "standard", "premium")
DEFAULT_REGION: Final = "eu-west-1"
DEFAULT_COST_CENTER: Final = "fraudrail"

# Tag keys every tenant resource carries; the Rego policy requires the same three.
TAG_TENANT_ID: Final = "tenant_id"
TAG_TIER: Final = "tier"
TAG_COST_CENTER: Final = "cost-center"

# Context keys (cdk.json or ``-c key=value``).
CTX_REGION: Final = "fraudrail:region"
CTX_TIER: Final = "fraudrail:tier"
CTX_TENANT_ID: Final = "fraudrail:tenantId"
CTX_BUDGET_AMOUNT: Final = "fraudrail:budgetAmount"
CTX_BUDGET_CURRENCY: Final = "fraudrail:budgetCurrency"
CTX_CONTACT_EMAIL: Final = "fraudrail:contactEmail"
CTX_COST_CENTER: Final = "fraudrail:costCenter"
CTX_INSTANCE_TYPE: Final = "fraudrail:instanceType"
CTX_PLATFORM_BUCKET: Final = "fraudrail:platformBucketName"
CTX_IMAGE_REPOSITORY: Final = "fraudrail:imageRepository"
CTX_IMAGE_TAG: Final = "fraudrail:imageTag"
CTX_CACHE_NODE_TYPE: Final = "fraudrail:cacheNodeType"
CTX_POOLED_INSTANCE_TYPE: Final = "fraudrail:pooledInstanceType"
CTX_NOTIFICATION_SECRET_ARN: Final = "fraudrail:notificationSecretArn"  # noqa: S105 - a context key
CTX_STUDIO_VPC_ID: Final = "fraudrail:studioVpcId"
CTX_STUDIO_SUBNET_IDS: Final = "fraudrail:studioSubnetIds"
CONTEXT_KEYS: Final = (
    CTX_REGION,
    CTX_TIER,
    CTX_TENANT_ID,
    CTX_BUDGET_AMOUNT,
    CTX_BUDGET_CURRENCY,
    CTX_CONTACT_EMAIL,
    CTX_COST_CENTER,
    CTX_INSTANCE_TYPE,
    CTX_PLATFORM_BUCKET,
    CTX_IMAGE_REPOSITORY,
    CTX_IMAGE_TAG,
    CTX_CACHE_NODE_TYPE,
    CTX_POOLED_INSTANCE_TYPE,
    CTX_NOTIFICATION_SECRET_ARN,
    CTX_STUDIO_VPC_ID,
    CTX_STUDIO_SUBNET_IDS,
)

_SAGEMAKER_UNSAFE = re.compile(r"[^a-z0-9-]+")


class TenantStackError(ValueError):
    """The tenant's parameters contradict its tier template or AWS naming rules."""


def sagemaker_slug(tenant_id: str) -> str:
    """A tenant id as SageMaker and CloudFormation names accept it (``ten_ab`` -> ``ten-ab``)."""
    slug = _SAGEMAKER_UNSAFE.sub("-", tenant_id.lower()).strip("-")
    if not slug:
        raise TenantStackError(f"tenant id {tenant_id!r} has no usable characters")
    return slug


def tenant_stack_name(tenant_id: str) -> str:
    """The CloudFormation stack name of a tenant (stack names reject underscores)."""
    return f"fraudrail-tenant-{sagemaker_slug(tenant_id)}"


def tenant_endpoint_name(tenant_id: str) -> str:
    """The SageMaker endpoint name of a trial or premium tenant (at most 63 characters)."""
    name = f"fraudrail-{sagemaker_slug(tenant_id)}"
    if len(name) > 63:
        raise TenantStackError(f"endpoint name {name!r} is longer than SageMaker's 63 characters")
    return name


def tenant_model_prefix(tenant_id: str) -> str:
    """The tenant's prefix in the platform bucket and on the pooled multi-model endpoint."""
    return f"tenants/{tenant_id}/"


def load_tier_template(tier: str, templates_dir: Path | None = None) -> dict[str, Any]:
    """Read ``tenant_templates/<tier>.json``."""
    if tier not in TIERS:
        raise TenantStackError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    path = (templates_dir or TENANT_TEMPLATES_DIR) / f"{tier}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True, slots=True)
class PlatformNames:
    """Physical names of the shared platform resources that tenant stacks refer to.

    ``platform_bucket_name`` may contain ``{account}`` and ``{region}``, filled in per stack
    (bucket names are global, so the default carries both).
    """

    platform_bucket_name: str = "fraudrail-platform-{account}-{region}"
    key_alias: str = "alias/fraudrail-platform"
    alarm_topic_name: str = "fraudrail-alarms"
    pooled_endpoint_name: str = "fraudrail-pooled"
    flagged_table_name: str = "fraudrail-flagged-transactions"
    rollback_table_name: str = "fraudrail-rollback-log"
    rollback_function_name: str = "fraudrail-rollback"
    dashboard_name: str = "fraudrail-platform"
    image_repository: str = "fraudrail-inference"
    image_tag: str = "latest"
    metrics_namespace: str = "Fraudrail"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> PlatformNames:
        """Defaults overridden by the ``fraudrail:*`` context keys that name shared resources."""
        defaults = cls()
        return cls(
            platform_bucket_name=str(context.get(CTX_PLATFORM_BUCKET, defaults.platform_bucket_name)),
            image_repository=str(context.get(CTX_IMAGE_REPOSITORY, defaults.image_repository)),
            image_tag=str(context.get(CTX_IMAGE_TAG, defaults.image_tag)),
        )

    def bucket_name(self, account: str, region: str) -> str:
        """The platform bucket's name for one account and region (tokens are fine)."""
        return self.platform_bucket_name.format(account=account, region=region)
