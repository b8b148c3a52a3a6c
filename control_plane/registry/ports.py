"""What the registry needs from the rollouts domain, as a narrow protocol."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session


class ActiveRollout(Protocol):
    def __call__(self, session: Session, tenant_id: str) -> tuple[str, str] | None:
        """``(rollout id, candidate version)`` of the tenant's active rollout, or None."""
        ...
