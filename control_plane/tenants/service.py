"""Tenant use cases: onboarding behind the policy gate, lifecycle changes, offboarding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from control_plane import events
from control_plane.audit import service as audit
from control_plane.auth import service as keys
from control_plane.auth.scopes import Principal, Scope
from control_plane.errors import Conflict
from control_plane.ids import new_id
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.outbox import emit
from control_plane.policy_gate import enforce
from control_plane.tenants import repository
from control_plane.tenants.lifecycle import SuspensionReason, TenantStatus, check_transition
from control_plane.tenants.orm import Tenant
from control_plane.tenants.schemas import TenantCreate
from guardrails.policy import PolicyEngine
from providers.ports import TenantSpec

PROVISION_JOB = "tenant.provision"
OFFBOARD_JOB = "tenant.offboard"


@dataclass(frozen=True)
class Onboarded:
    tenant: Tenant
    job: Job
    admin_key: keys.IssuedKey


def policy_input(request: TenantCreate) -> dict[str, Any]:
    """The document ``policies/rego/onboarding.rego`` sees as ``input``."""
    contacts = request.contacts
    return {
        "tenant": {
            "name": request.name,
            "slug": request.slug,
            "tier": request.tier,
            "region": request.region,
            "budget": {"amount": str(request.budget.amount), "currency": request.budget.currency},
            "contacts": {
                "slack_webhook_url": str(contacts.slack_webhook_url) if contacts.slack_webhook_url else None,
                "teams_webhook_url": str(contacts.teams_webhook_url) if contacts.teams_webhook_url else None,
                "email": contacts.email,
            },
            "encryption": request.encryption.model_dump(exclude_none=True),
        }
    }


def _api_field(policy_field: str | None) -> str | None:
    """Policy fields are paths in the policy input (``tenant.region``); the API's are body paths."""
    return policy_field.removeprefix("tenant.") if policy_field else None


def check_onboarding_policy(engine: PolicyEngine, request: TenantCreate) -> None:
    enforce(engine, "fraudrail.onboarding", policy_input(request), api_field=_api_field)


def onboard(
    session: Session, engine: PolicyEngine, request: TenantCreate, *, actor: Principal, now: datetime
) -> Onboarded:
    """Check policy, record the tenant as REQUESTED, queue provisioning, issue its first admin key."""
    check_onboarding_policy(engine, request)
    if repository.slug_taken(session, request.slug):
        raise Conflict(f"slug {request.slug!r} is already taken", field="slug")
    contacts = policy_input(request)["tenant"]["contacts"]
    tenant = Tenant(
        id=new_id("ten"),
        slug=request.slug,
        name=request.name,
        tier=request.tier,
        region=request.region,
        budget_amount=request.budget.amount,
        budget_currency=request.budget.currency,
        contacts={k: v for k, v in contacts.items() if v is not None},
        status=TenantStatus.REQUESTED.value,
        provisioning={"done": []},
    )
    session.add(tenant)
    session.flush()
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor.actor,
        action="tenant.requested",
        subject=tenant.id,
        after={"status": tenant.status, "tier": tenant.tier, "region": tenant.region, "slug": tenant.slug},
        evidence={"policy": "fraudrail.onboarding", "decision": "allow"},
    )
    job = queue.enqueue(
        session, kind=PROVISION_JOB, payload={"tenant_id": tenant.id}, tenant_id=tenant.id, now=now
    )
    key = keys.issue_key(
        session, tenant_id=tenant.id, scope=Scope.TENANT_ADMIN, name="initial admin", actor=actor.actor
    )
    return Onboarded(tenant=tenant, job=job, admin_key=key)


def transition(
    session: Session,
    tenant: Tenant,
    target: TenantStatus,
    *,
    actor: str,
    reason: str | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> None:
    """Move along one lifecycle edge and append it to the audit ledger."""
    current = TenantStatus(tenant.status)
    check_transition(current, target)
    before = {"status": current.value, "suspension_reason": tenant.suspension_reason}
    tenant.status = target.value
    tenant.status_reason = reason
    if target is not TenantStatus.SUSPENDED:
        tenant.suspension_reason = None
    # Serving (and the rate limits) depend on the status: every process reloads after the commit.
    emit(session, events.SERVING_CHANGED, {"tenant_id": tenant.id, "reason": target.value.lower()})
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action=f"tenant.{target.value.lower()}",
        subject=tenant.id,
        reason=reason,
        before=before,
        after={"status": target.value, "suspension_reason": tenant.suspension_reason},
        evidence=evidence,
    )


def suspend(
    session: Session, tenant_id: str, reason: SuspensionReason, *, actor: str, note: str | None
) -> Tenant:
    tenant = repository.get(session, tenant_id, for_update=True)
    tenant.suspension_reason = reason.value
    transition(session, tenant, TenantStatus.SUSPENDED, actor=actor, reason=note or reason.value)
    return tenant


def resume(session: Session, tenant_id: str, *, actor: str) -> Tenant:
    tenant = repository.get(session, tenant_id, for_update=True)
    transition(session, tenant, TenantStatus.ACTIVE, actor=actor, reason="resumed")
    return tenant


def retry_provisioning(session: Session, tenant_id: str, *, actor: str, now: datetime) -> Job:
    tenant = repository.get(session, tenant_id, for_update=True)
    if tenant.status != TenantStatus.FAILED.value:
        raise Conflict(f"only a FAILED tenant can be retried; this one is {tenant.status}", field="status")
    audit.record(session, tenant_id=tenant.id, actor=actor, action="tenant.retry", subject=tenant.id)
    return queue.enqueue(
        session, kind=PROVISION_JOB, payload={"tenant_id": tenant.id}, tenant_id=tenant.id, now=now
    )


def request_offboarding(session: Session, tenant_id: str, *, actor: str, now: datetime) -> Job:
    """Enter OFFBOARDING, revoke every key, queue the purge (all in the caller's transaction)."""
    tenant = repository.get(session, tenant_id, for_update=True)
    if tenant.status == TenantStatus.DELETED.value:
        raise Conflict("tenant is already deleted", field="status")
    if tenant.status != TenantStatus.OFFBOARDING.value:
        transition(session, tenant, TenantStatus.OFFBOARDING, actor=actor, reason="offboarding requested")
    keys.revoke_all(session, tenant.id, actor=actor, reason="offboarding")
    return queue.enqueue(
        session,
        kind=OFFBOARD_JOB,
        payload={"tenant_id": tenant.id, "actor": actor},
        tenant_id=tenant.id,
        now=now,
    )


def spec_for(tenant: Tenant, template: Mapping[str, Any]) -> TenantSpec:
    return TenantSpec(
        tenant_id=tenant.id,
        slug=tenant.slug,
        tier=tenant.tier,
        region=tenant.region,
        template=template,
        budget_amount=str(tenant.budget_amount),
        budget_currency=tenant.budget_currency,
        contacts=tenant.contacts,
    )
