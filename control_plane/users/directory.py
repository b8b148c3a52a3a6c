"""Readable names for the ids stored as actors (claimed_by, decided_by, escalated_by, created_by):
a user's name and e-mail, or an API key's name. One query per kind, for a whole page of ids."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.auth.orm import ApiKey
from control_plane.principals import Principal, Scope
from control_plane.users.orm import User


def display_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """Id (``usr_…``, ``key_…``, or ``user:`` / ``key:`` prefixed) → readable name; unknown ids
    (a removed user, a deleted key) are left out: callers show the id."""
    bare = {i: i.split(":", 1)[-1] for i in ids if i}
    user_ids = [b for b in bare.values() if b.startswith("usr_")]
    key_ids = [b for b in bare.values() if b.startswith("key_")]
    found: dict[str, str] = {}
    if user_ids:
        for u in session.scalars(select(User).where(User.id.in_(user_ids))):
            found[u.id] = Principal(u.id, Scope(u.role), u.tenant_id, name=u.name, email=u.email).display_name
    if key_ids:
        for k in session.scalars(select(ApiKey).where(ApiKey.id.in_(key_ids))):
            found[k.id] = Principal(k.id, Scope(k.scope), k.tenant_id, name=k.name).display_name
    return {given: found[b] for given, b in bare.items() if b in found}
