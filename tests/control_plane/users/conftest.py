"""Users fixtures: invite a person and accept the invitation, through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.control_plane.conftest import auth

PASSWORD = "correct horse battery staple"  # a test password

PersonFn = Callable[..., dict[str, Any]]


@pytest.fixture
def person(client: TestClient) -> PersonFn:
    """Factory: invite a user with the tenant's admin key, accept, sign in; the user and its session token."""

    def _person(
        tenant: dict[str, Any], email: str, role: str = "analyst", name: str | None = None
    ) -> dict[str, Any]:
        invited = client.post(
            f"/v1/tenants/{tenant['id']}/users",
            json={"email": email, "name": name or email.split("@")[0].title(), "role": role},
            headers=auth(tenant["admin"]),
        )
        assert invited.status_code == 201, invited.text
        user = invited.json()
        accepted = client.post(
            "/v1/auth/invitations/accept", json={"token": user["invitation_token"], "password": PASSWORD}
        )
        assert accepted.status_code == 200, accepted.text
        signed = client.post("/v1/auth/sessions", json={"email": email, "password": PASSWORD})
        assert signed.status_code == 201, signed.text
        return {**accepted.json(), "token": signed.json()["token"]}

    return _person
