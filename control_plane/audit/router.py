"""Audit ledger reads: a tenant's admins see theirs; the platform admin sees all."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from control_plane.audit import service
from control_plane.deps import PlatformAdminDep, PrincipalDep, SessionDep
from control_plane.principals import Scope
from control_plane.tenancy import authorize

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    seq: int
    id: str
    tenant_id: str | None
    actor: str
    actor_name: str | None = Field(
        description="Who acted, readable: the person's name and e-mail, or the API key's name"
    )
    action: str
    subject: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    evidence: dict[str, Any] | None
    at: datetime


Limit = Annotated[int, Query(ge=1, le=1000)]
MAX_SEQ = 2**63 - 1  # the largest value a BIGINT (and SQLite INTEGER) sequence holds
After = Annotated[int, Query(ge=0, le=MAX_SEQ)]
Action = Annotated[str | None, Query(max_length=80)]


@router.get("/v1/tenants/{tenant_id}/audit", response_model=list[AuditOut])
def tenant_audit(
    tenant_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    after: After = 0,
    action: Action = None,
) -> list[AuditOut]:
    authorize(principal, tenant_id, {Scope.TENANT_ADMIN})
    events = service.list_events(session, tenant_id=tenant_id, after_seq=after, limit=limit, action=action)
    return [AuditOut.model_validate(e, from_attributes=True) for e in events]


@router.get("/v1/audit", response_model=list[AuditOut])
def platform_audit(
    session: SessionDep,
    _: PlatformAdminDep,
    limit: Limit = 100,
    after: After = 0,
    action: Action = None,
    tenant_id: Annotated[str | None, Query(max_length=40)] = None,
) -> list[AuditOut]:
    events = service.list_events(session, tenant_id=tenant_id, after_seq=after, limit=limit, action=action)
    return [AuditOut.model_validate(e, from_attributes=True) for e in events]
