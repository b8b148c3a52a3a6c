"""Tenant admins invite, list, change roles of and remove users; every change is in the ledger."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.users.conftest import PASSWORD, PersonFn


def test_an_invited_user_accepts_signs_in_and_acts_under_its_role(
    client: TestClient, onboard: OnboardFn
) -> None:
    t = onboard("people-co")
    invited = client.post(
        f"/v1/tenants/{t['id']}/users",
        json={"email": "Ana.Diaz@People.example", "name": "Ana Diaz", "role": "analyst"},
        headers=auth(t["admin"]),
    )
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["email"] == "ana.diaz@people.example" and body["status"] == "invited"
    token = body["invitation_token"]
    # Not yet accepted: no password works.
    early = client.post("/v1/auth/sessions", json={"email": "ana.diaz@people.example", "password": PASSWORD})
    assert early.status_code == 401
    short = client.post("/v1/auth/invitations/accept", json={"token": token, "password": "short"})
    assert short.status_code == 422 and short.json()["field"] == "password"
    ok = client.post("/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD})
    assert ok.status_code == 200 and ok.json()["status"] == "active"
    again = client.post("/v1/auth/invitations/accept", json={"token": token, "password": PASSWORD})
    assert again.status_code == 404 and again.json()["field"] == "token"

    signed = client.post("/v1/auth/sessions", json={"email": "ANA.DIAZ@people.example", "password": PASSWORD})
    assert signed.status_code == 201, signed.text
    session = signed.json()["token"]
    assert session.startswith("frs_")
    me = client.get("/v1/auth/me", headers=auth(session)).json()
    assert me["kind"] == "user" and me["role"] == "analyst" and me["tenant_id"] == t["id"]
    assert me["display_name"] == "Ana Diaz <ana.diaz@people.example>"
    # The same scope checks as a key: an analyst may read the review queue, not manage users or keys.
    assert client.get("/v1/reviews", headers=auth(session)).status_code == 200
    assert client.get(f"/v1/tenants/{t['id']}/users", headers=auth(session)).status_code == 403
    assert client.get(f"/v1/tenants/{t['id']}/keys", headers=auth(session)).status_code == 403

    listed = client.get(f"/v1/tenants/{t['id']}/users", headers=auth(t["admin"])).json()
    assert [u["email"] for u in listed] == ["ana.diaz@people.example"]
    assert "invitation_token" not in listed[0] and "password_hash" not in listed[0]

    out = client.delete("/v1/auth/sessions/current", headers=auth(session))
    assert out.status_code == 204
    assert client.get("/v1/auth/me", headers=auth(session)).status_code == 401


def test_a_duplicate_email_and_a_bad_role_are_refused(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("dupes-co")
    body = {"email": "sam@dupes.example", "name": "Sam", "role": "sre"}
    assert client.post(f"/v1/tenants/{t['id']}/users", json=body, headers=auth(t["admin"])).status_code == 201
    dup = client.post(f"/v1/tenants/{t['id']}/users", json=body, headers=auth(t["admin"]))
    assert dup.status_code == 409 and dup.json()["field"] == "email"
    for bad in (
        {**body, "role": "app"},
        {**body, "role": "platform-admin"},
        {**body, "email": "not-an-email"},
    ):
        resp = client.post(f"/v1/tenants/{t['id']}/users", json=bad, headers=auth(t["admin"]))
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")


def test_role_changes_end_sessions_and_the_last_admin_stays(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    t = onboard("admins-co")
    boss = person(t, "boss@admins.example", role="tenant-admin", name="Bo Boss")
    ana = person(t, "ana@admins.example", role="analyst", name="Ana")
    users = f"/v1/tenants/{t['id']}/users"

    # The only active tenant admin can be neither removed nor demoted.
    last = client.delete(f"{users}/{boss['id']}", headers=auth(boss["token"]))
    assert last.status_code == 409 and last.json()["field"] == "user_id"
    assert last.headers["content-type"].startswith("application/problem+json")
    demote = client.patch(f"{users}/{boss['id']}", json={"role": "sre"}, headers=auth(t["admin"]))
    assert demote.status_code == 409

    # Promote Ana (her session ends: she signs in again with the new role), then Bo may go.
    promoted = client.patch(
        f"{users}/{ana['id']}", json={"role": "tenant-admin"}, headers=auth(boss["token"])
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "tenant-admin"
    assert client.get("/v1/auth/me", headers=auth(ana["token"])).status_code == 401
    ana_again = client.post(
        "/v1/auth/sessions", json={"email": "ana@admins.example", "password": PASSWORD}
    ).json()
    removed = client.delete(f"{users}/{boss['id']}", headers=auth(ana_again["token"]))
    assert removed.status_code == 204
    assert client.get("/v1/auth/me", headers=auth(boss["token"])).status_code == 401
    gone = client.post("/v1/auth/sessions", json={"email": "boss@admins.example", "password": PASSWORD})
    assert gone.status_code == 401
    assert client.delete(f"{users}/{boss['id']}", headers=auth(ana_again["token"])).status_code == 404

    ledger = client.get(f"/v1/tenants/{t['id']}/audit", headers=auth(t["admin"])).json()
    by_action = {e["action"]: e for e in ledger}
    assert by_action["user.removed"]["actor_name"] == "Ana <ana@admins.example>"
    assert by_action["user.removed"]["before"]["email"] == "boss@admins.example"
    assert by_action["user.role_changed"]["actor_name"] == "Bo Boss <boss@admins.example>"
    assert (
        by_action["user.invited"]["actor_name"]
        == 'key "initial admin" (' + by_action["user.invited"]["actor"].removeprefix("key:") + ")"
    )
    assert {"user.invitation_accepted", "user.signed_in"} <= set(by_action)


def test_another_tenant_cannot_see_or_touch_users(
    client: TestClient, onboard: OnboardFn, person: PersonFn
) -> None:
    a, b = onboard("alpha-people"), onboard("beta-people")
    ana = person(a, "ana@alpha.example", role="tenant-admin")
    bob = person(b, "bob@beta.example", role="tenant-admin")
    users = f"/v1/tenants/{a['id']}/users"
    for token in (b["admin"], bob["token"]):
        assert client.get(users, headers=auth(token)).status_code == 404
        assert client.delete(f"{users}/{ana['id']}", headers=auth(token)).status_code == 404
        patched = client.patch(f"{users}/{ana['id']}", json={"role": "sre"}, headers=auth(token))
        assert patched.status_code == 404
    # A's admin cannot reach B's user through A's path either.
    assert client.delete(f"{users}/{bob['id']}", headers=auth(ana["token"])).status_code == 404
