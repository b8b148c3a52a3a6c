"""One synthesis per test session: the platform stack and one tenant stack per tier in one app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk.app import add_platform_stack, add_tenant_stack, new_app
from cdk.config import TIERS, load_tier_template
from tests.cdk.support import CONTACT, COST_CENTER, REGION, TENANT_IDS, Synthesized


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    app = new_app()
    platform = add_platform_stack(app, {})
    tenants = {
        tier: add_tenant_stack(
            app,
            tenant_id=TENANT_IDS[tier],
            tier=tier,
            region=REGION,
            contacts_email=CONTACT if tier == "premium" else None,
            cost_center=COST_CENTER,
        )
        for tier in TIERS
    }
    templates = {"platform": Template.from_stack(platform)}
    templates |= {tier: Template.from_stack(stack) for tier, stack in tenants.items()}
    return Synthesized(
        app=app,
        assembly_dir=Path(app.synth().directory),
        platform=platform,
        tenants=tenants,
        templates=templates,
    )


@pytest.fixture(scope="session")
def tier_templates() -> dict[str, dict[str, Any]]:
    return {tier: load_tier_template(tier) for tier in TIERS}
