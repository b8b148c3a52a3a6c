"""Retraining routes: start one by hand, read them, and the tenant's automatic-canary opt-in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from control_plane.auth.scopes import Scope
from control_plane.deps import PrincipalDep, SessionDep
from control_plane.orm_base import utcnow
from control_plane.tenancy import tenant_of
from control_plane.training import retraining
from control_plane.training.orm import Retraining, RetrainingSettings

router = APIRouter(tags=["retraining"])
READERS = {Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST}


class RetrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="The champion (default: the PRODUCTION version)",
    )
    cutoff: AwareDatetime | None = Field(
        default=None,
        description="Traffic and labels up to this time (default: the latest scored transaction)",
    )
    reason: str = Field(default="requested", min_length=1, max_length=500)


class RetrainingOut(BaseModel):
    id: str
    trigger: str
    status: str = Field(
        description="waiting_for_labels | queued | training | canary | awaiting_approval | champion_kept | "
        "rejected | failed | skipped (nothing new to learn yet) | cancelled"
    )
    start_after: datetime | None = Field(
        default=None,
        description="waiting_for_labels: the traffic time (latest stored transaction) from which the "
        "monitoring check starts it: the new pattern then has mature labels to learn from",
    )
    champion_version: str | None
    challenger_version: str | None
    cutoff: datetime
    trigger_evidence: dict[str, Any]
    comparison: dict[str, Any] | None = Field(
        description="Champion vs challenger on the window neither trained on: AP, precision / recall, "
        "workload per day, flip matrix"
    )
    decision: dict[str, Any] | None = Field(description="The monitoring policy's answer, rule by rule")
    rollout_id: str | None
    error: str | None
    requested_by: str
    created_at: datetime
    finished_at: datetime | None


class RetrainingSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auto_rollout: bool = Field(description="Let a challenger that wins the gate start a canary by itself")


class RetrainingSettingsOut(BaseModel):
    auto_rollout: bool
    updated_by: str
    updated_at: datetime


def out(row: Retraining) -> RetrainingOut:
    shown = RetrainingOut.model_validate(row, from_attributes=True)
    return shown.model_copy(update={"start_after": retraining.start_after(row)})


def settings_out(row: RetrainingSettings) -> RetrainingSettingsOut:
    return RetrainingSettingsOut.model_validate(row, from_attributes=True)


@router.post(
    "/v1/retraining",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RetrainingOut,
    responses={409: {"description": "No PRODUCTION model, a retraining still running, tenant not ACTIVE"}},
)
def start_retraining(body: RetrainingRequest, session: SessionDep, principal: PrincipalDep) -> RetrainingOut:
    """Retrain the champion on the stored traffic and every label source up to the cut-off, then
    compare the challenger with it (a durable job; read its progress here)."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    row = retraining.start(
        session, tenant_id, trigger="manual", actor=principal.actor, now=utcnow(), cutoff=body.cutoff,
        model_version=body.model_version, evidence={"reason": body.reason},
    )  # fmt: skip
    session.flush()
    return out(row)


@router.get("/v1/retraining", response_model=list[RetrainingOut])
def list_retrainings(
    session: SessionDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[RetrainingOut]:
    return [out(r) for r in retraining.list_for(session, tenant_of(principal, READERS), limit)]


@router.get("/v1/retraining/{retraining_id}", response_model=RetrainingOut)
def get_retraining(retraining_id: str, session: SessionDep, principal: PrincipalDep) -> RetrainingOut:
    return out(retraining.get(session, tenant_of(principal, READERS), retraining_id))


@router.get("/v1/retraining-settings", response_model=RetrainingSettingsOut)
def get_settings(session: SessionDep, principal: PrincipalDep) -> RetrainingSettingsOut:
    return settings_out(retraining.settings_of(session, tenant_of(principal, READERS)))


@router.put("/v1/retraining-settings", response_model=RetrainingSettingsOut)
def put_settings(
    body: RetrainingSettingsIn, session: SessionDep, principal: PrincipalDep
) -> RetrainingSettingsOut:
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    row = retraining.set_settings(
        session, tenant_id, auto_rollout=body.auto_rollout, actor=principal.actor, now=utcnow()
    )
    session.flush()
    return settings_out(row)
