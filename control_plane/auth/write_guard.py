"""One guard in front of every mutating API route: who may call it, and no writes by a suspended tenant.

It runs as an app-wide dependency, so before FastAPI validates the body: a key whose scope cannot
call the route gets 403 (another tenant's key on a ``{tenant_id}`` path 404) whatever the body
holds, instead of a 422 that answers questions about a route it may not use. Then a key of a
SUSPENDED tenant gets 409 naming the tenant's status: a suspended tenant is read-only until a
platform admin resumes it. The handlers keep their own checks; this table is checked against the
OpenAPI document by the tests, so a new mutating route without a row fails them.
"""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth.ports import TenantStatusLookup
from control_plane.auth.scopes import Principal, Scope
from control_plane.auth.service import KeyVerifier
from control_plane.deps import bearer_or_api_key, require_token
from control_plane.errors import Conflict, Forbidden, NotFound

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PA, TA, SRE, ANALYST, APP = Scope.PLATFORM_ADMIN, Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST, Scope.APP
OPERATORS = frozenset({TA, SRE})
PLATFORM_ONLY = frozenset({PA})
PUBLIC: frozenset[Scope] = frozenset()  # no credential: a person signing in or accepting an invitation
ANYONE = frozenset({PA, TA, SRE, ANALYST, APP})

# (method, route path) → the scopes that may call it. Platform admins pass a {tenant_id} route
# only when PLATFORM_ADMIN is listed.
WRITE_SCOPES: dict[tuple[str, str], frozenset[Scope]] = {
    ("POST", "/v1/tenants"): frozenset({PA}),
    ("DELETE", "/v1/tenants/{tenant_id}"): frozenset({PA}),
    ("POST", "/v1/tenants/{tenant_id}/suspend"): frozenset({PA}),
    ("POST", "/v1/tenants/{tenant_id}/resume"): frozenset({PA}),
    ("POST", "/v1/tenants/{tenant_id}/retry"): frozenset({PA}),
    ("PUT", "/v1/tenants/{tenant_id}/budget"): frozenset({PA}),
    ("PATCH", "/v1/tenants/{tenant_id}/contacts"): frozenset({PA, TA}),
    ("POST", "/v1/tenants/{tenant_id}/keys"): frozenset({PA, TA}),
    ("POST", "/v1/tenants/{tenant_id}/keys/{key_id}/rotate"): frozenset({PA, TA}),
    ("DELETE", "/v1/tenants/{tenant_id}/keys/{key_id}"): frozenset({PA, TA}),
    ("POST", "/v1/tenants/{tenant_id}/users"): frozenset({PA, TA}),
    ("POST", "/v1/tenants/{tenant_id}/users/{user_id}/invitation"): frozenset({PA, TA}),
    ("PATCH", "/v1/tenants/{tenant_id}/users/{user_id}"): frozenset({PA, TA}),
    ("DELETE", "/v1/tenants/{tenant_id}/users/{user_id}"): frozenset({PA, TA}),
    ("PUT", "/v1/tenants/{tenant_id}/oidc"): frozenset({TA}),
    ("DELETE", "/v1/tenants/{tenant_id}/oidc"): frozenset({TA}),
    ("POST", "/v1/auth/invitations/accept"): PUBLIC,
    ("POST", "/v1/auth/sessions"): PUBLIC,
    ("DELETE", "/v1/auth/sessions/current"): ANYONE,
    ("POST", "/v1/datasets"): frozenset({TA}),
    ("PUT", "/v1/feature-sets/{name}"): frozenset({TA}),
    ("POST", "/v1/training-runs"): frozenset({TA}),
    ("POST", "/v1/models/{model_id}/approve"): frozenset({TA}),
    ("POST", "/v1/models/{model_id}/archive"): frozenset({TA}),
    ("POST", "/v1/models/{model_id}/promote"): frozenset({TA}),
    ("POST", "/v1/models/{model_id}/restore"): frozenset({TA}),
    ("POST", "/v1/models/rollback-production"): frozenset({TA}),
    ("POST", "/v1/labels"): frozenset({TA}),
    ("POST", "/v1/labels/csv"): frozenset({TA}),
    ("POST", "/v1/backtests"): frozenset({TA}),
    ("POST", "/v1/retraining"): frozenset({TA}),
    ("PUT", "/v1/retraining-settings"): frozenset({TA}),
    ("POST", "/v1/fraud-check"): frozenset({APP}),
    ("PUT", "/v1/scoring-config"): frozenset({TA}),
    ("POST", "/v1/batch-scoring"): frozenset({TA}),
    ("POST", "/v1/rollouts"): OPERATORS,
    ("POST", "/v1/rollouts/{rollout_id}/pause"): OPERATORS,
    ("POST", "/v1/rollouts/{rollout_id}/resume"): OPERATORS,
    ("POST", "/v1/rollouts/{rollout_id}/promote"): OPERATORS,
    ("POST", "/v1/rollouts/{rollout_id}/abort"): OPERATORS,
    ("POST", "/v1/rollouts/{rollout_id}/rollback"): OPERATORS,
    ("POST", "/v1/chaos/model-faults"): frozenset({PA}),
    ("DELETE", "/v1/chaos/model-faults"): frozenset({PA}),
    ("POST", "/v1/reviews/bulk-verdict"): frozenset({ANALYST, TA}),
    ("POST", "/v1/reviews/{review_id}/claim"): frozenset({ANALYST}),
    ("POST", "/v1/reviews/{review_id}/verdict"): frozenset({ANALYST, TA}),
    ("POST", "/v1/reviews/{review_id}/reopen"): frozenset({TA}),
    ("POST", "/v1/reviews/{review_id}/resolve"): frozenset({TA}),
    ("POST", "/v1/reviews/bulk-claim"): frozenset({ANALYST}),
}
# Writes a suspended tenant may still make: revoking a (possibly leaked) key must always be possible.
# Revoking a key, and a backtest (it replays stored history and writes nothing).
# Removing a user, removing the single sign-on provider and signing out end access, so they stay
# possible too.
ALLOWED_WHILE_SUSPENDED = frozenset(
    {
        ("DELETE", "/v1/tenants/{tenant_id}/keys/{key_id}"),
        ("POST", "/v1/backtests"),
        ("DELETE", "/v1/tenants/{tenant_id}/users/{user_id}"),
        ("DELETE", "/v1/tenants/{tenant_id}/oidc"),
        ("DELETE", "/v1/auth/sessions/current"),
    }
)
READ_ONLY_STATUSES = frozenset({"SUSPENDED"})


