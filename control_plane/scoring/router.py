"""Fraud-check (the hot path), scoring configuration, batch scoring, flagged transactions."""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError

from control_plane.audit import service as audit
from control_plane.auth.scopes import Principal, Scope
from control_plane.datasets.service import detect_format
from control_plane.deps import (
    FlaggedStoreDep,
    ObjectStoreDep,
    PrincipalDep,
    SessionDep,
    TemplatesDep,
    get_principal,
    provided,
    token_from_headers,
)
from control_plane.errors import InvalidInput, NotFound
from control_plane.finops.shedding import PRINCIPAL_KEY
from control_plane.http import reject_nul_in_json
from control_plane.jobs import queue
from control_plane.orm_base import utcnow
from control_plane.scoring import config as scoring_config
from control_plane.scoring.ports import FraudCheckDeps, TenantRateLimiter
from control_plane.scoring.schemas import (
    BatchScoringOut,
    FraudCheckRequest,
    FraudCheckResponse,
    ScoringConfigIn,
    ScoringConfigOut,
)
from control_plane.scoring.tasks import BATCH_JOB
from control_plane.tenancy import tenant_of
from fraud_model.validation import DatasetError, read_table, validate_dataset

router = APIRouter(tags=["fraud-check"])


@router.post(
    "/v1/fraud-check",
    response_model=FraudCheckResponse,
    responses={
        409: {"description": "No PRODUCTION model, tenant not active, or txn_id reused"},
        429: {
            "description": (
                "Rate limit or daily quota exceeded (problem+json with Retry-After and RateLimit-* "
                "headers). A request sent inside the refusal window, ignoring an earlier 429, gets its "
                "429 after FRAUDRAIL_FINOPS_REFUSAL_HOLD_S (0.25 s)."
            )
        },
    },
)
async def fraud_check(
    body: FraudCheckRequest,
    deps: Annotated[FraudCheckDeps, Depends(provided(FraudCheckDeps))],
    principal: Annotated[Principal, Depends(get_principal)],
) -> Response:
    """Score one card transaction: LEGIT / REVIEW / SUSPICIOUS with a score and reason codes.

    Served by ``fraud_check_fast`` (mounted in front of the router); this route documents it.
    """
    started = time.perf_counter()
    limit = deps.limiter.check(tenant_of(principal, {Scope.APP}))
    return await answer_check(deps, principal, body, started, limit=limit)


async def fraud_check_fast(request: Request) -> Response:
    """The hot path without FastAPI's routing and dependency solving (about 40% of a request's CPU):
    the same key check, body validation (errors as 422 naming the field) and answer."""
    started = time.perf_counter()
    deps: FraudCheckDeps = request.app.state.provided[FraudCheckDeps]
    principal = request.scope.get(PRINCIPAL_KEY) or deps.verifier.verify(token_from_headers(request))
    tenant_id = tenant_of(principal, {Scope.APP})
    limit, gate = None, None
    if deps.checker.token_in_claim(deps.limiter):
        # Buckets and cache on Redis: the token is taken in the round trip that claims the txn_id
        # and reads the states (one round trip before the answer instead of two), so after the body
        # is parsed: a tenant past its limit costs a parse and validation before its 429. Only the
        # first refusal of each refusal window pays that; the rest are answered before routing by
        # control_plane.finops.shedding (and by scripted_take) from memory.
        gate = deps.limiter
    else:
        # In-process buckets cost no round trip: the limit comes before the body is parsed, so a
        # tenant flooding past its quota costs the others as little as possible.
        limit = deps.limiter.check(tenant_id)
    raw = await request.body()
    reject_nul_in_json(raw)  # the app-wide NUL guard is a FastAPI dependency, which this route skips
    try:
        body = FraudCheckRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    return await answer_check(deps, principal, body, started, limit=limit, gate=gate)


async def answer_check(
    deps: FraudCheckDeps,
    principal: Principal,
    body: FraudCheckRequest,
    started: float,
    *,
    limit: Any,
    gate: TenantRateLimiter | None = None,
) -> Response:
    tenant_id = tenant_of(principal, {Scope.APP})
    checker = deps.checker
    cold = checker.cold_versions(tenant_id)
    if cold:
        # Loading and verifying an artifact takes tens of ms: never on the event loop, where it
        # would stall every other tenant's checks.
        await anyio.to_thread.run_sync(checker.warm, tenant_id, cold)
    # The cache's async calls: a check waiting on Redis leaves the loop to the others.
    answer, taken = await checker.acheck(tenant_id, body, started=started, gate=gate)
    deps.usage.fraud_check(tenant_id)  # counted in memory; FinOps writes the counts in batches
    decision = taken if gate is not None else limit
    headers = decision.headers if decision is not None else None
    return Response(orjson.dumps(answer), media_type="application/json", headers=headers)


