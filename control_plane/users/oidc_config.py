"""A tenant's single sign-on configuration (tenant admins; in the request's transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.errors import InvalidInput, NotFound
from control_plane.principals import Actor
from control_plane.users.oidc_orm import OidcFlow, TenantOidcConfig
from control_plane.users.oidc_tokens import SecretBox
from control_plane.users.service import TENANT_ROLES


def get_config(session: Session, tenant_id: str) -> TenantOidcConfig:
    config = session.get(TenantOidcConfig, tenant_id)
    if config is None:
        raise NotFound("this tenant has no single sign-on configured", field="tenant_id")
    return config


def set_config(
    session: Session,
    tenant_id: str,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_email_domain: str | None,
    jit_role: str | None,
    box: SecretBox,
    actor: Actor,
) -> TenantOidcConfig:
    """Create or replace the tenant's configuration; the secret may be left out to keep the old one."""
    if jit_role is not None and jit_role not in {r.value for r in TENANT_ROLES}:
        raise InvalidInput("jit_role must be tenant-admin, analyst, sre or null", field="jit_role")
    config = session.get(TenantOidcConfig, tenant_id)
    before = _shown(config) if config is not None else None
    if config is None:
        if not client_secret:
            raise InvalidInput("client_secret is required the first time", field="client_secret")
        config = TenantOidcConfig(tenant_id=tenant_id)
        session.add(config)
    config.issuer = issuer
    config.client_id = client_id
    if client_secret:
        config.client_secret_sealed = box.seal(client_secret)
    config.allowed_email_domain = allowed_email_domain.lower() if allowed_email_domain else None
    config.jit_role = jit_role
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="oidc.configured",
        subject=tenant_id,
        before=before,
        after={**_shown(config), "client_secret_changed": bool(client_secret)},
    )
    return config


def remove_config(session: Session, tenant_id: str, *, actor: Actor) -> None:
    config = get_config(session, tenant_id)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="oidc.removed",
        subject=tenant_id,
        before=_shown(config),
    )
    session.delete(config)
    session.execute(delete(OidcFlow).where(OidcFlow.tenant_id == tenant_id))


def _shown(config: TenantOidcConfig) -> dict[str, Any]:
    return {
        "issuer": config.issuer,
        "client_id": config.client_id,
        "allowed_email_domain": config.allowed_email_domain,
        "jit_role": config.jit_role,
    }
