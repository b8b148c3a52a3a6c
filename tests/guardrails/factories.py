"""Factory functions for policy inputs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policies" / "rego"
TEMPLATES_DIR = ROOT / "tenant_templates"


def premium_tenant() -> dict[str, Any]:
    """A premium onboarding input that every onboarding rule allows."""
    return {
        "tenant": {
            "name": "Globex",
            "slug": "globex",
            "tier": "premium",
            "region": "eu-central-1",
            "budget": {"amount": "25000.00", "currency": "USD"},
            "contacts": {
                "slack_webhook_url": "https://hooks.slack.com/services/T0/B0/xyz",
                "teams_webhook_url": None,
                "email": "ops@globex.test",
            },
            "encryption": {"at_rest": True, "kms_key_alias": "alias/globex-fraud"},
        }
    }


def deployment_input(**overrides: dict[str, Any]) -> dict[str, Any]:
    """A rollout input the deployment policy allows, with per-section overrides merged in."""
    doc: dict[str, Any] = {
        "tenant": {"status": "ACTIVE", "budget_status": "ok", "error_budget_frozen": False},
        "candidate": {"stage": "APPROVED", "gate_passed": True, "integrity_verified": True},
        "rollout": {"strategy": "canary", "emergency": False},
        "cost": {"estimated_monthly": "120.50", "budget_headroom": "800.00"},
    }
    doc = copy.deepcopy(doc)
    for section, values in overrides.items():
        doc[section].update(values)
    return doc
