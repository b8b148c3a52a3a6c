"""The rollout lifecycle as an explicit state machine."""

from __future__ import annotations

from enum import StrEnum

from control_plane.errors import Conflict


class RolloutState(StrEnum):
    PROGRESSING = "PROGRESSING"
    PAUSED = "PAUSED"
    # Argo's abort: recorded with its evidence by an alarm, a failed analysis or an operator; the
    # reconcile step then moves all traffic to stable, records the rollback and reaches ROLLED_BACK.
    ROLLING_BACK = "ROLLING_BACK"
    PROMOTED = "PROMOTED"
    ABORTED = "ABORTED"
    ROLLED_BACK = "ROLLED_BACK"


R = RolloutState
TERMINAL = frozenset({R.PROMOTED, R.ABORTED, R.ROLLED_BACK})
EDGES: dict[RolloutState, frozenset[RolloutState]] = {
    R.PROGRESSING: frozenset({R.PAUSED, R.PROMOTED, R.ABORTED, R.ROLLING_BACK}),
    R.PAUSED: frozenset({R.PROGRESSING, R.PROMOTED, R.ABORTED, R.ROLLING_BACK}),
    R.ROLLING_BACK: frozenset({R.ROLLED_BACK}),
    R.PROMOTED: frozenset(),
    R.ABORTED: frozenset(),
    R.ROLLED_BACK: frozenset(),
}


def check_edge(current: RolloutState, target: RolloutState) -> None:
    if target not in EDGES[current]:
        raise Conflict(
            f"a {current} rollout cannot become {target}",
            field="state",
            extra={"current": current.value, "requested": target.value},
        )
