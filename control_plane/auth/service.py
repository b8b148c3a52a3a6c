"""API keys: high-entropy secrets shown once, stored as SHA-256, compared in constant time."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from control_plane.audit import service as audit
from control_plane.auth.orm import ApiKey
from control_plane.auth.ports import SessionTokens
from control_plane.auth.scopes import TENANT_SCOPES, Principal, Scope
from control_plane.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
)
from control_plane.events import KEYS_REVOKED
from control_plane.http import DATABASE_OUTAGES
from control_plane.orm_base import aware, utcnow
from control_plane.outbox import emit
from control_plane.principals import SESSION_TOKEN_PREFIX, same_digest, secret_digest
from control_plane.tenancy import authorize as authorize  # routes call service.authorize
from providers.ports import EventBus

TOKEN_PREFIX = "frk_"  # noqa: S105 - a public prefix, not a secret


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the whole token; shown once


def _parse(token: str) -> tuple[str, str]:
    if not token.startswith(TOKEN_PREFIX) or "." not in token:
        raise Unauthenticated("malformed API key")
    key_hex, secret = token[len(TOKEN_PREFIX) :].split(".", 1)
    if len(key_hex) != 16 or not secret:
        raise Unauthenticated("malformed API key")
    return f"key_{key_hex}", secret


def issue_key(session: Session, *, tenant_id: str | None, scope: Scope, name: str, actor: str) -> IssuedKey:
    """Create a key; the token is returned once and never stored."""
    if scope is Scope.PLATFORM_ADMIN and tenant_id is not None:
        raise InvalidInput("a platform-admin key belongs to no tenant", field="scope")
    if scope in TENANT_SCOPES and tenant_id is None:
        raise InvalidInput("a tenant key needs a tenant", field="tenant_id")
    key_hex = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=f"key_{key_hex}",
        tenant_id=tenant_id,
        scope=scope.value,
        name=name,
        secret_hash=secret_digest(secret),
    )
    session.add(key)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="key.created",
        subject=key.id,
        after={"scope": scope.value, "name": name},
    )
    return IssuedKey(key=key, secret=f"{TOKEN_PREFIX}{key_hex}.{secret}")


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id)
    return list(session.scalars(stmt))


def get_key(session: Session, tenant_id: str, key_id: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id))
    if key is None:
        raise NotFound(f"key {key_id} not found", field="key_id")
    return key


def revoke_key(
    session: Session, tenant_id: str, key_id: str, *, actor: str, reason: str | None = None
) -> ApiKey:
    key = get_key(session, tenant_id, key_id)
    if not is_live(key, utcnow()):  # a rotated key inside its overlap can still be revoked at once
        raise Conflict(f"key {key_id} is already revoked", field="key_id")
    key.revoked_at = utcnow()
    audit.record(
        session, tenant_id=tenant_id, actor=actor, action="key.revoked", subject=key_id, reason=reason
    )
    emit(session, KEYS_REVOKED, {"key_ids": [key_id]})  # every process forgets it after the commit
    return key


MAX_ROTATION_OVERLAP_S = 7 * 86_400


def rotate_key(session: Session, tenant_id: str, key_id: str, *, actor: str, overlap_s: int = 0) -> IssuedKey:
    """Issue a replacement with the same scope; the old key stops working after ``overlap_s``
    seconds (0: at once), so clients can move to the new secret without an outage."""
    if not 0 <= overlap_s <= MAX_ROTATION_OVERLAP_S:
        raise InvalidInput(f"overlap_s must be between 0 and {MAX_ROTATION_OVERLAP_S}", field="overlap_s")
    old = get_key(session, tenant_id, key_id)
    if old.revoked_at is not None:
        raise Conflict(f"key {key_id} is revoked or already rotated and cannot be rotated", field="key_id")
    new = issue_key(session, tenant_id=tenant_id, scope=Scope(old.scope), name=old.name, actor=actor)
    old.revoked_at = utcnow() + timedelta(seconds=overlap_s)  # a future revoked_at: still valid until then
    old.replaced_by = new.key.id
    emit(session, KEYS_REVOKED, {"key_ids": [key_id]})  # every process re-reads it after the commit
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="key.rotated",
        subject=key_id,
        after={"replaced_by": new.key.id, "old_key_valid_until": old.revoked_at.isoformat()},
    )
    return new


def is_live(key: ApiKey, now: datetime) -> bool:
    """Not revoked, or revoked in the future: a rotated key inside its overlap period."""
    return key.revoked_at is None or aware(key.revoked_at) > now


def revoke_all(session: Session, tenant_id: str, *, actor: str, reason: str) -> list[str]:
    now = utcnow()
    ids = [k.id for k in list_keys(session, tenant_id) if is_live(k, now)]
    if ids:
        session.execute(update(ApiKey).where(ApiKey.id.in_(ids)).values(revoked_at=now))
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="key.revoked_all",
            subject=tenant_id,
            reason=reason,
            after={"revoked": ids},
        )
        emit(session, KEYS_REVOKED, {"key_ids": ids})
    return ids


def count_platform_admin_keys(session: Session) -> int:
    stmt = select(ApiKey).where(ApiKey.scope == Scope.PLATFORM_ADMIN.value, ApiKey.revoked_at.is_(None))
    return len(list(session.scalars(stmt)))


# Keys verified within this window keep working while the database is unreachable (stale-if-error);
# past it, or for a key never verified here, verification answers 503 until the database is back.
STALE_IF_ERROR_S = 900.0
CACHE_MAX_KEYS = 10_000
OUTAGE_RETRY_AFTER_S = 5


@dataclass(frozen=True)
class _Verified:
    secret_hash: str
    principal: Principal
    at: float  # monotonic time of the database read
    until: float = float("inf")  # a rotated key's end of overlap, on the same clock


class KeyVerifier:
    """Resolves a token to a principal; caches verified keys briefly so hot paths skip SQL.

    Revocation in this process invalidates at once (``forget``). Every process forgets a revoked key
    when the ``keys.revoked`` broadcast reaches it (``on_revoked``, subscribed by ``listen``), i.e.
    right after the revoking transaction committed; ``ttl_s`` only bounds a missed event.
    The cache holds at most ``max_keys`` keys (least recently used out first).
    When the database cannot be reached, a key read from it less than ``stale_s`` ago is still
    accepted (a revocation made during the outage waits for the database, bounded by ``stale_s``);
    any other key gets 503 with ``Retry-After``, never a 500.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        ttl_s: float = 30.0,
        *,
        stale_s: float = STALE_IF_ERROR_S,
        max_keys: int = CACHE_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
        sessions: SessionTokens | None = None,
    ) -> None:
        self._factory = factory
        self.sessions = sessions  # users' session tokens (frs_…), verified by the users domain
        self._ttl = ttl_s
        self._stale_s = max(stale_s, ttl_s)
        self._max_keys = max_keys
        self.clock = clock  # settable: tests move time past the TTL without sleeping
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self.stale_answers = 0  # keys accepted from the cache during an outage (for tests and ops)
        # key id -> when a revocation was heard: a lookup that read the row before the revocation
        # committed must not cache it after the event dropped the entry.
        self._revoked: dict[str, float] = {}

    def listen(self, bus: EventBus) -> None:
        bus.subscribe(KEYS_REVOKED, self.on_revoked, mode="broadcast")

    def on_revoked(self, _topic: str, message: Mapping[str, Any]) -> None:
        key_ids = message.get("key_ids")
        if isinstance(key_ids, list):
            self.forget(str(k) for k in key_ids)

    def verify(self, token: str) -> Principal:
        """The principal of an API key, or of a user's session token (same model: every route's
        tenant and scope checks apply to both)."""
        if token.startswith(SESSION_TOKEN_PREFIX) and self.sessions is not None:
            return self.sessions.verify(token)
        key_id, secret = _parse(token)
        digest = secret_digest(secret)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now >= hit.until:
            self.forget([key_id])
            raise Unauthenticated("invalid API key")
        if hit is not None and now - hit.at < self._ttl:
            return _matching(hit, digest)
        try:
            with self._factory() as session:
                key = session.get(ApiKey, key_id)
                if key is None or not is_live(key, utcnow()):
                    self.forget([key_id])
                    raise Unauthenticated("invalid API key")
                until = float("inf")
                if key.revoked_at is not None:  # rotated: valid until the overlap ends
                    until = now + (aware(key.revoked_at) - utcnow()).total_seconds()
                verified = _Verified(
                    key.secret_hash,
                    Principal(key_id=key.id, scope=Scope(key.scope), tenant_id=key.tenant_id, name=key.name),
                    now,
                    until,
                )
        except DATABASE_OUTAGES as exc:
            if hit is not None and now - hit.at < self._stale_s:
                with self._lock:
                    self.stale_answers += 1
                return _matching(hit, digest)
            raise ServiceUnavailable(
                "cannot verify the API key: the database is unreachable; retry shortly",
                extra={"retry_after_s": OUTAGE_RETRY_AFTER_S},
            ) from exc
        principal = _matching(verified, digest)
        with self._lock:
            if self._revoked.get(key_id, float("-inf")) >= now:
                return principal
            self._cache[key_id] = verified
            self._cache.move_to_end(key_id)
            while len(self._cache) > self._max_keys:
                self._cache.popitem(last=False)
        return principal

    def forget(self, key_ids: Iterable[str]) -> None:
        heard = self.clock()
        with self._lock:
            for key_id in key_ids:
                self._cache.pop(key_id, None)
                self._revoked[key_id] = heard
            if len(self._revoked) > 10_000:  # old marks matter only to lookups in flight
                self._revoked = {k: t for k, t in self._revoked.items() if t > heard - 60}

    def __len__(self) -> int:
        return len(self._cache)


def _matching(entry: _Verified, digest: str) -> Principal:
    if not same_digest(entry.secret_hash, digest):
        raise Unauthenticated("invalid API key")
    return entry.principal
