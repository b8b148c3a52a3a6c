"""Shared constants and helpers of the CDK tests (the fixtures live in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from cdk.platform_stack import PlatformStack
from cdk.premium import PremiumSilo
from cdk.tenant_stack import TenantStack

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
CONTACT = "risk-ops@example.com"
COST_CENTER = "cc-4711"
TENANT_IDS = {"trial": "ten_trial01", "standard": "ten_standard01", "premium": "ten_premium01"}
POLICY_DIR = REPO_ROOT / "policies" / "rego"


@dataclass(frozen=True)
class Synthesized:
    app: App
    assembly_dir: Path
    platform: PlatformStack
    tenants: dict[str, TenantStack]
    templates: dict[str, Template]  # "platform" and one per tier

    def premium_silo(self) -> PremiumSilo:
        silo = self.tenants["premium"].silo
        assert silo is not None
        return silo

    def template_json(self, name: str) -> dict[str, Any]:
        return dict(self.templates[name].to_json())


def logical_id(stack: Any, construct: Any) -> str:
    """The CloudFormation logical id of an L2 construct's resource (or of an L1 itself)."""
    child = getattr(construct.node, "default_child", None) or construct
    value: str = stack.get_logical_id(child)
    return value
