"""API key routes: create, list (prefix only), rotate, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from control_plane.auth import service
from control_plane.auth.orm import ApiKey
from control_plane.auth.ports import TenantStatusLookup
from control_plane.auth.schemas import KeyCreate, KeyIssued, KeyOut, KeyRotate
from control_plane.auth.scopes import Scope
from control_plane.deps import PrincipalDep, SessionDep, VerifierDep, provided
from control_plane.errors import Conflict, NotFound

router = APIRouter(prefix="/v1/tenants/{tenant_id}/keys", tags=["keys"])
ADMINS = {Scope.TENANT_ADMIN}


def key_out(k: ApiKey) -> KeyOut:
    return KeyOut(
        id=k.id,
        prefix=service.TOKEN_PREFIX + k.id.removeprefix("key_"),
        scope=k.scope,
        name=k.name,
        created_at=k.created_at,
        revoked_at=k.revoked_at,
        replaced_by=k.replaced_by,
    )


TenantStatusDep = Annotated[TenantStatusLookup, Depends(provided(TenantStatusLookup))]


def _status(session: Session, statuses: TenantStatusLookup, tenant_id: str) -> str:
    found = statuses(session, tenant_id)
    if found is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return found


def _issued(issued: service.IssuedKey) -> KeyIssued:
    return KeyIssued(**key_out(issued.key).model_dump(), key=issued.secret)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyIssued)
def create_key(
    tenant_id: str, body: KeyCreate, session: SessionDep, statuses: TenantStatusDep, principal: PrincipalDep
) -> KeyIssued:
    service.authorize(principal, tenant_id, ADMINS)
    status_now = _status(session, statuses, tenant_id)
    if status_now in ("OFFBOARDING", "DELETED"):
        raise Conflict(f"tenant is {status_now}; no new keys", field="status")
    issued = service.issue_key(
        session, tenant_id=tenant_id, scope=Scope(body.scope), name=body.name, actor=principal.actor
    )
    session.flush()
    return _issued(issued)


@router.get("", response_model=list[KeyOut])
def list_keys(
    tenant_id: str, session: SessionDep, statuses: TenantStatusDep, principal: PrincipalDep
) -> list[KeyOut]:
    service.authorize(principal, tenant_id, ADMINS)
    _status(session, statuses, tenant_id)
    return [key_out(k) for k in service.list_keys(session, tenant_id)]


@router.post("/{key_id}/rotate", status_code=status.HTTP_201_CREATED, response_model=KeyIssued)
def rotate_key(
    tenant_id: str,
    key_id: str,
    session: SessionDep,
    verifier: VerifierDep,
    principal: PrincipalDep,
    body: KeyRotate | None = None,
) -> KeyIssued:
    """A new secret with the same scope; the old one keeps working for ``overlap_s`` (default 0)."""
    service.authorize(principal, tenant_id, ADMINS)
    overlap_s = body.overlap_s if body else 0
    issued = service.rotate_key(session, tenant_id, key_id, actor=principal.actor, overlap_s=overlap_s)
    session.flush()
    verifier.forget([key_id])
    return _issued(issued)


@router.delete("/{key_id}", response_model=KeyOut)
def revoke_key(
    tenant_id: str, key_id: str, session: SessionDep, verifier: VerifierDep, principal: PrincipalDep
) -> KeyOut:
    service.authorize(principal, tenant_id, ADMINS)
    key = service.revoke_key(session, tenant_id, key_id, actor=principal.actor)
    session.flush()
    verifier.forget([key_id])
    return key_out(key)
