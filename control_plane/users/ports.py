"""What the users domain needs from outside: HTTP calls to an OpenID Connect provider, and a
tenant found by its slug or id (for the public sign-in start URL)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy.orm import Session


class OidcHttp(Protocol):
    def get_json(self, url: str) -> Any:
        """GET ``url`` and parse its JSON body; ``providers.ports.ProviderError`` on any failure
        or non-2xx answer."""
        ...

    def post_form(
        self, url: str, form: Mapping[str, str], basic_auth: tuple[str, str] | None
    ) -> tuple[int, Any]:
        """POST a form; the status and the parsed JSON body (4xx answers are returned;
        ``ProviderError`` when unreachable, on 5xx, or when the body is not JSON)."""
        ...


class TenantFinder(Protocol):
    def __call__(self, session: Session, slug_or_id: str) -> tuple[str, str] | None:
        """The id and lifecycle status of the tenant with this slug or id, or None."""
        ...
