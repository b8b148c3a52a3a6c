"""Model-version stages as an explicit state machine."""

from __future__ import annotations

from enum import StrEnum

from control_plane.errors import Conflict


class Stage(StrEnum):
    CANDIDATE = "CANDIDATE"
    REJECTED = "REJECTED"
    APPROVED = "APPROVED"
    PRODUCTION = "PRODUCTION"
    ARCHIVED = "ARCHIVED"


STAGE_EDGES: dict[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.APPROVED, Stage.ARCHIVED}),
    Stage.REJECTED: frozenset(),
    Stage.APPROVED: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    # An archived version can come back (restore), so there is always a way back to a good model.
    Stage.ARCHIVED: frozenset({Stage.APPROVED}),
}


def check_stage(current: Stage, target: Stage) -> None:
    if target not in STAGE_EDGES[current]:
        allowed = ", ".join(sorted(STAGE_EDGES[current])) or "none (final)"
        raise Conflict(f"a {current} model cannot become {target} (allowed: {allowed})", field="stage")
