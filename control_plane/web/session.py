"""Console sessions, kept server-side: the cookie holds only an opaque random id.

The ``console_sessions`` table keeps a SHA-256 of that id (a stolen database cannot replay a
cookie), the principal (an API key, or a user who signed in with e-mail and password; tenant,
scope), the session's CSRF token and when it was created and last seen. A session ends at
sign-out, after ``session_idle_s`` without a request, after ``session_max_age_s`` whatever
happens, and as soon as its API key is revoked (or its rotation overlap ends) or its user is
removed or changes role: the key or user is re-checked on every request. The analyst's key never leaves the
sign-in form. The sign-in form's own CSRF token still travels in a signed cookie (there is no
session yet). Every cookie is HttpOnly and SameSite=Strict; every POST carries the CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from control_plane.auth.orm import ApiKey
from control_plane.auth.scopes import Principal, Scope
from control_plane.auth.service import is_live
from control_plane.db import unit_of_work
from control_plane.orm_base import Base, UTCDateTime, utcnow
from control_plane.principals import secret_digest
from control_plane.tenants.orm import Tenant
from control_plane.web.ports import People
from control_plane.web.settings import ConsoleSettings

SESSION_COOKIE = "fraudrail_console"
SIGNIN_COOKIE = "fraudrail_console_signin"
SIGNIN_MAX_AGE_S = 3600
TOUCH_EVERY_S = 60  # last_seen_at is written at most once a minute per session, not per page
MAX_COOKIE_CHARS = 100


class ConsoleSessionRow(Base):
    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Exactly one of key_id (signed in with an API key) and user_id (a person) is set.
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    scope: Mapped[str] = mapped_column(String(20))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


@dataclass(frozen=True)
class ConsoleSession:
    principal: Principal
    csrf: str
    tenant_name: str = ""


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class SessionStore:
    """Creates, resolves and ends console sessions (one short transaction each)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: ConsoleSettings,
        clock: Callable[[], datetime] = utcnow,
        people: People | None = None,
    ) -> None:
        self._factory = factory
        self.people = people
        self.idle = timedelta(seconds=settings.session_idle_s)
        self.max_age = timedelta(seconds=settings.session_max_age_s)
        self.clock = clock

    def create(self, principal: Principal) -> tuple[str, ConsoleSession]:
        """A new session for ``principal``; returns the cookie value (shown to nobody else) and it."""
        session_id, csrf, now = secrets.token_urlsafe(32), new_csrf(), self.clock()
        assert principal.tenant_id is not None
        with unit_of_work(self._factory) as db:
            db.add(
                ConsoleSessionRow(
                    id_hash=secret_digest(session_id),
                    key_id=None if principal.is_person else principal.key_id,
                    user_id=principal.key_id if principal.is_person else None,
                    tenant_id=principal.tenant_id,
                    scope=principal.scope.value,
                    csrf=csrf,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        return session_id, ConsoleSession(principal, csrf)

    def load(self, session_id: str | None) -> ConsoleSession | None:
        """The live session behind a cookie; None (and the session ended) when it timed out or its
        key no longer works."""
        if not session_id or len(session_id) > MAX_COOKIE_CHARS:
            return None
        now = self.clock()
        with unit_of_work(self._factory) as db:
            row = db.get(ConsoleSessionRow, secret_digest(session_id))
            if row is None or row.ended_at is not None:
                return None
            principal = self._still_valid(db, row, now)
            if (
                principal is None
                or now - row.created_at >= self.max_age
                or now - row.last_seen_at >= self.idle
            ):
                row.ended_at = now
                return None
            if now - row.last_seen_at >= timedelta(seconds=TOUCH_EVERY_S):
                row.last_seen_at = now
            tenant = db.get(Tenant, row.tenant_id)
            return ConsoleSession(principal, row.csrf, tenant.name if tenant is not None else row.tenant_id)

    def _still_valid(self, db: Session, row: ConsoleSessionRow, now: datetime) -> Principal | None:
        """The session's principal as it is now: None when its key stopped working, or its user was
        removed or has another role or tenant than at sign-in."""
        if row.user_id is not None:
            person = self.people.person(row.user_id) if self.people is not None else None
            if person is None or person.scope.value != row.scope or person.tenant_id != row.tenant_id:
                return None
            return person
        key = db.get(ApiKey, row.key_id) if row.key_id is not None else None
        if key is None or not is_live(key, now):
            return None
        return Principal(key_id=key.id, scope=Scope(row.scope), tenant_id=row.tenant_id, name=key.name)

    def end(self, session_id: str | None) -> None:
        if not session_id or len(session_id) > MAX_COOKIE_CHARS:
            return
        with unit_of_work(self._factory) as db:
            row = db.get(ConsoleSessionRow, secret_digest(session_id))
            if row is not None and row.ended_at is None:
                row.ended_at = self.clock()


class CookieCodec:
    """Cookie attributes, and the signed cookie of the sign-in form's CSRF token."""

    def __init__(self, settings: ConsoleSettings) -> None:
        secret = settings.secret.get_secret_value()
        self.max_age_s = settings.session_max_age_s
        self.secure = settings.secure_cookies
        self._signin = URLSafeTimedSerializer(secret, salt="fraudrail.console.signin")

    def dump_signin(self, csrf: str) -> str:
        return self._signin.dumps(csrf)

    def load_signin(self, raw: str | None) -> str | None:
        if not raw:
            return None
        try:
            value = self._signin.loads(raw, max_age=SIGNIN_MAX_AGE_S)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None
