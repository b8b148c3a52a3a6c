"""A bound on the requests one serving process holds at once: past it, 503 with ``Retry-After``.

A process answers fraud checks on its event loop; when requests arrive faster than it answers them
(an attack, a burst, a slow disk) every accepted request waits in memory with its connection, body
and task, so an unbounded queue is both unbounded memory and unbounded latency for everyone. Past
``max_in_flight_requests`` a request is refused at once, before its body is read: 503 problem+json
with ``Retry-After: 1``, which the fraud-check contract already tells clients to retry with the same
``txn_id`` (nothing is lost, nothing is half-done). Health and metrics are never refused, so a load
balancer sees an overloaded process as alive and busy, not dead.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from providers.ports import MetricsSink

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class BoundedInFlight:
    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # one event loop: no lock needed
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.refused += 1
            app = scope.get("app")  # set by Starlette before its middleware stack runs
            provided = getattr(app.state, "provided", None) if app is not None else None
            if provided is not None:
                metrics: MetricsSink = provided[MetricsSink]
                metrics.increment("fraudrail_overload_refused_total")
            await _refuse(send, self.max_in_flight)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {
            "type": "https://fraudrail.dev/problems/503",
            "title": "Overloaded",
            "status": 503,
            "detail": f"this process is answering {limit} requests already; retry after 1 s",
            "retry_after_s": 1,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
