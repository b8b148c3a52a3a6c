"""What the hot path tells production monitoring about each answered check (a narrow protocol,
so the scoring domain never imports the monitoring domain)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from control_plane.scoring.schemas import FraudCheckRequest


class ScoreObserver(Protocol):
    def observe(
        self,
        tenant_id: str,
        version: str | None,
        cohort: str,
        req: FraudCheckRequest,
        vector: Sequence[float],
        score: float,
        decision: str,
    ) -> None:
        """Count the check in memory (no I/O: this runs on the hot path)."""
        ...
