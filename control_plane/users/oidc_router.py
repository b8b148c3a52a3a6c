"""Single sign-on by OpenID Connect: a tenant admin configures the tenant's provider; people start
a sign-in (a redirect to the provider) and come back to the callback with a session token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from control_plane.deps import PrincipalDep, SessionDep, provided
from control_plane.errors import Conflict, NotFound
from control_plane.principals import Scope
from control_plane.tenancy import authorize
from control_plane.users import oidc_config
from control_plane.users.oidc_orm import TenantOidcConfig
from control_plane.users.oidc_schemas import OidcConfigIn, OidcConfigOut
from control_plane.users.oidc_service import OidcSignIn
from control_plane.users.oidc_settings import API_CALLBACK_PATH as CALLBACK_PATH
from control_plane.users.router import TenantStatusDep, who
from control_plane.users.schemas import SessionIssued

config_router = APIRouter(prefix="/v1/tenants/{tenant_id}/oidc", tags=["single sign-on"])
sign_in_router = APIRouter(prefix="/v1/auth/oidc", tags=["single sign-on"])
ADMINS = {Scope.TENANT_ADMIN}

OidcDep = Annotated[OidcSignIn, Depends(provided(OidcSignIn))]


def config_out(config: TenantOidcConfig) -> OidcConfigOut:
    return OidcConfigOut(
        tenant_id=config.tenant_id,
        issuer=config.issuer,
        client_id=config.client_id,
        client_secret_set=bool(config.client_secret_sealed),
        allowed_email_domain=config.allowed_email_domain,
        jit_role=config.jit_role,
        start_path=f"/v1/auth/oidc/{config.tenant_id}/start",
        updated_at=config.updated_at,
    )


@config_router.get("", response_model=OidcConfigOut)
def read_oidc_config(tenant_id: str, session: SessionDep, principal: PrincipalDep) -> OidcConfigOut:
    """The tenant's single sign-on configuration (the client secret is never returned)."""
    authorize(principal, tenant_id, ADMINS)
    return config_out(oidc_config.get_config(session, tenant_id))


@config_router.put("", response_model=OidcConfigOut)
def set_oidc_config(
    tenant_id: str,
    body: OidcConfigIn,
    session: SessionDep,
    statuses: TenantStatusDep,
    sign_in: OidcDep,
    principal: PrincipalDep,
) -> OidcConfigOut:
    """Set the tenant's OpenID Connect provider (issuer, client, allowed domain, just-in-time role)."""
    authorize(principal, tenant_id, ADMINS)
    found = statuses(session, tenant_id)
    if found is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    if found in ("OFFBOARDING", "DELETED"):
        raise Conflict(f"tenant is {found}", field="status")
    config = oidc_config.set_config(
        session,
        tenant_id,
        issuer=body.issuer,
        client_id=body.client_id,
        client_secret=body.client_secret,
        allowed_email_domain=body.allowed_email_domain,
        jit_role=body.jit_role,
        box=sign_in.box,
        actor=principal.actor,
    )
    session.flush()
    return config_out(config)


@config_router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def remove_oidc_config(tenant_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    """Turn single sign-on off for the tenant (sessions already open stay until they end)."""
    authorize(principal, tenant_id, ADMINS)
    oidc_config.remove_config(session, tenant_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@sign_in_router.get(
    "/{tenant}/start",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={302: {"description": "Go to the identity provider to sign in"}},
)
def start_oidc_sign_in(tenant: str, request: Request, sign_in: OidcDep) -> RedirectResponse:
    """Start a single sign-on for the tenant named by slug or id: a redirect to its identity provider
    (authorization code with PKCE S256, state and nonce; the flow waits FRAUDRAIL_OIDC_FLOW_TTL_S)."""
    base = sign_in.settings.public_url or str(request.base_url)
    location = sign_in.start(tenant, base.rstrip("/") + CALLBACK_PATH)
    return RedirectResponse(
        location, status_code=status.HTTP_302_FOUND, headers={"cache-control": "no-store"}
    )


@sign_in_router.get("/callback", response_model=SessionIssued)
def finish_oidc_sign_in(
    sign_in: OidcDep,
    response: Response,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionIssued:
    """Where the identity provider sends the person back: the code is exchanged (with the PKCE
    verifier and the client secret), the ID token verified, and a session opened (`frs_…`)."""
    issued = sign_in.finish(state, code, error)
    response.headers["cache-control"] = "no-store"
    return SessionIssued(token=issued.token, expires_at=issued.expires_at, user=who(issued.principal))
