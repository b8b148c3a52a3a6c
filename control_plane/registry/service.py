"""Model registry: versions with lineage and stage. Production is reached through ``registry.deployment``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane import events
from control_plane.audit import service as audit
from control_plane.errors import Conflict, NotFound, PolicyDenied
from control_plane.orm_base import utcnow
from control_plane.outbox import emit
from control_plane.policy_gate import enforce
from control_plane.registry.orm import ModelVersion
from control_plane.registry.stages import Stage, check_stage
from control_plane.tenants.orm import Tenant
from fraud_model.training import sha256
from guardrails.policy import PolicyEngine
from providers.ports import ObjectStore

SERVING_TOPIC = events.SERVING_CHANGED
STAGE_TOPIC = events.MODEL_STAGE_CHANGED


def get(session: Session, tenant_id: str, version_id: str, *, for_update: bool = False) -> ModelVersion:
    stmt = select(ModelVersion).where(ModelVersion.tenant_id == tenant_id, ModelVersion.id == version_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"model version {version_id} not found", field="model_id")
    return found


def list_for(
    session: Session, tenant_id: str, *, stage: str | None = None, limit: int = 100
) -> list[ModelVersion]:
    stmt = select(ModelVersion).where(ModelVersion.tenant_id == tenant_id)
    if stage is not None:
        stmt = stmt.where(ModelVersion.stage == stage)
    return list(session.scalars(stmt.order_by(ModelVersion.created_at.desc(), ModelVersion.id).limit(limit)))


def production(session: Session, tenant_id: str) -> ModelVersion | None:
    stmt = select(ModelVersion).where(
        ModelVersion.tenant_id == tenant_id, ModelVersion.stage == Stage.PRODUCTION
    )
    return session.scalar(stmt)


def set_stage(
    session: Session,
    mv: ModelVersion,
    target: Stage,
    *,
    actor: str,
    reason: str | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> None:
    current = Stage(mv.stage)
    check_stage(current, target)
    mv.stage = target.value
    mv.stage_changed_at = utcnow()
    audit.record(
        session,
        tenant_id=mv.tenant_id,
        actor=actor,
        action=f"model.{target.value.lower()}",
        subject=mv.id,
        reason=reason,
        before={"stage": current.value},
        after={"stage": target.value},
        evidence=evidence,
    )
    # In the same transaction: whoever mirrors stages (the MLflow aliases) hears of it after commit.
    change: events.ModelStageChanged = {
        "tenant_id": mv.tenant_id,
        "model_version": mv.id,
        "stage": target.value,
        "previous_stage": current.value,
    }
    emit(session, STAGE_TOPIC, change)


LIVE_STAGES = (Stage.CANDIDATE.value, Stage.APPROVED.value, Stage.PRODUCTION.value)


def live_count(session: Session, tenant_id: str) -> int:
    """Versions the platform keeps ready to serve for a tenant (the tier's ``models_hosted`` quota)."""
    stmt = select(func.count()).where(
        ModelVersion.tenant_id == tenant_id, ModelVersion.stage.in_(LIVE_STAGES)
    )
    return int(session.scalar(stmt) or 0)


def archive(
    session: Session, tenant_id: str, version_id: str, *, actor: str, note: str | None
) -> ModelVersion:
    """CANDIDATE / APPROVED → ARCHIVED (frees a ``models_hosted`` slot). PRODUCTION is archived only
    by promoting its replacement, so a tenant is never left without a model."""
    mv = get(session, tenant_id, version_id, for_update=True)
    if mv.stage == Stage.PRODUCTION.value:
        raise Conflict(
            f"{version_id} serves production traffic; promote or roll out its replacement instead",
            field="model_id",
        )
    set_stage(session, mv, Stage.ARCHIVED, actor=actor, reason=note or "archived")
    return mv


def approve(
    session: Session, tenant_id: str, version_id: str, *, actor: str, note: str | None
) -> ModelVersion:
    mv = get(session, tenant_id, version_id, for_update=True)
    set_stage(session, mv, Stage.APPROVED, actor=actor, reason=note, evidence={"gate": mv.gate})
    mv.approved_by = actor
    mv.approved_at = utcnow()
    return mv


def verify_artifact(store: ObjectStore, mv: ModelVersion) -> bool:
    try:
        return sha256(store.get(mv.artifact_key)) == mv.sha256
    except KeyError:
        return False


def deployment_input(
    tenant: Tenant,
    mv: ModelVersion,
    *,
    integrity: bool,
    strategy: str,
    emergency: bool,
    budget_status: str = "ok",
    error_budget_frozen: bool = False,
    estimated_monthly: str = "0",
    budget_headroom: str | None = None,
) -> dict[str, Any]:
    """The document ``policies/rego/deployment.rego`` sees."""
    return {
        "tenant": {
            "status": tenant.status,
            "budget_status": budget_status,
            "error_budget_frozen": error_budget_frozen,
        },
        "candidate": {
            "stage": mv.stage,
            "gate_passed": bool(mv.gate.get("passed")),
            "integrity_verified": integrity,
        },
        "rollout": {"strategy": strategy, "emergency": emergency},
        "cost": {
            "estimated_monthly": estimated_monthly,
            "budget_headroom": budget_headroom if budget_headroom is not None else str(tenant.budget_amount),
        },
    }


class DeploymentRefused(PolicyDenied):
    """The deployment policy said no: the request was well formed, the tenant's or the version's
    state forbids it, hence 409 (``reason`` names the first rule, ``violations`` all of them)."""

    status = 409
    title = "Deployment refused"


def check_deployment(engine: PolicyEngine, document: Mapping[str, Any]) -> None:
    """Raise :class:`DeploymentRefused` with every violated rule when the deployment policy denies.

    Only ``registry.deployment.decide`` should call this: it gathers the inputs itself."""
    try:
        enforce(engine, "fraudrail.deployment", document)
    except DeploymentRefused:
        raise
    except PolicyDenied as denied:
        violations = denied.extra.get("violations", [])
        reason = violations[0]["rule"] if violations else "denied"
        raise DeploymentRefused(
            denied.detail, field=denied.field, extra={"reason": reason, "violations": violations}
        ) from denied
