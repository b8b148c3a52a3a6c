"""Tenant job handlers: provisioning and offboarding, each step safe to repeat after a crash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from control_plane.auth.service import list_keys
from control_plane.db import unit_of_work
from control_plane.faults import crash_point
from control_plane.jobs.worker import JobContext
from control_plane.orm_base import utcnow
from control_plane.tenants import repository, service
from control_plane.tenants.lifecycle import TenantStatus
from control_plane.tenants.ports import KeyCache, TenantDataPurger
from providers.ports import Provisioner

WORKER_ACTOR = "system:worker"


Templates = Mapping[str, Mapping[str, Any]]


class ProvisionTenant:
    """REQUESTED/FAILED → PROVISIONING → each planned resource → ACTIVE."""

    def __init__(self, provisioner: Provisioner, templates: Templates) -> None:
        self.provisioner = provisioner
        self.templates = templates

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tenant_id = str(ctx.payload["tenant_id"])
        with unit_of_work(ctx.factory) as session:
            tenant = repository.get(session, tenant_id, for_update=True)
            status = TenantStatus(tenant.status)
            if status in (TenantStatus.REQUESTED, TenantStatus.FAILED):
                service.transition(
                    session,
                    tenant,
                    TenantStatus.PROVISIONING,
                    actor=WORKER_ACTOR,
                    reason=f"provisioning attempt {ctx.attempt}",
                )
            elif status is not TenantStatus.PROVISIONING:
                return {"skipped": True, "status": status.value}
            spec = service.spec_for(tenant, self.templates[tenant.tier])
            done = set(tenant.provisioning.get("done", []))
        plan = self.provisioner.plan(spec)
        created: list[str] = []
        for index, resource in enumerate(plan, start=1):
            step = f"{resource.kind}:{resource.name}"
            if step not in done:
                if self.provisioner.apply(spec, resource):
                    created.append(step)
                crash_point(f"provision.after_apply.{resource.kind}")
                with unit_of_work(ctx.factory) as session:
                    tenant = repository.get(session, tenant_id, for_update=True)
                    state = dict(tenant.provisioning)
                    state["done"] = [*state.get("done", []), step]
                    tenant.provisioning = state
            ctx.progress("provisioning", 100.0 * index / len(plan), step=step)
        with unit_of_work(ctx.factory) as session:
            tenant = repository.get(session, tenant_id, for_update=True)
            state = dict(tenant.provisioning)
            state["resources"] = [f"{r.kind}:{r.name}" for r in plan]
            tenant.provisioning = state
            service.transition(
                session,
                tenant,
                TenantStatus.ACTIVE,
                actor=WORKER_ACTOR,
                reason="provisioned",
                evidence={"resources": state["resources"]},
            )
        return {"tenant_id": tenant_id, "created_now": created, "plan": [f"{r.kind}:{r.name}" for r in plan]}

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        tenant = repository.get(session, str(ctx.payload["tenant_id"]), for_update=True)
        if tenant.status in (TenantStatus.PROVISIONING.value, TenantStatus.REQUESTED.value):
            service.transition(
                session,
                tenant,
                TenantStatus.FAILED,
                actor=WORKER_ACTOR,
                reason=error,
                evidence={"attempts": ctx.attempt, "retryable": True},
            )


class OffboardTenant:
    """OFFBOARDING → purge every store → re-list each by tenant → DELETED with the report."""

    def __init__(
        self,
        provisioner: Provisioner,
        templates: Templates,
        purgers: Sequence[TenantDataPurger],
        key_cache: KeyCache,
    ) -> None:
        self.provisioner = provisioner
        self.templates = templates
        self.purgers = purgers
        self.key_cache = key_cache

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tenant_id = str(ctx.payload["tenant_id"])
        actor = str(ctx.payload.get("actor", WORKER_ACTOR))
        with unit_of_work(ctx.factory) as session:
            tenant = repository.get(session, tenant_id)
            if tenant.status == TenantStatus.DELETED.value:
                return dict(tenant.provisioning.get("deletion_report", {}))
            spec = service.spec_for(tenant, self.templates[tenant.tier])
            key_ids = [k.id for k in list_keys(session, tenant_id)]
        self.key_cache.forget(key_ids)
        purged = {purger.name: purger.purge(tenant_id) for purger in self.purgers}
        self.provisioner.destroy(spec)
        stores = []
        for purger in self.purgers:
            remaining = purger.remaining(tenant_id)
            stores.append(
                {
                    "store": purger.name,
                    "purged": purged[purger.name],
                    "remaining": remaining,
                    "empty": not remaining,
                }
            )
        report: dict[str, Any] = {
            "tenant_id": tenant_id,
            "revoked_keys": key_ids,
            "stores": stores,
            "all_empty": all(s["empty"] for s in stores),
        }
        if not report["all_empty"]:
            raise RuntimeError(f"offboarding left data behind: {[s for s in stores if not s['empty']]}")
        with unit_of_work(ctx.factory) as session:
            tenant = repository.get(session, tenant_id, for_update=True)
            report["status"] = TenantStatus.DELETED.value
            report["deleted_at"] = utcnow().isoformat()
            tenant.provisioning = {**tenant.provisioning, "deletion_report": report}
            tenant.contacts = {}
            service.transition(
                session,
                tenant,
                TenantStatus.DELETED,
                actor=actor,
                reason="offboarded",
                evidence={"stores": stores},
            )
        return report

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        """The tenant stays OFFBOARDING (keys revoked); a repeated DELETE queues the purge again."""
