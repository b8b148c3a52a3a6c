"""``GET /metrics``: the Prometheus scrape, behind ``FRAUDRAIL_METRICS_TOKEN`` when it is set.

The scrape names tenants and their traffic by decision, so it answers 401 without the token
(production refuses to start without one) and shows only the tenant ids the operator allowed
(``FRAUDRAIL_METRICS_TENANT_LABELS``); the others are merged into ``tenant="*"``.

A process that serves no HTTP API (``fraudrail worker``, where rollout reconciles set
``fraudrail_canary_weight``) exposes the same answer on a port of its own with
``start_metrics_listener`` (``FRAUDRAIL_METRICS_LISTENER_PORT``).
"""

from __future__ import annotations

import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from control_plane.http import problem
from control_plane.settings import AppSettings
from providers.metrics_catalog import TenantLabels


class _Exposition(Protocol):
    def render_prometheus(self, tenant_labels: TenantLabels = ...) -> str: ...


class _Providers(Protocol):
    @property
    def metrics(self) -> _Exposition: ...


class MetricsSource(Protocol):
    """What the route reads from ``app.state.process_state`` (the composition root, whatever its class)."""

    @property
    def settings(self) -> AppSettings: ...

    @property
    def providers(self) -> _Providers: ...


OPENAPI_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "Prometheus text exposition format 0.0.4"},
    401: {
        "content": {"application/problem+json": {}},
        "description": "FRAUDRAIL_METRICS_TOKEN is set and the request does not carry it",
    },
}


def install_metrics_route(app: FastAPI) -> None:
    app.add_api_route(
        "/metrics",
        get_metrics,
        methods=["GET"],
        tags=["ops"],
        response_class=PlainTextResponse,
        responses=OPENAPI_RESPONSES,
    )


def get_metrics(request: Request) -> Response:
    """Prometheus scrape; needs `Authorization: Bearer <FRAUDRAIL_METRICS_TOKEN>` when that is set."""
    source: MetricsSource = request.app.state.process_state
    return metrics_response(source, request.headers.get("authorization"))


def metrics_response(source: MetricsSource, authorization: str | None) -> Response:
    token = source.settings.metrics_token
    if token is not None and not _bearer_matches(authorization, token.get_secret_value()):
        resp = problem(
            401, "Unauthenticated", "GET /metrics needs Authorization: Bearer <FRAUDRAIL_METRICS_TOKEN>"
        )
        resp.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return resp
    text = source.providers.metrics.render_prometheus(source.settings.metrics_tenant_policy)
    return Response(text, media_type=CONTENT_TYPE_PLAIN_0_0_4)


def _bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, presented = (authorization or "").partition(" ")
    # Constant-time, so response timing does not reveal how much of the token was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def start_metrics_listener(source: MetricsSource, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``GET /metrics`` (same token, same tenant policy) on ``host:port`` from a daemon thread;
    ``shutdown()`` the returned server to stop it. Port 0 picks a free port (``server_port``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            resp = metrics_response(source, self.headers.get("Authorization"))
            self.send_response(resp.status_code)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(bytes(resp.body))

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds would flood the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-listener", daemon=True).start()
    return server
