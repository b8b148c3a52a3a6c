"""What the console needs from the users domain, as a narrow protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from control_plane.principals import Principal


class People(Protocol):
    """Users who sign in to the console with e-mail and password."""

    def authenticate(self, email: str, password: str) -> Principal:
        """The user behind the pair; raises a DomainError (401, or 429 while locked) otherwise."""
        ...

    def person(self, user_id: str) -> Principal | None:
        """The principal of an active user, or None (removed, or not active)."""
        ...

    def names(self, ids: Iterable[str]) -> dict[str, str]:
        """Readable names of actor ids (a person's name and e-mail, a key's name); unknown ids left out."""
        ...
