"""Policy decisions as domain errors: a denial is 422 listing every rule, an engine failure 503."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from control_plane.errors import PolicyDenied, ServiceUnavailable
from guardrails.policy import PolicyEngine, PolicyEngineError


def enforce(
    engine: PolicyEngine,
    package: str,
    document: Mapping[str, Any],
    *,
    api_field: Callable[[str | None], str | None] = lambda field: field,
) -> None:
    """Evaluate ``package``; fail closed when the engine cannot answer.

    ``api_field`` maps a policy field (a path in the policy input) to the caller's field name.
    """
    try:
        decision = engine.evaluate(package, document)
    except PolicyEngineError as exc:
        raise ServiceUnavailable(f"policy engine unavailable: {exc}") from exc
    if decision.allowed:
        return
    violations = [
        {"rule": v.rule, "field": api_field(v.field), "message": v.message} for v in decision.violations
    ]
    raise PolicyDenied(
        "; ".join(v.message for v in decision.violations),
        field=violations[0]["field"],
        extra={"violations": violations},
    )
