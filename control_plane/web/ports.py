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


class SingleSignOn(Protocol):
    """A tenant's OpenID Connect sign-in (the users domain's ``OidcSignIn``)."""

    def begin(self, tenant: str, redirect_uri: str) -> tuple[str, str]:
        """The provider URL to send the browser to, and the flow's state; a DomainError otherwise."""
        ...

    def authenticate(
        self, state: str, code: str | None, error: str | None, *, callback_path: str
    ) -> Principal:
        """The person the provider's answer names, every check done; a DomainError otherwise."""
        ...
