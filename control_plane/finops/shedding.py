"""Load shedding in front of the router: a tenant inside a refusal window gets its 429 at once.

A tenant flooding ``POST /v1/fraud-check`` past its rate limit should cost the other tenants as
little as possible. The route already checks the limit before it parses the body; this ASGI
middleware goes further for a tenant the limiter has just refused: it reads the key from the raw
headers, verifies it (the verifier's in-memory cache), asks ``RateLimiter.refusal`` (a dictionary
lookup, no bucket call) and answers the same problem+json 429 with the same headers, without
routing, without the exception machinery and without reading the body. Anything else (no key, a bad
key, a tenant not being refused, another path) goes on to the application unchanged, so the answer
a client gets never depends on which of the two paths gave it.

Only a client that ignored a 429 reaches this path (the first refusal of a window comes from the
route). Its 429 is held for ``refusal_hold_s`` ± 50 % (0.25 s; the decision is the one taken on
arrival): a client retrying in a tight loop then sends about four requests a second per connection
instead of thousands, the way a delaying rate limiter in a gateway slows abusers. The jitter keeps a
flooder's connections out of step: released together (at a window's end, or after equal holds),
their next requests would be scored back to back and queue other tenants' checks behind them.
A client that honours ``Retry-After`` never waits. At most
``refusal_hold_max_requests`` are held at once; past that, 429s go out at once.
"""

from __future__ import annotations

import random

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from control_plane.auth.scopes import Scope as KeyScope
from control_plane.auth.service import KeyVerifier
from control_plane.deps import bearer_or_api_key
from control_plane.errors import DomainError
from control_plane.finops.limiter import RateLimited
from control_plane.finops.runtime import FinOpsRuntime
from control_plane.http import problem
from providers.ports import MetricsSink

_sleep = anyio.sleep  # module-level so a test can record the holds instead of waiting them out
_jitter = random.Random()  # spreads retries; guards nothing


PRINCIPAL_KEY = "fraudrail.principal"  # the ASGI scope key of a key this middleware verified


class ShedRefusedTenants:
    def __init__(self, app: ASGIApp, path: str = "/v1/fraud-check") -> None:
        self.app = app
        self.path = path
        self.held = 0  # requests waiting for their window's end right now (one event loop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST":
            refused = self._refusal(scope)
            if refused is not None:
                response, hold_s = refused
                if hold_s > 0:
                    self.held += 1
                    try:
                        await _sleep(hold_s)
                    finally:
                        self.held -= 1
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[Response, float] | None:
        """The 429 and how long to hold it, for a tenant inside a refusal window; None otherwise."""
        provided = getattr(scope["app"].state, "provided", None)
        if provided is None:
            return None  # the app has not started
        verifier: KeyVerifier = provided[KeyVerifier]
        finops: FinOpsRuntime = provided[FinOpsRuntime]
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
            principal = verifier.verify(token)
        except DomainError:
            return None  # the route answers 401 with its own message
        scope[PRINCIPAL_KEY] = principal  # the route takes it from here instead of verifying again
        if principal.scope is not KeyScope.APP or principal.tenant_id is None:
            return None
        limiter = finops.limiter
        decision = limiter.refusal(principal.tenant_id)
        if decision is None:
            return None
        response = rate_limited_response(limiter.refused(principal.tenant_id, decision))
        settings = finops.settings
        if self.held >= settings.refusal_hold_max_requests or settings.refusal_hold_s <= 0:
            return response, 0.0
        metrics: MetricsSink = provided[MetricsSink]
        metrics.increment("fraudrail_rate_limit_held_total", tenant=principal.tenant_id)
        # Jitter (±50 %) keeps a flooder's connections from coming back in step: released
        # together, their allowed requests would be scored back to back, others queued behind.
        return response, settings.refusal_hold_s * (0.5 + _jitter.random())


def rate_limited_response(exc: RateLimited) -> Response:
    """The 429 problem+json with Retry-After and RateLimit-* headers (the route's and this path's)."""
    response = problem(exc.status, exc.title, exc.detail, field=exc.field, **exc.extra)
    response.headers.update(exc.headers)
    return response
