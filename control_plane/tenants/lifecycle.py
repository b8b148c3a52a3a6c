"""The tenant lifecycle as an explicit state machine."""

from __future__ import annotations

from enum import StrEnum

from control_plane.errors import Conflict


class TenantStatus(StrEnum):
    REQUESTED = "REQUESTED"
    PROVISIONING = "PROVISIONING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    SUSPENDED = "SUSPENDED"
    OFFBOARDING = "OFFBOARDING"
    DELETED = "DELETED"


class SuspensionReason(StrEnum):
    ADMIN = "admin"
    BUDGET = "budget"


S = TenantStatus
TRANSITIONS: dict[TenantStatus, frozenset[TenantStatus]] = {
    S.REQUESTED: frozenset({S.PROVISIONING, S.FAILED, S.OFFBOARDING}),
    S.PROVISIONING: frozenset({S.ACTIVE, S.FAILED}),
    S.FAILED: frozenset({S.PROVISIONING, S.OFFBOARDING}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.OFFBOARDING}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.OFFBOARDING}),
    S.OFFBOARDING: frozenset({S.DELETED}),
    S.DELETED: frozenset(),
}


def check_transition(current: TenantStatus, target: TenantStatus) -> None:
    """Raise 409 naming both states when ``current → target`` is not a lifecycle edge."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise Conflict(
            f"tenant cannot go from {current} to {target} (allowed from {current}: {allowed})",
            field="status",
            extra={"current": current.value, "requested": target.value},
        )
