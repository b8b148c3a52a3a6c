"""Users of a tenant: invite, list, change role, remove; accept an invitation. Audited; never commits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.errors import Conflict, InvalidInput, NotFound
from control_plane.ids import new_id
from control_plane.orm_base import aware
from control_plane.principals import Actor, Principal, Scope, secret_digest
from control_plane.users import repository
from control_plane.users.orm import User
from control_plane.users.passwords import MAX_PASSWORD_CHARS, hash_password
from control_plane.users.repository import ACTIVE, INVITED
from control_plane.users.settings import IdentitySettings

INVITATION_PREFIX = "fri_"
TENANT_ROLES = frozenset({Scope.TENANT_ADMIN, Scope.ANALYST, Scope.SRE})


@dataclass(frozen=True)
class Invitation:
    user: User
    token: str  # shown once; only its hash is stored


def token_hash(token: str) -> str:
    """An invitation's or session's token as stored and looked up (the API keys' digest)."""
    return secret_digest(token)


def principal_of(user: User) -> Principal:
    return Principal(
        key_id=user.id, scope=Scope(user.role), tenant_id=user.tenant_id, name=user.name, email=user.email
    )


def _role(role: str) -> Scope:
    try:
        scope = Scope(role)
    except ValueError:
        scope = None
    if scope not in TENANT_ROLES:
        raise InvalidInput("role must be one of tenant-admin, analyst, sre", field="role")
    assert scope is not None
    return scope


def _new_invitation(user: User, settings: IdentitySettings, now: datetime) -> str:
    token = INVITATION_PREFIX + secrets.token_urlsafe(32)
    user.invitation_hash = token_hash(token)
    user.invitation_expires_at = now + timedelta(seconds=settings.invitation_ttl_s)
    return token


def invite(
    session: Session,
    tenant_id: str,
    *,
    email: str,
    name: str,
    role: str,
    actor: Actor,
    settings: IdentitySettings,
    now: datetime,
) -> Invitation:
    """A new user of ``tenant_id``, invited: it signs in once it has accepted and set a password."""
    scope = _role(role)
    email = email.strip().lower()
    if repository.by_email(session, email) is not None:
        raise Conflict(f"{email} already has a user", field="email")
    user = User(
        id=new_id("usr"),
        tenant_id=tenant_id,
        email=email,
        name=name.strip(),
        role=scope.value,
        status=INVITED,
    )
    token = _new_invitation(user, settings, now)
    session.add(user)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.invited",
        subject=user.id,
        after={"email": email, "name": user.name, "role": scope.value},
    )
    return Invitation(user, token)


def reinvite(
    session: Session, tenant_id: str, user_id: str, *, actor: Actor, settings: IdentitySettings, now: datetime
) -> Invitation:
    """A fresh invitation for a user who has not accepted yet (the old token stops working)."""
    user = get(session, tenant_id, user_id)
    if user.status != INVITED:
        raise Conflict(f"user {user_id} has already accepted the invitation", field="user_id")
    token = _new_invitation(user, settings, now)
    audit.record(session, tenant_id=tenant_id, actor=actor, action="user.reinvited", subject=user.id)
    return Invitation(user, token)


def get(session: Session, tenant_id: str, user_id: str) -> User:
    user = repository.in_tenant(session, tenant_id, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found", field="user_id")
    return user


def _keeps_an_admin(session: Session, user: User, change: str) -> None:
    """409 when ``change`` would leave the tenant without an active tenant admin."""
    if user.role != Scope.TENANT_ADMIN.value or user.status != ACTIVE or user.tenant_id is None:
        return
    if repository.count_active_admins(session, user.tenant_id, lock=True) <= 1:
        raise Conflict(
            f"{user.email} is the tenant's last tenant admin and cannot be {change}; make another user "
            "tenant admin first",
            field="user_id",
        )


def change_role(session: Session, tenant_id: str, user_id: str, role: str, *, actor: Actor) -> User:
    scope = _role(role)
    user = get(session, tenant_id, user_id)
    if user.role == scope.value:
        return user
    _keeps_an_admin(session, user, "demoted")
    before = user.role
    user.role = scope.value
    repository.end_sessions_of(session, user.id)  # the next request signs in with the new role
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.role_changed",
        subject=user.id,
        before={"role": before},
        after={"role": scope.value, "email": user.email},
    )
    return user


def remove(session: Session, tenant_id: str, user_id: str, *, actor: Actor) -> User:
    """Delete the user and end its sessions; the ledger keeps who it was."""
    user = get(session, tenant_id, user_id)
    _keeps_an_admin(session, user, "removed")
    repository.end_sessions_of(session, user.id)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="user.removed",
        subject=user.id,
        before={"email": user.email, "name": user.name, "role": user.role},
    )
    session.delete(user)
    return user


def check_password(password: str, settings: IdentitySettings) -> None:
    if not settings.password_min_length <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"password must be {settings.password_min_length} to {MAX_PASSWORD_CHARS} characters",
            field="password",
        )


def accept_invitation(
    session: Session,
    token: str,
    password: str,
    *,
    settings: IdentitySettings,
    now: datetime,
    name: str | None,
) -> User:
    """Set the password of an invited user; the invitation then stops working."""
    check_password(password, settings)
    user = repository.by_invitation(session, token_hash(token.strip()))
    expires = user.invitation_expires_at if user is not None else None
    if user is None or user.status != INVITED or expires is None or aware(expires) <= now:
        raise NotFound(
            "this invitation is unknown, used or expired; ask your tenant admin for a new one", field="token"
        )
    user.password_hash = hash_password(password)
    user.status = ACTIVE
    user.invitation_hash = None
    user.invitation_expires_at = None
    if name and name.strip():
        user.name = name.strip()
    audit.record(
        session,
        tenant_id=user.tenant_id,
        actor=principal_of(user).actor,
        action="user.invitation_accepted",
        subject=user.id,
        after={"email": user.email, "role": user.role},
    )
    return user
