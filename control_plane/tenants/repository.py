"""Tenant queries."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from control_plane.errors import NotFound
from control_plane.tenants.orm import Tenant


def status_of(session: Session, tenant_id: str) -> str | None:
    """The tenant's status (None when there is none): the auth domain's ``TenantStatusLookup``."""
    return session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))


def id_and_status(session: Session, slug_or_id: str) -> tuple[str, str] | None:
    """The id and status of the tenant with this slug or id (the users domain's ``TenantFinder``)."""
    if len(slug_or_id) > 64:
        return None
    row = session.execute(
        select(Tenant.id, Tenant.status).where(or_(Tenant.slug == slug_or_id, Tenant.id == slug_or_id))
    ).first()
    return (row[0], row[1]) if row is not None else None


def get(session: Session, tenant_id: str, *, for_update: bool = False) -> Tenant:
    stmt = select(Tenant).where(Tenant.id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    tenant = session.scalar(stmt)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return tenant


def slug_taken(session: Session, slug: str) -> bool:
    return session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None


def list_all(
    session: Session, *, status: str | None = None, limit: int = 100, after_id: str | None = None
) -> list[Tenant]:
    stmt = select(Tenant)
    if status is not None:
        stmt = stmt.where(Tenant.status == status)
    if after_id is not None:
        stmt = stmt.where(Tenant.id > after_id)
    return list(session.scalars(stmt.order_by(Tenant.id).limit(limit)))
