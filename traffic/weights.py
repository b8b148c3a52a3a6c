"""``set_weights``: write a tenant's traffic weights, read them back, fail loudly when they differ."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from providers.ports import MetricsSink, ModelHost, ProviderError

log = logging.getLogger(__name__)

FULL_WEIGHT = 10_000
CANARY_WEIGHT_METRIC = "fraudrail_canary_weight"


class WeightChangeFailed(ProviderError):
    """The model host refused the weights, or serves other weights than were set.

    A ``ProviderError``: a job retries it, the rollback Lambda raises it so Lambda retries and,
    in the end, the dead-letter queue keeps the event.
    """

    def __init__(
        self, tenant_id: str, wanted: Mapping[str, int], observed: Mapping[str, int] | None, error: str
    ) -> None:
        super().__init__(f"weights of tenant {tenant_id} not applied: {error}")
        self.tenant_id = tenant_id
        self.wanted = dict(wanted)
        self.observed = None if observed is None else dict(observed)
        self.error = error


def served(weights: Mapping[str, int]) -> dict[str, int]:
    """The versions that get traffic (a version at 0 bp and an absent one serve the same)."""
    return {version: int(bp) for version, bp in weights.items() if bp}


def set_weights(
    host: ModelHost,
    tenant_id: str,
    weights: Mapping[str, int],
    *,
    canary: str | None = None,
    metrics: MetricsSink | None = None,
) -> dict[str, int]:
    """Make the host serve ``weights`` (basis points summing to 10,000); returns the weights read back.

    Writes only when the backend serves something else (repeating it is free), then reads the
    weights back from the backend itself and raises ``WeightChangeFailed`` unless they match.
    ``canary``: the version whose share ``fraudrail_canary_weight{tenant}`` reports (0 without).
    """
    wanted = {str(version): int(bp) for version, bp in weights.items()}
    if sum(wanted.values()) != FULL_WEIGHT or any(bp < 0 for bp in wanted.values()):
        raise WeightChangeFailed(tenant_id, wanted, None, f"weights must sum to {FULL_WEIGHT} bp")
    try:
        observed = host.verify_weights(tenant_id)
        if served(observed) != served(wanted):
            host.set_weights(tenant_id, wanted)
            observed = host.verify_weights(tenant_id)
    except (ProviderError, ValueError) as exc:
        raise WeightChangeFailed(tenant_id, wanted, None, f"{type(exc).__name__}: {exc}") from exc
    if served(observed) != served(wanted):
        raise WeightChangeFailed(
            tenant_id, wanted, observed, f"the host serves {served(observed)}, not {served(wanted)}"
        )
    log.info("weights of tenant %s: %s (read back)", tenant_id, observed)
    if metrics is not None:
        share = observed.get(canary, 0) / FULL_WEIGHT if canary else 0.0
        metrics.gauge(CANARY_WEIGHT_METRIC, share, tenant=tenant_id)
    return dict(observed)
