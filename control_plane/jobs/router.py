"""Job status: phase, percent, attempts, last error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from control_plane.auth.scopes import Scope
from control_plane.auth.service import authorize
from control_plane.deps import PrincipalDep, SessionDep
from control_plane.errors import NotFound
from control_plane.jobs import queue

router = APIRouter(tags=["jobs"])


class JobOut(BaseModel):
    id: str
    kind: str
    tenant_id: str | None
    status: str
    attempts: int
    max_attempts: int
    progress: dict[str, Any]
    result: dict[str, Any] | None
    last_error: str | None
    failure_reason: str | None = Field(
        default=None, description="Why the job failed for good (null unless status is failed)"
    )
    created_at: datetime
    finished_at: datetime | None

    @model_validator(mode="after")
    def _failure(self) -> JobOut:
        if self.status == "failed" and self.failure_reason is None:
            self.failure_reason = self.last_error
        return self


@router.get("/v1/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobOut:
    job = queue.get_job(
        session, job_id, tenant_id=None if principal.is_platform_admin else principal.tenant_id
    )
    if job.tenant_id is not None:
        authorize(principal, job.tenant_id, {Scope.TENANT_ADMIN, Scope.SRE})
    elif not principal.is_platform_admin:
        raise NotFound(f"job {job_id} not found", field="job_id")
    return JobOut.model_validate(job, from_attributes=True)
