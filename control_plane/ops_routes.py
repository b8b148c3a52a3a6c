"""Operator routes: ``GET /`` (where to go), ``/healthz`` and ``/readyz``, and ``/docs`` served offline.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, which leaves the page blank on a machine
without internet; here its assets come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5,
which reads OpenAPI 3.1). ReDoc has no packaged bundle, so ``/redoc`` is not served.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from control_plane.scoring.runtime import ScoringRuntime
from providers.ports import MetricsSink

DOCS_ASSETS = "/docs/assets"


def _spool_health(request: Request) -> dict[str, Any] | None:
    provided = getattr(request.app.state, "provided", None)
    if provided is None:
        return None  # not started
    spool = provided[ScoringRuntime].spool
    health: dict[str, Any] = spool.health()
    metrics: MetricsSink | None = provided.get(MetricsSink)
    if metrics is not None:
        # Refreshed whenever a probe asks (every few seconds under any orchestrator).
        metrics.gauge("fraudrail_spool_free_bytes", float(health["free_bytes"]))
        metrics.gauge("fraudrail_spool_ready", 1.0 if health["ok"] else 0.0)
    return health


def install_ops_routes(app: FastAPI) -> None:
    # Replace FastAPI's CDN-backed pages (added when the app was created) with the offline one.
    app.router.routes[:] = [
        r for r in app.router.routes if not (isinstance(r, Route) and r.path in ("/docs", "/redoc"))
    ]
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )

    @app.get("/", include_in_schema=False)
    def index() -> JSONResponse:
        return JSONResponse(
            {
                "service": app.title,
                "version": app.version,
                "links": {
                    "docs": "/docs",
                    "openapi": app.openapi_url,
                    "console": "/console",
                    "health": "/healthz",
                    "ready": "/readyz",
                },
            }
        )

    @app.get("/healthz", tags=["ops"], summary="Liveness, with the flagged spool's state")
    def healthz(request: Request) -> dict[str, Any]:
        """Always 200 while the process serves; `spool` says whether flagged records can be written."""
        spool = _spool_health(request)
        status = "ok" if spool is None or spool["ok"] else "degraded"
        return {"status": status, "spool": spool}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: 503 while the flagged spool cannot take records",
        responses={503: {"description": "The spool's disk is full or failing (see `spool`)"}},
    )
    def readyz(request: Request) -> JSONResponse:
        """503 when the last flagged record could not be written or free space is below the floor:
        flagged checks would answer 503 there, so a load balancer should send traffic elsewhere."""
        spool = _spool_health(request)
        ready = spool is None or bool(spool["ok"])
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "spool": spool}, status_code=200 if ready else 503
        )
