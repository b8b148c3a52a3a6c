"""A small but real OpenID Connect provider for tests, served over HTTP on 127.0.0.1.

It speaks the protocol the control plane uses: discovery, JWKS, ``/authorize`` (which signs in
``next_login`` at once and redirects back with a code) and ``/token`` (which checks the client
secret, the redirect URI, that the code is used once and the PKCE S256 verifier, then answers an
RS256 ID token). ``tamper`` makes it misbehave in one way at a time, so each check of the relying
party can be shown to refuse what it must.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.helpers import wait_until


@dataclass
class Login:
    """Who signs in at the provider next."""

    sub: str
    email: str
    name: str = "Sam Single"
    email_verified: Any = True


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    login: Login


@dataclass
class LoopbackProvider:
    client_id: str = "fraudrail-test-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    issuer: str = ""
    next_login: Login = field(default_factory=lambda: Login("sub-0001", "sam@acme.example"))
    # One misbehaviour at a time: aud, nonce, exp_offset_s, other_key, challenge.
    tamper: dict[str, Any] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, Grant] = field(default_factory=dict)
    jwks_reads: int = 0

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "loopback-1", "use": "sig"}, private=True)
        # Same kid, another key: a token signed with it must fail the signature check.
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "loopback-1"}, private=True)

    # --- endpoints -------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        self.jwks_reads += 1
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    def rotate_key(self, kid: str) -> None:
        """Sign with a new key under a new kid from now on (and publish only that one)."""
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"}, private=True)
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        problems = [
            name
            for name, ok in (
                ("response_type", q.get("response_type") == "code"),
                ("client_id", q.get("client_id") == self.client_id),
                ("redirect_uri", (q.get("redirect_uri") or "").startswith("http://127.0.0.1:")),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", len(q.get("code_challenge") or "") == 43),
                ("state", bool(q.get("state"))),
                ("nonce", bool(q.get("nonce"))),
                ("scope", "openid" in (q.get("scope") or "").split()),
            )
            if not ok
        ]
        if problems:
            return JSONResponse({"error": "invalid_request", "error_description": ",".join(problems)}, 400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            client_id=q["client_id"],
            redirect_uri=q["redirect_uri"],
            challenge=self.tamper.get("challenge", q["code_challenge"]),
            nonce=q["nonce"],
            login=self.next_login,
        )
        back = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return RedirectResponse(back, status_code=302)

    def _client_ok(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secrets.compare_digest(secret, self.client_secret)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        if not self._client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri differs"}, 400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant.challenge:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}, 400
            )
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant),
            }
        )

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant.login.sub,
            "aud": self.tamper.get("aud", grant.client_id),
            "exp": now + self.tamper.get("exp_offset_s", 300),
            "iat": now,
            "nonce": self.tamper.get("nonce", grant.nonce),
            "email": grant.login.email,
            "email_verified": grant.login.email_verified,
            "name": grant.login.name,
        }
        key = self.other_key if self.tamper.get("other_key") else self.key
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, key)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )


@contextmanager
def serve_on_loopback(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (a pre-bound free port) in a thread; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="loopback", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
