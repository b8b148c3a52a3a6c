"""Load shedding in front of the router: a tenant inside a refusal window gets its 429 at once.

A tenant flooding ``POST /v1/fraud-check`` past its rate limit should cost the other tenants as
little as possible. The route already checks the limit before it parses the body; this ASGI
middleware goes further for a tenant the limiter has just refused: it reads the key from the raw
headers, verifies it (the verifier's in-memory cache), asks ``RateLimiter.refusal`` (a dictionary
lookup, no bucket call) and answers the same problem+json 429 with the same headers, without
routing, without the exception machinery and without reading the body. Anything else (no key, a bad
key, a tenant not being refused, another path) goes on to the application unchanged, so the answer
a client gets never depends on which of the two paths gave it.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from control_plane.auth.scopes import Scope as KeyScope
from control_plane.deps import bearer_or_api_key
from control_plane.errors import DomainError
from control_plane.http import PROBLEM, problem_body


class ShedRefusedTenants:
    def __init__(self, app: ASGIApp, path: str = "/v1/fraud-check") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST":
            answer = self._refusal(scope)
            if answer is not None:
                await send(answer[0])
                await send(answer[1])
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[dict[str, object], dict[str, object]] | None:
        state = getattr(scope["app"].state, "container", None)
        if state is None:
            return None
        authorization = api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                api_key = value.decode("latin-1")
        token = bearer_or_api_key(authorization, api_key)
        if not token:
            return None
        try:
            principal = state.verifier.verify(token)
        except DomainError:
            return None  # the route answers 401 with its own message
        if principal.scope is not KeyScope.APP or principal.tenant_id is None:
            return None
        limiter = state.finops.limiter
        decision = limiter.refusal(principal.tenant_id)
        if decision is None:
            return None
        exc = limiter.refused(principal.tenant_id, decision)
        body = orjson.dumps(problem_body(exc.status, exc.title, exc.detail, field=exc.field, **exc.extra))
        headers = [
            (b"content-type", PROBLEM.encode()),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
        ]
        start = {"type": "http.response.start", "status": exc.status, "headers": headers}
        return start, {"type": "http.response.body", "body": body}
