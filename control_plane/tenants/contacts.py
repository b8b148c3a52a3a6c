"""Changing a tenant's notification contacts, under the same onboarding rules (https webhooks …)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.errors import Conflict, PolicyDenied, ServiceUnavailable
from control_plane.tenants import repository
from control_plane.tenants.lifecycle import TenantStatus
from control_plane.tenants.orm import Tenant
from control_plane.tenants.schemas import Contacts
from guardrails.policy import PolicyEngine, PolicyEngineError

CONTACT_FIELDS = ("slack_webhook_url", "teams_webhook_url", "email")
CLOSED = (TenantStatus.OFFBOARDING.value, TenantStatus.DELETED.value)


def update_contacts(
    session: Session, engine: PolicyEngine, tenant_id: str, patch: Contacts, *, actor: str
) -> Tenant:
    """Apply the fields present in ``patch`` (null clears one); 422 naming every refused field.

    The onboarding policy decides, on the tenant as it stands with the new contacts; only its
    contact rules can refuse here (the tenant's other attributes were accepted at onboarding)."""
    tenant = repository.get(session, tenant_id)
    if tenant.status in CLOSED:
        raise Conflict(f"tenant is {tenant.status}; its contacts cannot change", field="status")
    before = {k: v for k, v in (tenant.contacts or {}).items() if k in CONTACT_FIELDS}
    changes = patch.model_dump(mode="json", exclude_unset=True)
    merged = {k: v for k, v in {**before, **changes}.items() if v is not None}
    check_contacts(engine, tenant, merged)
    others = {k: v for k, v in (tenant.contacts or {}).items() if k not in CONTACT_FIELDS}
    tenant.contacts = {**others, **merged}  # a new dict: the JSON column sees the change
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="tenant.contacts_changed",
        subject=tenant_id,
        # Webhook URLs carry their own credentials: the ledger keeps which fields changed, not them.
        before={"set": sorted(before)},
        after={"set": sorted(merged), "changed": sorted(changes)},
    )
    return tenant


def check_contacts(engine: PolicyEngine, tenant: Tenant, contacts: dict[str, Any]) -> None:
    document = {
        "tenant": {
            "name": tenant.name,
            "slug": tenant.slug,
            "tier": tenant.tier,
            "region": tenant.region,
            "budget": {"amount": str(tenant.budget_amount), "currency": tenant.budget_currency},
            "contacts": {k: contacts.get(k) for k in CONTACT_FIELDS},
        }
    }
    try:
        decision = engine.evaluate("fraudrail.onboarding", document)
    except PolicyEngineError as exc:  # fail closed, like every policy decision
        raise ServiceUnavailable(f"policy engine unavailable: {exc}") from exc
    refused = [v for v in decision.violations if (v.field or "").startswith("tenant.contacts")]
    if refused:
        violations = [
            {"rule": v.rule, "field": (v.field or "").removeprefix("tenant."), "message": v.message}
            for v in refused
        ]
        raise PolicyDenied(
            "; ".join(v.message for v in refused),
            field=violations[0]["field"],
            extra={"violations": violations},
        )
