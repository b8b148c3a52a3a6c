"""Users of a tenant (tenant admins manage them) and a person's sign-in, session and invitation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session

from control_plane.auth.ports import TenantStatusLookup
from control_plane.deps import PrincipalDep, SessionDep, provided, token_from_headers
from control_plane.errors import Conflict, NotFound
from control_plane.orm_base import utcnow
from control_plane.principals import SESSION_TOKEN_PREFIX, Principal, Scope
from control_plane.tenancy import authorize
from control_plane.users import repository, service
from control_plane.users.orm import User
from control_plane.users.schemas import (
    InvitationAccept,
    SessionIssued,
    SignIn,
    UserInvite,
    UserInvited,
    UserOut,
    UserRoleChange,
    WhoAmI,
)
from control_plane.users.sessions import UserSessions
from control_plane.users.settings import IdentitySettings

router = APIRouter(prefix="/v1/tenants/{tenant_id}/users", tags=["users"])
auth_router = APIRouter(prefix="/v1/auth", tags=["sign-in"])
ADMINS = {Scope.TENANT_ADMIN}

TenantStatusDep = Annotated[TenantStatusLookup, Depends(provided(TenantStatusLookup))]
IdentityDep = Annotated[IdentitySettings, Depends(provided(IdentitySettings))]
UserSessionsDep = Annotated[UserSessions, Depends(provided(UserSessions))]


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def _live_tenant(session: Session, statuses: TenantStatusLookup, tenant_id: str) -> None:
    found = statuses(session, tenant_id)
    if found is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    if found in ("OFFBOARDING", "DELETED"):
        raise Conflict(f"tenant is {found}; no new users", field="status")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserInvited)
def invite_user(
    tenant_id: str,
    body: UserInvite,
    session: SessionDep,
    statuses: TenantStatusDep,
    settings: IdentityDep,
    principal: PrincipalDep,
) -> UserInvited:
    """Invite a person by e-mail with a role; the answer carries the invitation token, once."""
    authorize(principal, tenant_id, ADMINS)
    _live_tenant(session, statuses, tenant_id)
    invitation = service.invite(
        session,
        tenant_id,
        email=body.email,
        name=body.name,
        role=body.role,
        actor=principal.actor,
        settings=settings,
        now=utcnow(),
    )
    session.flush()
    expires = invitation.user.invitation_expires_at
    assert expires is not None
    return UserInvited(
        **user_out(invitation.user).model_dump(),
        invitation_token=invitation.token,
        invitation_expires_at=expires,
    )


@router.get("", response_model=list[UserOut])
def list_users(
    tenant_id: str, session: SessionDep, statuses: TenantStatusDep, principal: PrincipalDep
) -> list[UserOut]:
    """The tenant's users, invited ones included."""
    authorize(principal, tenant_id, ADMINS)
    if statuses(session, tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return [user_out(u) for u in repository.list_in_tenant(session, tenant_id)]


@router.post("/{user_id}/invitation", status_code=status.HTTP_201_CREATED, response_model=UserInvited)
def reinvite_user(
    tenant_id: str, user_id: str, session: SessionDep, settings: IdentityDep, principal: PrincipalDep
) -> UserInvited:
    """A new invitation token for a user who has not accepted yet; the previous one stops working."""
    authorize(principal, tenant_id, ADMINS)
    invitation = service.reinvite(
        session, tenant_id, user_id, actor=principal.actor, settings=settings, now=utcnow()
    )
    expires = invitation.user.invitation_expires_at
    assert expires is not None
    return UserInvited(
        **user_out(invitation.user).model_dump(),
        invitation_token=invitation.token,
        invitation_expires_at=expires,
    )


@router.patch("/{user_id}", response_model=UserOut)
def change_user_role(
    tenant_id: str, user_id: str, body: UserRoleChange, session: SessionDep, principal: PrincipalDep
) -> UserOut:
    """Change a user's role (its sessions end). Demoting the last active tenant admin is 409."""
    authorize(principal, tenant_id, ADMINS)
    user = service.change_role(session, tenant_id, user_id, body.role, actor=principal.actor)
    session.flush()
    return user_out(user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_user(tenant_id: str, user_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    """Remove a user and end its sessions. Removing the last active tenant admin is 409."""
    authorize(principal, tenant_id, ADMINS)
    service.remove(session, tenant_id, user_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def who(principal: Principal) -> WhoAmI:
    return WhoAmI(
        id=principal.key_id,
        kind="user" if principal.is_person else "key",
        name=principal.name,
        email=principal.email,
        role=principal.scope.value,
        tenant_id=principal.tenant_id,
        display_name=principal.display_name,
    )


@auth_router.post("/invitations/accept", response_model=UserOut)
def accept_invitation(body: InvitationAccept, session: SessionDep, settings: IdentityDep) -> UserOut:
    """Accept an invitation with its token and set a password; then sign in with e-mail and password."""
    user = service.accept_invitation(
        session, body.token, body.password, settings=settings, now=utcnow(), name=body.name
    )
    session.flush()
    return user_out(user)


@auth_router.post("/sessions", status_code=status.HTTP_201_CREATED, response_model=SessionIssued)
def sign_in(body: SignIn, sessions: UserSessionsDep) -> SessionIssued:
    """Sign in with e-mail and password: a bearer session token every API route accepts, like a key.
    Repeated failures lock the account for a while (429 with Retry-After)."""
    issued = sessions.sign_in(body.email, body.password)
    return SessionIssued(token=issued.token, expires_at=issued.expires_at, user=who(issued.principal))


@auth_router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(request: Request, sessions: UserSessionsDep, principal: PrincipalDep) -> Response:
    """End the session this request's bearer token names (an API key has none to end: 409)."""
    token = token_from_headers(request)
    if not token.startswith(SESSION_TOKEN_PREFIX):
        raise Conflict(
            "this request signs with an API key, not a session; revoke keys instead", field="authorization"
        )
    sessions.end(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth_router.get("/me", response_model=WhoAmI)
def whoami(principal: PrincipalDep) -> WhoAmI:
    """Who this request acts as: a person (name, e-mail, role) or an API key (its name and scope)."""
    return who(principal)
