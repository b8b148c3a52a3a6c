"""What the fraud-check hot path needs from other domains, as narrow protocols.

The composition root hands a ``FraudCheckDeps`` to the route; the scoring domain never imports the
FinOps runtime or the process's state to find its rate limiter, usage counter or key verifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from control_plane.auth.scopes import Principal
from control_plane.scoring.admission import TokenGate
from control_plane.scoring.service import FraudChecker

TenantRateLimiter = TokenGate[Any]  # the limiter's calls the hot path makes (scoring/admission.py)


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
