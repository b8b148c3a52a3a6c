"""HTTP calls to OpenID Connect providers (discovery, JWKS, token endpoint) with httpx.

Redirects are not followed (a provider's endpoints are exact URLs) and every call has a timeout;
bodies are capped so a hostile or broken provider cannot make the process read without end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from providers.ports import ProviderError

MAX_BODY_BYTES = 1_000_000


class ProviderHttpError(ProviderError):
    """A provider could not be reached, answered an error, or answered something that is not JSON."""


class HttpxOidcClient:
    def __init__(self, timeout_s: float) -> None:
        self._timeout = httpx.Timeout(timeout_s)

    def _json(self, response: httpx.Response) -> Any:
        if len(response.content) > MAX_BODY_BYTES:
            raise ProviderHttpError(f"{response.url} answered more than {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise ProviderHttpError(f"{response.url} did not answer JSON") from exc

    def get_json(self, url: str) -> Any:
        try:
            response = httpx.get(url, timeout=self._timeout, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise ProviderHttpError(f"cannot reach {url}: {exc}") from exc
        if response.status_code != 200:
            raise ProviderHttpError(f"{url} answered {response.status_code}")
        return self._json(response)

    def post_form(
        self, url: str, form: Mapping[str, str], basic_auth: tuple[str, str] | None
    ) -> tuple[int, Any]:
        try:
            response = httpx.post(
                url,
                data=dict(form),
                auth=basic_auth,
                timeout=self._timeout,
                headers={"accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ProviderHttpError(f"cannot reach {url}: {exc}") from exc
        if response.status_code >= 500:
            raise ProviderHttpError(f"{url} answered {response.status_code}")
        return response.status_code, self._json(response)
