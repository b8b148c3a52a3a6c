"""Synthesis entry points for the control plane (templates as dicts) and for humans (files)."""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Stack

from cdk.app import add_platform_stack, add_tenant_stack, new_app
from cdk.config import DEFAULT_COST_CENTER, PlatformNames

# jsii drives one Node process per Python process; synthesize one app at a time.
_SYNTH_LOCK = threading.Lock()


def synthesize_tenant_template(
    tenant_id: str,
    tier: str,
    region: str,
    budget_amount: str,
    budget_currency: str | None = None,
    contacts_email: str | None = None,
    cost_center: str = DEFAULT_COST_CENTER,
    *,
    instance_type: str | None = None,
    vpc_id: str | None = None,
    subnet_ids: Sequence[str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The tenant stack's CloudFormation template as a dict (raises ``TenantStackError`` on bad input).

    The first call in a process costs ≈7 s (jsii start-up); later ones ≈0.5 s.
    """
    ctx = dict(context or {})
    with _SYNTH_LOCK, tempfile.TemporaryDirectory(prefix="fraudrail-synth-") as outdir:
        app = new_app(ctx, outdir=outdir)
        stack = add_tenant_stack(
            app,
            tenant_id=tenant_id,
            tier=tier,
            region=region,
            budget_amount=budget_amount,
            budget_currency=budget_currency,
            contacts_email=contacts_email,
            cost_center=cost_center,
            instance_type=instance_type,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            names=PlatformNames.from_context(ctx),
        )
        app.synth()
        template: dict[str, Any] = json.loads(
            (Path(outdir) / stack.template_file).read_text(encoding="utf-8")
        )
    return template


def synthesize_to_directory(
    outdir: Path,
    *,
    tier: str,
    tenant_id: str,
    region: str,
    budget_amount: str | None = None,
    budget_currency: str | None = None,
    contacts_email: str | None = None,
    cost_center: str = DEFAULT_COST_CENTER,
    include_platform: bool = True,
    context: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the cloud assembly (platform and tenant templates) to ``outdir``; returns the templates."""
    ctx = dict(context or {})
    outdir.mkdir(parents=True, exist_ok=True)
    with _SYNTH_LOCK:
        app = new_app(ctx, outdir=str(outdir))
        stacks: list[Stack] = [add_platform_stack(app, ctx)] if include_platform else []
        stacks.append(
            add_tenant_stack(
                app,
                tenant_id=tenant_id,
                tier=tier,
                region=region,
                budget_amount=budget_amount,
                budget_currency=budget_currency,
                contacts_email=contacts_email,
                cost_center=cost_center,
                names=PlatformNames.from_context(ctx),
            )
        )
        app.synth()
    return [outdir / stack.template_file for stack in stacks]
