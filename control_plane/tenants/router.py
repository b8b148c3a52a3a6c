"""Tenant routes (HTTP only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse

from control_plane.auth.scopes import Scope
from control_plane.auth.service import authorize
from control_plane.db import unit_of_work
from control_plane.deps import (
    PlatformAdminDep,
    PolicyDep,
    PrincipalDep,
    SessionDep,
    SessionFactoryDep,
    provided,
)
from control_plane.errors import NotFound
from control_plane.jobs import queue
from control_plane.jobs.worker import Worker
from control_plane.orm_base import utcnow
from control_plane.tenants import contacts, repository, service
from control_plane.tenants.lifecycle import SuspensionReason
from control_plane.tenants.orm import Tenant
from control_plane.tenants.schemas import (
    Contacts,
    DeletionReport,
    IssuedKeyOut,
    Money,
    SuspendRequest,
    TenantCreate,
    TenantCreated,
    TenantOut,
)

WorkerDep = Annotated[Worker, Depends(provided(Worker))]

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


def tenant_out(t: Tenant) -> TenantOut:
    prov = {k: v for k, v in t.provisioning.items() if k != "deletion_report"}
    return TenantOut(
        id=t.id,
        slug=t.slug,
        name=t.name,
        tier=t.tier,
        region=t.region,
        budget=Money(amount=t.budget_amount, currency=t.budget_currency),
        contacts=t.contacts,
        status=t.status,
        status_reason=t.status_reason,
        suspension_reason=t.suspension_reason,
        provisioning=prov,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TenantCreated,
    responses={
        422: {"description": "Invalid input or denied by the onboarding policy"},
        409: {"description": "Slug already taken"},
    },
)
def create_tenant(
    body: TenantCreate, session: SessionDep, policy: PolicyDep, admin: PlatformAdminDep
) -> TenantCreated:
    """Onboard a tenant: policy check, record it REQUESTED, queue provisioning, issue its admin key."""
    result = service.onboard(session, policy, body, actor=admin, now=utcnow())
    session.flush()
    k = result.admin_key
    return TenantCreated(
        tenant=tenant_out(result.tenant),
        provisioning_job_id=result.job.id,
        admin_key=IssuedKeyOut(id=k.key.id, scope=k.key.scope, name=k.key.name, key=k.secret),
    )


@router.get("", response_model=list[TenantOut])
def list_tenants(
    session: SessionDep,
    _: PlatformAdminDep,
    status_filter: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> list[TenantOut]:
    return [
        tenant_out(t) for t in repository.list_all(session, status=status_filter, limit=limit, after_id=after)
    ]


@router.get("/{tenant_id}", response_model=TenantOut)
def get_tenant(tenant_id: str, session: SessionDep, principal: PrincipalDep) -> TenantOut:
    authorize(principal, tenant_id, {Scope.TENANT_ADMIN, Scope.SRE})
    return tenant_out(repository.get(session, tenant_id))


@router.patch(
    "/{tenant_id}/contacts",
    response_model=TenantOut,
    responses={422: {"description": "A contact refused by the onboarding policy (e.g. a webhook not https)"}},
)
def patch_contacts(
    tenant_id: str, body: Contacts, session: SessionDep, policy: PolicyDep, principal: PrincipalDep
) -> TenantOut:
    """Change the tenant's notification contacts (the fields sent; null clears one), validated by
    the onboarding policy's contact rules and audited. The tenant's tenant-admin or a platform admin."""
    authorize(principal, tenant_id, {Scope.TENANT_ADMIN})
    return tenant_out(contacts.update_contacts(session, policy, tenant_id, body, actor=principal.actor))


@router.post("/{tenant_id}/suspend", response_model=TenantOut)
def suspend_tenant(
    tenant_id: str, body: SuspendRequest, session: SessionDep, admin: PlatformAdminDep
) -> TenantOut:
    tenant = service.suspend(
        session, tenant_id, SuspensionReason(body.reason), actor=admin.actor, note=body.note
    )
    return tenant_out(tenant)


@router.post("/{tenant_id}/resume", response_model=TenantOut)
def resume_tenant(tenant_id: str, session: SessionDep, admin: PlatformAdminDep) -> TenantOut:
    tenant = service.resume(session, tenant_id, actor=admin.actor)
    return tenant_out(tenant)


@router.post("/{tenant_id}/retry", status_code=status.HTTP_202_ACCEPTED)
def retry_tenant(tenant_id: str, session: SessionDep, admin: PlatformAdminDep) -> dict[str, str]:
    job = service.retry_provisioning(session, tenant_id, actor=admin.actor, now=utcnow())
    return {"provisioning_job_id": job.id}


@router.delete(
    "/{tenant_id}",
    response_model=DeletionReport,
    responses={202: {"description": "Offboarding queued; poll the job"}},
)
def offboard_tenant(
    tenant_id: str, factory: SessionFactoryDep, worker: WorkerDep, admin: PlatformAdminDep
) -> Any:
    """Offboard: revoke keys, purge every store, and answer with a deletion report that re-lists each."""
    # Two boundaries on purpose: the OFFBOARDING state and revoked keys are committed before any
    # store is purged, so a crash mid-purge leaves a tenant the worker (or a repeated DELETE) finishes.
    with unit_of_work(factory) as session:
        job = service.request_offboarding(session, tenant_id, actor=admin.actor, now=utcnow())
        job_id = job.id
    worker.run_or_await(job_id)
    with unit_of_work(factory) as session:
        job = queue.get_job(session, job_id, tenant_id=None)
        if job.status == queue.SUCCEEDED and job.result:
            return DeletionReport.model_validate(job.result)
        return JSONResponse(
            {"status": "OFFBOARDING", "job_id": job_id, "last_error": job.last_error}, status_code=202
        )


@router.get("/{tenant_id}/deletion-report", response_model=DeletionReport)
def deletion_report(tenant_id: str, session: SessionDep, _: PlatformAdminDep) -> DeletionReport:
    tenant = repository.get(session, tenant_id)
    report = tenant.provisioning.get("deletion_report")
    if not report:
        raise NotFound("this tenant has no deletion report (it is not deleted)", field="tenant_id")
    return DeletionReport.model_validate(report)
