"""Password sign-in with lockout, and users' server-side bearer sessions.

Each method is one short transaction of its own (like the console's session store): a failed
sign-in must count even though the request answers an error, and the request's own transaction
rolls back on errors. A session token is ``frs_`` + 43 random characters; only its SHA-256 is
stored, and every request re-reads the row and the user, so ending a session, removing the user or
changing its role takes effect on the next request in every process.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.errors import ServiceUnavailable, TooManyRequests, Unauthenticated
from control_plane.http import DATABASE_OUTAGES
from control_plane.orm_base import aware, utcnow
from control_plane.principals import SESSION_TOKEN_PREFIX, Principal
from control_plane.users import repository
from control_plane.users.directory import display_names
from control_plane.users.orm import User, UserSession
from control_plane.users.passwords import MAX_PASSWORD_CHARS, hash_password, needs_rehash, verify_password
from control_plane.users.repository import ACTIVE
from control_plane.users.service import principal_of, token_hash
from control_plane.users.settings import IdentitySettings

TOUCH_EVERY_S = 60
MAX_TOKEN_CHARS = 100
WRONG = "wrong e-mail or password"


@dataclass(frozen=True)
class IssuedSession:
    token: str  # shown once
    expires_at: datetime
    principal: Principal


class UserSessions:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: IdentitySettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = factory
        self.settings = settings
        self.clock = clock  # settable: tests move time past a lockout without sleeping

    def authenticate(self, email: str, password: str) -> Principal:
        """The user behind an e-mail and password. 401 for a wrong pair (the same answer whether
        the e-mail exists or not); 429 with Retry-After while the account is locked."""
        now = self.clock()
        with unit_of_work(self._factory) as db:
            user = repository.by_email(db, email) if len(email) <= 320 else None
            if user is not None and user.locked_until is not None and aware(user.locked_until) > now:
                wait = int((aware(user.locked_until) - now).total_seconds()) + 1
                raise TooManyRequests(
                    f"too many failed sign-ins: this account is locked for {wait} more seconds",
                    field="email",
                    extra={"retry_after_s": wait},
                )
            ok = len(password) <= MAX_PASSWORD_CHARS and verify_password(
                user.password_hash if user is not None else None, password
            )
            if user is None or not ok or user.status != ACTIVE:
                if user is not None:
                    self._count_failure(db, user, now)
                failed = Unauthenticated(WRONG, field="password")
            else:
                user.failed_sign_ins = 0
                user.locked_until = None
                if user.password_hash and needs_rehash(user.password_hash):
                    user.password_hash = hash_password(password)
                return principal_of(user)
        raise failed  # after the commit: the failure is counted

    def _count_failure(self, db: Session, user: User, now: datetime) -> None:
        user.failed_sign_ins += 1
        if user.failed_sign_ins >= self.settings.lockout_after:
            user.failed_sign_ins = 0
            user.locked_until = now + timedelta(seconds=self.settings.lockout_s)
            audit.record(
                db,
                tenant_id=user.tenant_id,
                actor="system",
                action="user.locked",
                subject=user.id,
                reason=f"{self.settings.lockout_after} failed sign-ins in a row",
                after={"email": user.email, "locked_until": user.locked_until.isoformat()},
            )

    def sign_in(self, email: str, password: str) -> IssuedSession:
        principal = self.authenticate(email, password)
        return self.open(principal)

    def open(self, principal: Principal, method: str = "password") -> IssuedSession:
        """A new bearer session for a user already authenticated (``method``: password or oidc)."""
        token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + timedelta(seconds=self.settings.session_max_age_s)
        with unit_of_work(self._factory) as db:
            db.add(
                UserSession(
                    id_hash=token_hash(token),
                    user_id=principal.key_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                )
            )
            audit.record(
                db,
                tenant_id=principal.tenant_id,
                actor=principal.actor,
                action="user.signed_in",
                subject=principal.key_id,
                after={"method": method},
            )
        return IssuedSession(token, expires, principal)

    def verify(self, token: str) -> Principal:
        """The principal of a live session token; 401 otherwise (ended, expired, idle, user gone)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("invalid session")
        now = self.clock()
        try:
            with unit_of_work(self._factory) as db:
                row = db.get(UserSession, token_hash(token))
                user = db.get(User, row.user_id) if row is not None else None
                if row is None or user is None or row.ended_at is not None or user.status != ACTIVE:
                    raise Unauthenticated("invalid or ended session: sign in again")
                if aware(row.expires_at) <= now or now - aware(row.last_seen_at) >= timedelta(
                    seconds=self.settings.session_idle_s
                ):
                    row.ended_at = now
                    expired = True
                else:
                    expired = False
                    if now - aware(row.last_seen_at) >= timedelta(seconds=TOUCH_EVERY_S):
                        row.last_seen_at = now
                    principal = principal_of(user)
        except DATABASE_OUTAGES as exc:
            raise ServiceUnavailable(
                "cannot verify the session: the database is unreachable; retry shortly",
                extra={"retry_after_s": 5},
            ) from exc
        if expired:
            raise Unauthenticated("the session has expired: sign in again")
        return principal

    def end(self, token: str) -> bool:
        """End a session (sign-out); False when it was not live."""
        if len(token) > MAX_TOKEN_CHARS:
            return False
        with unit_of_work(self._factory) as db:
            row = db.get(UserSession, token_hash(token))
            if row is None or row.ended_at is not None:
                return False
            row.ended_at = self.clock()
            return True

    def names(self, ids: Iterable[str]) -> dict[str, str]:
        """Readable names of actor ids (users and keys); unknown ids are left out."""
        with unit_of_work(self._factory) as db:
            return display_names(db, ids)

    def person(self, user_id: str) -> Principal | None:
        """The principal of an active user (the console re-checks its signed-in person with it)."""
        with unit_of_work(self._factory) as db:
            user = db.get(User, user_id)
            return principal_of(user) if user is not None and user.status == ACTIVE else None
