"""API keys: shown once, stored hashed, scoped, rotated and revoked."""

from __future__ import annotations

import math
from collections import Counter

from fastapi.testclient import TestClient
from sqlalchemy import select

from control_plane.auth.orm import ApiKey
from control_plane.bootstrap.state import State
from tests.control_plane.conftest import OnboardFn, auth


def entropy_bits(secret: str) -> float:
    counts = Counter(secret)
    per_char = -sum(c / len(secret) * math.log2(c / len(secret)) for c in counts.values())
    return per_char * len(secret)


def test_create_list_shows_prefix_only_and_stores_hash(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("acme-pay")
    resp = client.post(
        f"/v1/tenants/{t['id']}/keys", json={"scope": "app", "name": "checkout"}, headers=auth(t["admin"])
    )
    assert resp.status_code == 201
    issued = resp.json()
    token = issued["key"]
    assert token.startswith(issued["prefix"] + ".")
    assert entropy_bits(token.split(".", 1)[1]) > 128

    listed = client.get(f"/v1/tenants/{t['id']}/keys", headers=auth(t["admin"])).json()
    assert {k["scope"] for k in listed} == {"tenant-admin", "app"}
    assert all("key" not in k for k in listed)
    assert token not in str(listed)

    with container.factory() as s:
        stored = s.scalars(select(ApiKey.secret_hash)).all()
    assert all(len(h) == 64 and h not in token for h in stored)


def test_rotate_replaces_and_revoke_refuses(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("acme-pay", scopes=("sre",))
    keys = client.get(f"/v1/tenants/{t['id']}/keys", headers=auth(t["admin"])).json()
    sre_id = next(k["id"] for k in keys if k["scope"] == "sre")
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(t["sre"])).status_code == 200

    rotated = client.post(f"/v1/tenants/{t['id']}/keys/{sre_id}/rotate", headers=auth(t["admin"]))
    assert rotated.status_code == 201 and rotated.json()["scope"] == "sre"
    new_token = rotated.json()["key"]
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(t["sre"])).status_code == 401
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(new_token)).status_code == 200

    new_id = rotated.json()["id"]
    revoked = client.delete(f"/v1/tenants/{t['id']}/keys/{new_id}", headers=auth(t["admin"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(new_token)).status_code == 401
    again = client.delete(f"/v1/tenants/{t['id']}/keys/{new_id}", headers=auth(t["admin"]))
    assert again.status_code == 409


def test_tampered_or_malformed_tokens_are_401(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("acme-pay")
    token: str = t["admin"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "frk_short.x", "Bearer", token.split(".")[0], "x" * 500):
        assert client.get(f"/v1/tenants/{t['id']}", headers=auth(bad)).status_code == 401


def test_key_scope_must_be_known(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("acme-pay")
    resp = client.post(
        f"/v1/tenants/{t['id']}/keys", json={"scope": "platform-admin", "name": "x"}, headers=auth(t["admin"])
    )
    assert resp.status_code == 422 and resp.json()["field"] == "scope"
