"""Durable tenant jobs: provisioning and offboarding, each step safe to repeat after a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from control_plane.auth.service import list_keys
from control_plane.db import unit_of_work
from control_plane.faults import crash_point
from control_plane.jobs.worker import JobContext
from control_plane.orm_base import utcnow
from control_plane.tenants import repository, service
from control_plane.tenants.lifecycle import TenantStatus

if TYPE_CHECKING:
    from control_plane.container import Container

WORKER_ACTOR = "system:worker"


def _container(ctx: JobContext) -> Container:
    return ctx.services  # type: ignore[no-any-return]


class ProvisionTenant:
    """REQUESTED/FAILED → PROVISIONING → each planned resource → ACTIVE."""

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        c = _container(ctx)
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
            spec = service.spec_for(tenant, c.template(tenant.tier))
            done = set(tenant.provisioning.get("done", []))
        plan = c.providers.provisioner.plan(spec)
        created: list[str] = []
        for index, resource in enumerate(plan, start=1):
            step = f"{resource.kind}:{resource.name}"
            if step not in done:
                if c.providers.provisioner.apply(spec, resource):
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

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        c = _container(ctx)
        tenant_id = str(ctx.payload["tenant_id"])
        actor = str(ctx.payload.get("actor", WORKER_ACTOR))
        with unit_of_work(ctx.factory) as session:
            tenant = repository.get(session, tenant_id)
            if tenant.status == TenantStatus.DELETED.value:
                return dict(tenant.provisioning.get("deletion_report", {}))
            spec = service.spec_for(tenant, c.template(tenant.tier))
            key_ids = [k.id for k in list_keys(session, tenant_id)]
        c.verifier.forget(key_ids)
        purged = {purger.name: purger.purge(tenant_id) for purger in c.purgers}
        c.providers.provisioner.destroy(spec)
        stores = []
        for purger in c.purgers:
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
