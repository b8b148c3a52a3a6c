"""What the fraud-check hot path needs from the rate limiter, as narrow protocols.

With the buckets and the feature cache both on Redis, the token is taken inside the script that
claims the check's idempotency key and reads its states (one round trip before the answer instead
of two): ``scripted_take`` names the take, the cache runs it in front of the claim, ``settle``
turns its reply into the decision (raising the 429; a refused take claimed nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from providers.ports import Admission


class RateDecisionHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


class PendingTake(Protocol):
    @property
    def admission(self) -> Admission: ...


Take = TypeVar("Take", bound=PendingTake)


class TokenGate(Protocol[Take]):
    @property
    def scripted(self) -> bool:
        """The buckets live where the feature cache can run ``scripted_take`` (Redis)."""
        ...

    def check(self, tenant_id: str) -> RateDecisionHeaders | None:
        """Allow (the decision's RateLimit-* headers, or None) or raise a 429 problem."""
        ...

    def scripted_take(self, tenant_id: str) -> Take | None:
        """The take to run in the claim's script (None: nothing to limit); a 429 inside a refusal
        window, with no bucket call."""
        ...

    def settle(self, tenant_id: str, take: Take, reply: Sequence[Any]) -> RateDecisionHeaders:
        """The decision from the script's reply; raises the 429 when it refused."""
        ...

    def unavailable(self, tenant_id: str, exc: Exception) -> None:
        """The buckets could not be reached: the check goes on unlimited (logged and counted)."""
        ...


class Checked(NamedTuple):
    """An answered check and the rate decision whose headers go with it (None: no limit applied)."""

    answer: dict[str, Any]
    limit: RateDecisionHeaders | None
