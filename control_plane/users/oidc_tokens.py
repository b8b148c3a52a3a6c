"""OpenID Connect mechanics: PKCE, sealed client secrets, the provider's metadata and keys (cached
for a bounded time), and ID token verification (RS256 signature, iss, aud, azp, exp, iat, nonce).

Every refusal is a ``DomainError`` naming what was wrong (``id_token.aud``, ``id_token.nonce`` …)
so the person, or the admin who configured the provider, can tell which check failed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from control_plane.errors import ServiceUnavailable, Unauthenticated
from control_plane.users.ports import OidcHttp
from providers.ports import ProviderError

ALGORITHMS = ["RS256"]
MAX_ID_TOKEN_CHARS = 16_000
V = TypeVar("V")


def pkce_pair() -> tuple[str, str]:
    """A code verifier (43 characters of 32 random bytes) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(32)
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class SecretBox:
    """Encrypts client secrets at rest with a Fernet key derived from the platform's secret key."""

    def __init__(self, secret_key: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(b"fraudrail-oidc:" + secret_key.encode()).digest())
        self._fernet = Fernet(key)

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ServiceUnavailable(
                "the tenant's OIDC client secret cannot be decrypted (FRAUDRAIL_OIDC_SECRET_KEY changed?): "
                "a tenant admin must set it again",
                field="client_secret",
            ) from exc


class TtlCache(Generic[V]):
    """At most ``entries`` values, each kept ``ttl_s`` seconds (least recently used goes first)."""

    def __init__(self, ttl_s: float, entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] <= self.clock():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: str, value: V) -> None:
        with self._lock:
            self._items[key] = (self.clock() + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    basic_auth: bool  # client_secret_basic supported (the default); else client_secret_post


def is_allowed_url(url: str) -> bool:
    """https, or http to a loopback host only (a provider in a test, or on the same machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


class ProviderDirectory:
    """Each issuer's discovery document and JWKS, fetched over ``http`` and cached for a while."""

    def __init__(self, http: OidcHttp, ttl_s: float, entries: int) -> None:
        self.http = http
        self.metadata: TtlCache[ProviderMetadata] = TtlCache(ttl_s, entries)
        self.jwks: TtlCache[KeySet] = TtlCache(ttl_s, entries)

    def _fetch(self, url: str, what: str) -> Any:
        try:
            return self.http.get_json(url)
        except ProviderError as exc:
            raise ServiceUnavailable(
                f"the identity provider's {what} is unavailable: {exc}",
                field="issuer",
                extra={"retry_after_s": 30},
            ) from exc

    def discover(self, issuer: str) -> ProviderMetadata:
        cached = self.metadata.get(issuer)
        if cached is not None:
            return cached
        doc = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
        endpoints = ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in endpoints):
            raise ServiceUnavailable(
                f"{issuer}'s discovery document lacks {', '.join(endpoints)}", field="issuer"
            )
        if doc.get("issuer") != issuer:
            raise ServiceUnavailable(
                f"the discovery document names issuer {doc.get('issuer')!r}, not the configured {issuer!r}",
                field="issuer",
            )
        if not all(is_allowed_url(doc[k]) for k in endpoints):
            raise ServiceUnavailable(f"{issuer}'s endpoints must be https URLs", field="issuer")
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        found = ProviderMetadata(
            issuer=issuer,
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            basic_auth="client_secret_basic" in methods or "client_secret_post" not in methods,
        )
        self.metadata.put(issuer, found)
        return found

    def keys(self, jwks_uri: str, *, fresh: bool = False) -> KeySet:
        cached = None if fresh else self.jwks.get(jwks_uri)
        if cached is not None:
            return cached
        doc = self._fetch(jwks_uri, "key set (JWKS)")
        try:
            usable = [k for k in doc["keys"] if isinstance(k, dict) and k.get("kty") == "RSA"]
            found = KeySet.import_key_set({"keys": usable})
        except (TypeError, KeyError, ValueError, JoseError) as exc:
            raise ServiceUnavailable(
                f"the provider's JWKS at {jwks_uri} is malformed", field="issuer"
            ) from exc
        self.jwks.put(jwks_uri, found)
        return found


def _refuse(detail: str, field: str) -> Unauthenticated:
    return Unauthenticated(detail, field=f"id_token.{field}")


def verify_id_token(
    id_token: str,
    *,
    directory: ProviderDirectory,
    metadata: ProviderMetadata,
    client_id: str,
    nonce: str,
    now: float,
    skew_s: int,
) -> dict[str, Any]:
    """The claims of a valid ID token for ``client_id``; 401 naming the failed check otherwise.
    An unknown ``kid`` re-reads the JWKS once (the provider rotated its keys)."""
    if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_ID_TOKEN_CHARS:
        raise _refuse("the provider's answer has no usable ID token", "signature")
    try:
        try:
            token = jwt.decode(id_token, directory.keys(metadata.jwks_uri), algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            token = jwt.decode(id_token, directory.keys(metadata.jwks_uri, fresh=True), algorithms=ALGORITHMS)
    except BadSignatureError as exc:
        raise _refuse(
            "the ID token's signature does not verify with the provider's keys", "signature"
        ) from exc
    except InvalidKeyIdError as exc:
        raise _refuse("the ID token is signed with a key the provider does not publish", "signature") from exc
    except (JoseError, ValueError) as exc:
        raise _refuse(f"the ID token is not an RS256 JWT ({type(exc).__name__})", "signature") from exc
    claims = token.claims
    if claims.get("iss") != metadata.issuer:
        raise _refuse(f"the ID token's issuer {claims.get('iss')!r} is not {metadata.issuer!r}", "iss")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise _refuse(f"the ID token is for {aud!r}, not this client ({client_id})", "aud")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise _refuse("the ID token has several audiences and is not authorized for this client", "azp")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + skew_s <= now:
        raise _refuse("the ID token has expired (or has no exp)", "exp")
    if iat is not None and (not isinstance(iat, int | float) or iat - skew_s > now):
        raise _refuse("the ID token is issued in the future", "iat")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
        claims["nonce"].encode(), nonce.encode()
    ):
        raise _refuse("the ID token's nonce is not the one this sign-in sent", "nonce")
    if not isinstance(claims.get("sub"), str) or not claims["sub"] or len(claims["sub"]) > 255:
        raise _refuse("the ID token has no usable subject", "sub")
    return dict(claims)
