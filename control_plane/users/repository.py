"""User and session queries."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from control_plane.users.orm import User, UserSession

ACTIVE = "active"
INVITED = "invited"


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def by_invitation(session: Session, invitation_hash: str) -> User | None:
    return session.scalar(select(User).where(User.invitation_hash == invitation_hash))


def in_tenant(session: Session, tenant_id: str, user_id: str) -> User | None:
    return session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))


def list_in_tenant(session: Session, tenant_id: str) -> list[User]:
    stmt = select(User).where(User.tenant_id == tenant_id).order_by(User.created_at, User.id)
    return list(session.scalars(stmt))


def count_active_admins(session: Session, tenant_id: str, *, lock: bool = False) -> int:
    """Active tenant admins; with ``lock`` their rows are locked (PostgreSQL) so two concurrent
    removals cannot each see the other admin and leave none."""
    stmt = select(User.id).where(
        User.tenant_id == tenant_id, User.role == "tenant-admin", User.status == ACTIVE
    )
    if lock:
        return len(list(session.scalars(stmt.with_for_update())))
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def end_sessions_of(session: Session, user_id: str) -> None:
    session.execute(delete(UserSession).where(UserSession.user_id == user_id))