@router.get("/v1/scoring-config", response_model=ScoringConfigOut)
def get_scoring_config(
    session: SessionDep, templates: TemplatesDep, principal: PrincipalDep
) -> ScoringConfigOut:
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN, Scope.SRE})
    return scoring_config.read(session, tenant_id, templates)


@router.put("/v1/scoring-config", response_model=ScoringConfigOut)
def put_scoring_config(
    body: ScoringConfigIn, session: SessionDep, principal: PrincipalDep
) -> ScoringConfigOut:
    """Thresholds (review ≤ suspicious), allow / block lists, and the rules-only fallback."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    return scoring_config.write(session, tenant_id, body, actor=principal.actor)


@router.post("/v1/batch-scoring", status_code=status.HTTP_202_ACCEPTED, response_model=BatchScoringOut)
def start_batch_scoring(
    session: SessionDep,
    store: ObjectStoreDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="CSV or Parquet of transactions (labels optional)")],
    format: Annotated[str | None, Form()] = None,
) -> BatchScoringOut:
    """Score a file as a durable job; fetch the result from `/v1/batch-scoring/{job_id}/result`."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    fmt = detect_format(file.filename, format)
    with tempfile.TemporaryDirectory(prefix="fraudrail-batch-") as tmp:
        path = Path(tmp) / f"in.{fmt}"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, length=1 << 20)
        try:
            frame = read_table(path, fmt)
        except DatasetError as exc:
            raise InvalidInput(exc.message, field="file") from exc
    report = validate_dataset(frame, require_labels=False)
    if not report.ok:
        failing = "; ".join(f"{ch.name}: {ch.detail}" for ch in report.failures)
        raise InvalidInput(f"the file failed validation: {failing}", field="file")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    job = queue.enqueue(
        session,
        kind=BATCH_JOB,
        payload={"tenant_id": tenant_id},
        tenant_id=tenant_id,
        now=utcnow(),
        max_attempts=3,
    )
    key = f"tenants/{tenant_id}/batch/{job.id}.in.parquet"
    store.put(key, buffer.getvalue())
    job.payload = {"tenant_id": tenant_id, "input_key": key, "rows": len(frame)}
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=principal.actor,
        action="batch_scoring.requested",
        subject=job.id,
        after={"rows": len(frame)},
    )
    session.flush()
    return BatchScoringOut(job_id=job.id, status=job.status, progress={}, result=None)


def _batch_job(session: SessionDep, principal: Principal, job_id: str) -> Any:
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN, Scope.SRE})
    job = queue.get_job(session, job_id, tenant_id=tenant_id)
    if job.kind != BATCH_JOB:
        raise NotFound(f"batch-scoring job {job_id} not found", field="job_id")
    return job


@router.get("/v1/batch-scoring/{job_id}", response_model=BatchScoringOut)
def get_batch_scoring(job_id: str, session: SessionDep, principal: PrincipalDep) -> BatchScoringOut:
    job = _batch_job(session, principal, job_id)
    return BatchScoringOut(job_id=job.id, status=job.status, progress=job.progress, result=job.result)


@router.get(
    "/v1/batch-scoring/{job_id}/result",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def get_batch_result(
    job_id: str, session: SessionDep, store: ObjectStoreDep, principal: PrincipalDep
) -> Response:
    job = _batch_job(session, principal, job_id)
    if job.status != queue.SUCCEEDED or not job.result:
        raise NotFound(f"job {job_id} has no result yet (status {job.status})", field="job_id")
    data = store.get(str(job.result["output_key"]))
    return Response(data, media_type="text/csv")


@router.get("/v1/flagged")
def list_flagged(
    flagged: FlaggedStoreDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    """Flagged transactions as stored in the flagged-transaction store (oldest first)."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST})
    return [dict(r.payload) for r in flagged.list(tenant_id, limit=limit)]
