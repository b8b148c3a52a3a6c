"""Console sessions, kept server-side: the cookie holds only an opaque random id.

The ``console_sessions`` table keeps a SHA-256 of that id (a stolen database cannot replay a
cookie), the principal (key id, tenant, scope), the session's CSRF token and when it was created
and last seen. A session ends at sign-out, after ``session_idle_s`` without a request, after
``session_max_age_s`` whatever happens, and as soon as its API key is revoked (or its rotation
overlap ends): the key is re-checked on every request. The analyst's key never leaves the
sign-in form. The sign-in form's own CSRF token still travels in a signed cookie (there is no
session yet). Every cookie is HttpOnly and SameSite=Strict; every POST carries the CSRF token.
"""

from __future__ import annotations

import hashlib
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
from control_plane.web.settings import ConsoleSettings

SESSION_COOKIE = "fraudrail_console"
SIGNIN_COOKIE = "fraudrail_console_signin"
SIGNIN_MAX_AGE_S = 3600
TOUCH_EVERY_S = 60  # last_seen_at is written at most once a minute per session, not per page
MAX_COOKIE_CHARS = 100


class ConsoleSessionRow(Base):
    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
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


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Creates, resolves and ends console sessions (one short transaction each)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: ConsoleSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = factory
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
                    id_hash=_digest(session_id),
                    key_id=principal.key_id,
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
            row = db.get(ConsoleSessionRow, _digest(session_id))
            if row is None or row.ended_at is not None:
                return None
            key = db.get(ApiKey, row.key_id)
            if (
                now - row.created_at >= self.max_age
                or now - row.last_seen_at >= self.idle
                or key is None
                or not is_live(key, now)
            ):
                row.ended_at = now
                return None
            if now - row.last_seen_at >= timedelta(seconds=TOUCH_EVERY_S):
                row.last_seen_at = now
            principal = Principal(key_id=row.key_id, scope=Scope(row.scope), tenant_id=row.tenant_id)
            return ConsoleSession(principal, row.csrf)

    def end(self, session_id: str | None) -> None:
        if not session_id or len(session_id) > MAX_COOKIE_CHARS:
            return
        with unit_of_work(self._factory) as db:
            row = db.get(ConsoleSessionRow, _digest(session_id))
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