class TenantReadOnly(Conflict):
    title = "Tenant is read-only"


def route_key(request: Request) -> tuple[str, str] | None:
    path = getattr(request.scope.get("route"), "path", None)
    return (request.method, path) if isinstance(path, str) else None


async def guard_tenant_writes(request: Request) -> None:
    """App-wide dependency: scope (and tenant) before the body, then no writes by a suspended tenant."""
    if request.method not in MUTATING:
        return
    key = route_key(request)
    scopes = WRITE_SCOPES.get(key) if key is not None else None
    if key is None or not scopes:
        return  # not an API-key route (the console guards its own forms), or a public one (sign-in)
    provided = request.app.state.provided
    verifier: KeyVerifier = provided[KeyVerifier]
    token = bearer_or_api_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    principal: Principal = verifier.verify(require_token(token))
    check_scope(principal, scopes, request.path_params.get("tenant_id"))
    if principal.tenant_id is None or key in ALLOWED_WHILE_SUSPENDED:
        return
    factory: sessionmaker[Session] = provided[sessionmaker]
    statuses: TenantStatusLookup = provided[TenantStatusLookup]
    with factory() as session:
        status = statuses(session, principal.tenant_id)
    if status in READ_ONLY_STATUSES:
        raise TenantReadOnly(
            f"tenant {principal.tenant_id} is {status}: it is read-only until a platform admin resumes it",
            field="tenant",
            extra={"tenant_id": principal.tenant_id, "tenant_status": status},
        )


def check_scope(principal: Principal, scopes: frozenset[Scope], path_tenant: str | None) -> None:
    """The handlers' own order: another tenant's key 404 on a tenant path, then a wrong scope 403."""
    if principal.is_platform_admin:
        if PA in scopes:
            return
        raise Forbidden("this route acts for one tenant: use a key of that tenant")
    if scopes == PLATFORM_ONLY:
        raise Forbidden("this route needs a platform-admin key")
    if path_tenant is not None and path_tenant != principal.tenant_id:
        raise NotFound(f"tenant {path_tenant} not found", field="tenant_id")
    if principal.scope not in scopes:
        names = ", ".join(sorted(s.value for s in scopes))
        raise Forbidden(f"this route needs a key with scope {names}; yours is {principal.scope.value}")
