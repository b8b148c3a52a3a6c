"""The CDK app: ``python -m cdk.app`` (what ``cdk.json`` runs) or ``build_app(context)`` in-process.

Context keys (``cdk.json`` or ``cdk synth -c key=value``) are the ``fraudrail:*`` names in
``cdk.config``. The platform stack is always built; a tenant stack is added when
``fraudrail:tenantId`` is set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App, DefaultStackSynthesizer, Environment

from cdk.config import (
    CONTEXT_KEYS,
    CTX_BUDGET_AMOUNT,
    CTX_BUDGET_CURRENCY,
    CTX_CACHE_NODE_TYPE,
    CTX_CONTACT_EMAIL,
    CTX_COST_CENTER,
    CTX_INSTANCE_TYPE,
    CTX_NOTIFICATION_SECRET_ARN,
    CTX_POOLED_INSTANCE_TYPE,
    CTX_REGION,
    CTX_STUDIO_SUBNET_IDS,
    CTX_STUDIO_VPC_ID,
    CTX_TENANT_ID,
    CTX_TIER,
    DEFAULT_COST_CENTER,
    DEFAULT_REGION,
    REPO_ROOT,
    PlatformNames,
    load_tier_template,
    tenant_stack_name,
)
from cdk.platform_stack import PlatformStack
from cdk.tenant_stack import TenantStack

PLATFORM_STACK_ID = "FraudrailPlatform"
PLATFORM_STACK_NAME = "fraudrail-platform"


def new_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> App:
    """An empty app that synthesizes without bootstrap checks (so moto can deploy the templates)."""
    return App(
        context=dict(context or {}),
        outdir=outdir,
        analytics_reporting=False,
        stack_traces=False,
        default_stack_synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )


def add_platform_stack(app: App, context: Mapping[str, Any] | None = None) -> PlatformStack:
    """Add the shared platform stack, configured from ``fraudrail:*`` context keys."""
    ctx = dict(context or {})
    return PlatformStack(
        app,
        PLATFORM_STACK_ID,
        stack_name=PLATFORM_STACK_NAME,
        env=Environment(region=str(ctx.get(CTX_REGION, DEFAULT_REGION))),
        description="Fraudrail shared platform",
        names=PlatformNames.from_context(ctx),
        cost_center=str(ctx.get(CTX_COST_CENTER, DEFAULT_COST_CENTER)),
        cache_node_type=str(ctx.get(CTX_CACHE_NODE_TYPE, "cache.t4g.small")),
        pooled_instance_type=str(ctx.get(CTX_POOLED_INSTANCE_TYPE, "ml.m5.large")),
        notification_secret_arn=_optional_str(ctx.get(CTX_NOTIFICATION_SECRET_ARN)),
    )


def add_tenant_stack(
    app: App,
    *,
    tenant_id: str,
    tier: str,
    region: str,
    budget_amount: str | None = None,
    budget_currency: str | None = None,
    contacts_email: str | None = None,
    cost_center: str = DEFAULT_COST_CENTER,
    instance_type: str | None = None,
    vpc_id: str | None = None,
    subnet_ids: Sequence[str] | None = None,
    names: PlatformNames | None = None,
) -> TenantStack:
    """Add one tenant's stack; the budget defaults to the tier's cap."""
    template = load_tier_template(tier)
    cap = template.get("budget_cap") or {}
    stack_name = tenant_stack_name(tenant_id)
    return TenantStack(
        app,
        stack_name,
        stack_name=stack_name,
        tenant_id=tenant_id,
        tier_template=template,
        region=region,
        budget_amount=budget_amount if budget_amount is not None else str(cap.get("amount", "0")),
        budget_currency=budget_currency or str(cap.get("currency", "USD")),
        contacts_email=contacts_email,
        cost_center=cost_center,
        names=names,
        instance_type=instance_type,
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
    )


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> App:
    """The platform stack, plus one tenant stack when the context names a tenant."""
    ctx = dict(context or {})
    app = new_app(ctx, outdir=outdir)
    # CLI ``-c`` values arrive through the app's node context, so read them back from there.
    resolved = {key: app.node.try_get_context(key) for key in CONTEXT_KEYS}
    resolved = {key: value for key, value in resolved.items() if value is not None}
    add_platform_stack(app, resolved)
    tenant_id = _optional_str(resolved.get(CTX_TENANT_ID))
    if tenant_id:
        tier = str(resolved.get(CTX_TIER, "trial"))
        template = load_tier_template(tier)
        add_tenant_stack(
            app,
            tenant_id=tenant_id,
            tier=tier,
            region=str(resolved.get(CTX_REGION, template["allowed_regions"][0])),
            budget_amount=_optional_str(resolved.get(CTX_BUDGET_AMOUNT)),
            budget_currency=_optional_str(resolved.get(CTX_BUDGET_CURRENCY)),
            contacts_email=_optional_str(resolved.get(CTX_CONTACT_EMAIL)),
            cost_center=str(resolved.get(CTX_COST_CENTER, DEFAULT_COST_CENTER)),
            instance_type=_optional_str(resolved.get(CTX_INSTANCE_TYPE)),
            vpc_id=_optional_str(resolved.get(CTX_STUDIO_VPC_ID)),
            subnet_ids=_string_list(resolved.get(CTX_STUDIO_SUBNET_IDS)),
            names=PlatformNames.from_context(resolved),
        )
    return app


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _string_list(value: Any) -> list[str] | None:
    """A list from a JSON list, a Python list or a comma-separated string."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else text.split(",")
    else:
        items = list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _cdk_json_context() -> dict[str, Any]:
    """The ``context`` block of cdk.json (the CLI passes it itself; ``python -m`` does not)."""
    path = REPO_ROOT / "cdk.json"
    if not path.exists():
        return {}
    context: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    return context


def main() -> None:
    """Synthesize into ``cdk.out``, or into the CLI's ``CDK_OUTDIR`` when the CDK CLI runs us."""
    outdir = None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out")
    build_app(_cdk_json_context(), outdir=outdir).synth()


if __name__ == "__main__":
    main()
