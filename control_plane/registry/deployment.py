"""The one deployment decision: every way a version reaches production asks it, with the same inputs.

A direct promote, a rollout's start, a restore and a rollback to the previous production version
all call :func:`decide`. It gathers every input itself — the artifact's integrity, the SLO error
budget's freeze, the FinOps budget (403 while frozen) and its headroom — and asks the deployment
policy. Callers choose only what the deploy *is* (strategy, emergency); they cannot hand in a
freeze state, which is how a direct promote used to skip the error-budget freeze.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit.orm import AuditEvent
from control_plane.errors import Conflict
from control_plane.finops import guard
from control_plane.orm_base import utcnow
from control_plane.outbox import emit
from control_plane.registry import service as registry
from control_plane.registry.orm import ModelVersion
from control_plane.registry.service import (  # noqa: F401  (DeploymentRefused: re-exported)
    DeploymentRefused,
    check_deployment,
    deployment_input,
    verify_artifact,
)
from control_plane.registry.stages import Stage
from control_plane.slo import service as slo
from control_plane.tenants.orm import Tenant
from guardrails.policy import PolicyEngine
from providers.ports import ObjectStore

POLICY = "fraudrail.deployment"
# Strategies that add a canary's capacity next to the stable version: the FinOps module prices it.
ROLLOUT_STRATEGIES = frozenset({"canary", "linear", "shadow"})
PRODUCTION_ACTION = f"model.{Stage.PRODUCTION.value.lower()}"  # what set_stage audits


BudgetContext = Callable[[Session, Tenant], dict[str, Any]]


@dataclass(frozen=True)
class DeploymentServices:
    """Every input of the decision the process provides (built once by the composition root)."""

    policy: PolicyEngine
    object_store: ObjectStore
    templates: Mapping[str, Mapping[str, Any]]
    # The FinOps module's rollout context (budget status, headroom, the canary's monthly cost).
    budget_context: BudgetContext | None = None
    clock: Callable[[], datetime] = utcnow

    def template(self, tier: str) -> Mapping[str, Any]:
        return self.templates[tier]

    def now(self) -> datetime:
        return self.clock()


def decide(
    session: Session,
    services: DeploymentServices,
    tenant: Tenant,
    candidate: ModelVersion,
    *,
    strategy: str,
    emergency: bool,
    action: str,
    now: datetime,
) -> dict[str, Any]:
    """Check the deployment policy for ``candidate``; return the policy input (kept as evidence).

    409 naming every violated rule (``reason`` is the first) when the policy denies; 403 while the
    FinOps budget is frozen; 503 when the policy engine cannot answer.
    """
    objective, _ = slo.slo_for(services.template(tenant.tier))
    error_budget = slo.error_budget(session, tenant.id, objective, now=now)
    document = deployment_input(
        tenant,
        candidate,
        integrity=verify_artifact(services.object_store, candidate),
        strategy=strategy,
        emergency=emergency,
        error_budget_frozen=error_budget.frozen,
        **_budget_context(session, services, tenant, strategy=strategy, action=action, now=now),
    )
    check_deployment(services.policy, document)
    return document


def _budget_context(
    session: Session,
    services: DeploymentServices,
    tenant: Tenant,
    *,
    strategy: str,
    action: str,
    now: datetime,
) -> dict[str, Any]:
    hook = services.budget_context
    if strategy in ROLLOUT_STRATEGIES and callable(hook):
        return hook(session, tenant)  # the FinOps module adds the canary's monthly cost
    # A direct swap hosts no extra capacity: its estimate is zero, the freeze and headroom still apply.
    return guard.deployment_context(session, tenant, now=now, action=action)


def promote(
    session: Session,
    services: DeploymentServices,
    tenant: Tenant,
    version_id: str,
    *,
    actor: str,
    now: datetime,
    strategy: str = "direct",
    emergency: bool = False,
    reason: str = "promoted",
) -> ModelVersion:
    """APPROVED → PRODUCTION at full traffic behind :func:`decide`; the previous PRODUCTION is archived."""
    mv = registry.get(session, tenant.id, version_id, for_update=True)
    document = decide(
        session,
        services,
        tenant,
        mv,
        strategy=strategy,
        emergency=emergency,
        action="promote a model",
        now=now,
    )
    previous = registry.production(session, tenant.id)
    if previous is not None and previous.id != mv.id:
        registry.set_stage(session, previous, Stage.ARCHIVED, actor=actor, reason=f"replaced by {mv.id}")
    registry.set_stage(
        session,
        mv,
        Stage.PRODUCTION,
        actor=actor,
        reason=reason,
        evidence={"policy": POLICY, "input": document},
    )
    # Delivered after the request's commit: every process reloads the tenant's serving state.
    emit(session, registry.SERVING_TOPIC, {"tenant_id": tenant.id, "reason": reason})
    return mv


def restore(
    session: Session,
    services: DeploymentServices,
    tenant: Tenant,
    version_id: str,
    *,
    actor: str,
    now: datetime,
    note: str | None = None,
) -> ModelVersion:
    """ARCHIVED → APPROVED, so the version can be promoted or rolled out again.

    The version must still pass the deployment policy as an APPROVED version (gate passed, artifact
    digest verified, tenant active, budget not frozen) and fit the tier's ``models_hosted`` quota.
    It is an emergency as far as the error budget goes: restoring the last good version is usually
    how a frozen tenant gets back to health.
    """
    mv = registry.get(session, tenant.id, version_id, for_update=True)
    if mv.stage != Stage.ARCHIVED.value:
        raise Conflict(
            f"only an ARCHIVED version can be restored; {version_id} is {mv.stage}", field="model_id"
        )
    limit = int(services.template(tenant.tier)["quotas"]["models_hosted"])
    live = registry.live_count(session, tenant.id)
    if live >= limit:
        raise Conflict(
            f"the tier keeps at most {limit} live model version(s); {live} are live. Archive one first",
            field="models_hosted",
            extra={"live_models": live, "models_hosted": limit},
        )
    registry.set_stage(session, mv, Stage.APPROVED, actor=actor, reason=note or "restored")
    # Decided on the version as it now stands (APPROVED); a refusal rolls the request back whole.
    decide(
        session, services, tenant, mv, strategy="restore", emergency=True, action="restore a model", now=now
    )
    return mv


def previous_production(session: Session, tenant_id: str) -> ModelVersion | None:
    """The version that served production before the current one (the audit ledger is the history)."""
    current = registry.production(session, tenant_id)
    stmt = (
        select(AuditEvent.subject)
        .where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == PRODUCTION_ACTION)
        .order_by(AuditEvent.seq.desc())
        .limit(200)
    )
    for subject in session.scalars(stmt):
        if current is not None and subject == current.id:
            continue
        mv = session.scalar(
            select(ModelVersion).where(ModelVersion.tenant_id == tenant_id, ModelVersion.id == subject)
        )
        if mv is not None and mv.stage in (Stage.ARCHIVED.value, Stage.APPROVED.value):
            return mv
    return None


def rollback_production(
    session: Session,
    services: DeploymentServices,
    tenant: Tenant,
    *,
    actor: str,
    now: datetime,
    note: str | None,
) -> tuple[ModelVersion, ModelVersion | None]:
    """One call back to the previous production version: restore it if archived, then promote it.

    Marked an emergency for the policy (an exhausted error budget does not block the way back);
    the other inputs (integrity, gate, tenant state, FinOps budget) apply as to any promote.
    Returns ``(now serving, replaced)``.
    """
    target = previous_production(session, tenant.id)
    if target is None:
        raise Conflict("there is no previous production version to go back to", field="model_id")
    replaced = registry.production(session, tenant.id)
    reason = note or f"rolled back to the previous production version {target.id}"
    if target.stage == Stage.ARCHIVED.value:
        # No quota check: the current version is archived in the same transaction.
        registry.set_stage(session, target, Stage.APPROVED, actor=actor, reason=reason)
    promote(
        session,
        services,
        tenant,
        target.id,
        actor=actor,
        now=now,
        strategy="rollback",
        emergency=True,
        reason=reason,
    )
    return target, replaced
