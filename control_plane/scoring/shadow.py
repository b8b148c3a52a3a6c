"""The shadow phase of a rollout: the candidate scores every check beside the stable version."""

from __future__ import annotations

import time

from control_plane.scoring.decision import LEGIT, threshold_decision
from control_plane.scoring.serving import TenantServing
from control_plane.slo.recorder import RequestRecorder
from providers.ports import ArtifactIntegrityError, ModelHost, ProviderError


def score_shadow(
    host: ModelHost,
    recorder: RequestRecorder,
    tenant: TenantServing,
    vector: list[float],
    stable_decision: str,
) -> None:
    """Score the candidate on the same features; record it and whether its decision would differ."""
    shadow = tenant.shadow_version
    assert shadow is not None
    t = time.perf_counter()
    try:
        score = host.invoke(tenant.tenant_id, shadow, [vector])[0]
    except (ProviderError, ArtifactIntegrityError):
        recorder.record(
            tenant.tenant_id, shadow, "shadow", ok=False, latency_ms=(time.perf_counter() - t) * 1000
        )
        return
    decision = threshold_decision(score, tenant.policy)
    recorder.record(
        tenant.tenant_id,
        shadow,
        "shadow",
        ok=True,
        latency_ms=(time.perf_counter() - t) * 1000,
        score=score,
        flagged=decision != LEGIT,
    )
    recorder.record_pair(tenant.tenant_id, shadow, flipped=decision != stable_decision)
