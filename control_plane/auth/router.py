"""API key routes: create, list (prefix only), rotate, revoke."""

from __future__ import annotations

from fastapi import APIRouter, status

from control_plane.auth import service
from control_plane.auth.orm import ApiKey
from control_plane.auth.schemas import KeyCreate, KeyIssued, KeyOut, KeyRotate
from control_plane.auth.scopes import Scope
from control_plane.deps import PrincipalDep, SessionDep, VerifierDep
from control_plane.errors import Conflict
from control_plane.tenants import repository
from control_plane.tenants.lifecycle import TenantStatus

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


def _issued(issued: service.IssuedKey) -> KeyIssued:
    return KeyIssued(**key_out(issued.key).model_dump(), key=issued.secret)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyIssued)
def create_key(tenant_id: str, body: KeyCreate, session: SessionDep, principal: PrincipalDep) -> KeyIssued:
    service.authorize(principal, tenant_id, ADMINS)
    tenant = repository.get(session, tenant_id)
    if tenant.status in (TenantStatus.OFFBOARDING.value, TenantStatus.DELETED.value):
        raise Conflict(f"tenant is {tenant.status}; no new keys", field="status")
    issued = service.issue_key(
        session, tenant_id=tenant_id, scope=Scope(body.scope), name=body.name, actor=principal.actor
    )
    session.flush()
    return _issued(issued)


@router.get("", response_model=list[KeyOut])
def list_keys(tenant_id: str, session: SessionDep, principal: PrincipalDep) -> list[KeyOut]:
    service.authorize(principal, tenant_id, ADMINS)
    repository.get(session, tenant_id)
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
