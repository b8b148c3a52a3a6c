"""What the fraud-check hot path needs from other domains, as narrow protocols.

The composition root hands a ``FraudCheckDeps`` to the route; the scoring domain never imports the
FinOps runtime or the process's state to find its rate limiter, usage counter or key verifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from control_plane.auth.scopes import Principal
from control_plane.scoring.service import FraudChecker


class RateDecisionHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


class TenantRateLimiter(Protocol):
    def check(self, tenant_id: str) -> RateDecisionHeaders | None:
        """Allow (the decision's RateLimit-* headers, or None) or raise a 429 problem."""
        ...


class CheckCounter(Protocol):
    def fraud_check(self, tenant_id: str) -> None:
        """Count one answered check in memory (FinOps writes the counts in batches)."""
        ...


class KeyVerification(Protocol):
    def verify(self, token: str) -> Principal: ...


@dataclass(frozen=True)
class FraudCheckDeps:
    verifier: KeyVerification
    limiter: TenantRateLimiter
    checker: FraudChecker
    usage: CheckCounter
