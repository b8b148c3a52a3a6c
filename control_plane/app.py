"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from control_plane.audit.router import router as audit_router
from control_plane.auth.router import router as keys_router
from control_plane.auth.write_guard import guard_tenant_writes
from control_plane.bootstrap.lifespan import serve_state
from control_plane.bootstrap.state import State, build_state
from control_plane.chaos.router import router as chaos_router
from control_plane.datasets.feature_sets_router import router as feature_sets_router
from control_plane.datasets.router import router as datasets_router
from control_plane.finops.router import install_finops
from control_plane.finops.shedding import ShedRefusedTenants
from control_plane.http import BodySizeLimit, install_error_handlers, reject_nul_characters
from control_plane.jobs.router import router as jobs_router
from control_plane.jobs.worker import Worker
from control_plane.monitoring.router import router as monitoring_router
from control_plane.overload import BoundedInFlight
from control_plane.registry.router import router as models_router
from control_plane.review.router import router as review_router
from control_plane.rollouts.router import router as rollouts_router
from control_plane.scoring.router import router as scoring_router
from control_plane.settings import AppSettings
from control_plane.slo.router import router as slo_router
from control_plane.tenants.router import router as tenants_router
from control_plane.training.retraining_router import router as retraining_router
from control_plane.training.router import router as training_router
from control_plane.users.oidc_router import config_router as oidc_config_router
from control_plane.users.oidc_router import sign_in_router as oidc_sign_in_router
from control_plane.users.router import auth_router as sign_in_router
from control_plane.users.router import router as users_router
from control_plane.web.router import router as console_router
from control_plane.web.sso_pages import router as console_sso_router

log = logging.getLogger(__name__)

UPLOAD_PATHS = ("/v1/datasets", "/v1/batch-scoring")


def build_worker(state: State) -> Worker:
    """The process's worker (built with the state; kept for callers of the old name)."""
    return state.worker


def create_app(settings: AppSettings | None = None, state: State | None = None) -> FastAPI:
    """The HTTP app over ``state`` (built from ``settings`` at start-up when not given)."""
    settings = settings or AppSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = state or build_state(settings)
        app.state.process_state = s  # only the composition layer's routes (metrics) read it whole
        app.state.provided = s.provided()
        async with serve_state(s, owns_state=state is None):
            yield

    app = FastAPI(
        title="Fraudrail control plane",
        version="0.1.0",
        description=(
            "Multi-tenant fraud detection with guardrails. Authenticate with `Authorization: Bearer <key>`."
        ),
        lifespan=lifespan,
        # PostgreSQL cannot store NUL: refuse it in any input with a 422 before a handler runs.
        # Then scope and tenant state before any body is validated (auth.write_guard).
        dependencies=[Depends(reject_nul_characters), Depends(guard_tenant_writes)],
    )
    install_error_handlers(app)
    install_finops(app)  # routes, and 429s with Retry-After / RateLimit-* headers
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
    )
    # Outermost: a tenant the rate limiter is refusing gets its 429 before anything else runs.
    app.add_middleware(ShedRefusedTenants)
    # Outside everything: past its bound of requests held at once, a process refuses at once.
    app.add_middleware(BoundedInFlight, max_in_flight=settings.max_in_flight_requests)
    for router in (
        tenants_router,
        keys_router,
        users_router,
        sign_in_router,
        oidc_config_router,
        oidc_sign_in_router,
        audit_router,
        jobs_router,
        datasets_router,
        feature_sets_router,
        models_router,
        training_router,
        scoring_router,
        rollouts_router,
        slo_router,
        chaos_router,
        review_router,
        monitoring_router,
        retraining_router,
        console_router,
        console_sso_router,
    ):
        app.include_router(router)

    # The fraud-check hot path skips FastAPI's routing and dependency solving; the FastAPI route
    # of the same path stays for the OpenAPI document.
    from starlette.routing import Route

    from control_plane.scoring.router import fraud_check_fast

    app.router.routes.insert(0, Route("/v1/fraud-check", fraud_check_fast, methods=["POST"]))

    from control_plane.ops_routes import install_ops_routes

    install_ops_routes(app)  # GET / (links), /healthz and /readyz (spool free space), offline /docs

    from control_plane.metrics_endpoint import install_metrics_route

    install_metrics_route(app)  # GET /metrics, behind FRAUDRAIL_METRICS_TOKEN when set

    return app
