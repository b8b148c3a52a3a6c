"""A tenant's scoring configuration: thresholds, allow / block lists, the rules-only fallback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from control_plane import events
from control_plane.audit import service as audit
from control_plane.errors import InvalidInput
from control_plane.outbox import emit
from control_plane.scoring.orm import ScoringConfig
from control_plane.scoring.schemas import ScoringConfigIn, ScoringConfigOut
from control_plane.scoring.serving import default_policy
from control_plane.tenants import repository as tenants


def read(session: Session, tenant_id: str, templates: Mapping[str, Mapping[str, Any]]) -> ScoringConfigOut:
    """The stored configuration, or the tier's defaults when the tenant never set one."""
    config = session.get(ScoringConfig, tenant_id)
    if config is None:
        policy = default_policy(templates[tenants.get(session, tenant_id).tier])
        return ScoringConfigOut(
            review_threshold=policy.review,
            suspicious_threshold=policy.suspicious,  # type: ignore[arg-type]
            updated_by=None,
            updated_at=None,
        )
    return ScoringConfigOut.model_validate(config, from_attributes=True)


def write(session: Session, tenant_id: str, body: ScoringConfigIn, *, actor: str) -> ScoringConfigOut:
    """Replace the configuration (audited); every process reloads its serving state after the commit."""
    if body.review_threshold > body.suspicious_threshold:
        raise InvalidInput("review_threshold must not exceed suspicious_threshold", field="review_threshold")
    tenants.get(session, tenant_id)
    config = session.get(ScoringConfig, tenant_id)
    before = (
        ScoringConfigIn.model_validate(config, from_attributes=True).model_dump(mode="json")
        if config
        else None
    )
    if config is None:
        config = ScoringConfig(tenant_id=tenant_id, updated_by=actor, **body.model_dump())
        session.add(config)
    else:
        for key, value in body.model_dump().items():
            setattr(config, key, value)
        config.updated_by = actor
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="scoring_config.updated",
        subject=tenant_id,
        before=before,
        after=body.model_dump(mode="json"),
    )
    emit(session, events.SERVING_CHANGED, {"tenant_id": tenant_id, "reason": "scoring config"})
    session.flush()
    return ScoringConfigOut.model_validate(config, from_attributes=True)
