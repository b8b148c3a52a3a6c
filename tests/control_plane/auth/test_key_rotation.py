"""Key rotation with an overlap period: the old secret works until it ends, then never again."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from control_plane.auth.orm import ApiKey
from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.orm_base import utcnow
from tests.control_plane.auth.test_database_outage import FakeClock
from tests.control_plane.conftest import OnboardFn, auth


def _key_id(token: str) -> str:
    return "key_" + token.removeprefix("frk_").split(".", 1)[0]


def test_rotation_overlap_keeps_the_old_secret_working_until_it_ends(
    client: TestClient, onboard: OnboardFn, container: State
) -> None:
    t = onboard("rotating", scopes=("sre",))
    clock = FakeClock()
    container.verifier.clock = clock
    old = t["sre"]
    me = f"/v1/tenants/{t['id']}"
    rotate = f"{me}/keys/{_key_id(old)}/rotate"
    too_long = client.post(rotate, json={"overlap_s": 8 * 86_400}, headers=auth(t["admin"]))
    assert too_long.status_code == 422 and too_long.json()["field"] == "overlap_s"

    rotated = client.post(rotate, json={"overlap_s": 3600}, headers=auth(t["admin"]))
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["key"]
    assert client.get(me, headers=auth(new)).status_code == 200
    assert client.get(me, headers=auth(old)).status_code == 200, "the old secret works during the overlap"
    listed = {k["id"]: k for k in client.get(f"{me}/keys", headers=auth(t["admin"])).json()}
    assert listed[_key_id(old)]["revoked_at"] is not None and listed[_key_id(old)]["replaced_by"] == _key_id(
        new
    )
    again = client.post(rotate, headers=auth(t["admin"]))
    assert again.status_code == 409, "a rotated key is not rotated twice"

    # The overlap is over: on the verifier's clock (its cached entry ends) and in the database.
    clock.now += 3601
    with unit_of_work(container.factory) as session:
        key = session.get(ApiKey, _key_id(old))
        assert key is not None
        key.revoked_at = utcnow() - timedelta(seconds=1)
    assert client.get(me, headers=auth(old)).status_code == 401
    assert client.get(me, headers=auth(new)).status_code == 200


def test_a_key_in_its_overlap_can_still_be_revoked_at_once(client: TestClient, onboard: OnboardFn) -> None:
    t = onboard("revoking", scopes=("sre",))
    me = f"/v1/tenants/{t['id']}"
    old_id = _key_id(t["sre"])
    assert (
        client.post(
            f"{me}/keys/{old_id}/rotate", json={"overlap_s": 600}, headers=auth(t["admin"])
        ).status_code
        == 201
    )
    assert client.get(me, headers=auth(t["sre"])).status_code == 200
    assert client.delete(f"{me}/keys/{old_id}", headers=auth(t["admin"])).status_code == 200
    assert client.get(me, headers=auth(t["sre"])).status_code == 401
    assert client.delete(f"{me}/keys/{old_id}", headers=auth(t["admin"])).status_code == 409


def test_rotation_without_overlap_stops_the_old_secret_at_once(
    client: TestClient, onboard: OnboardFn
) -> None:
    t = onboard("instant", scopes=("sre",))
    me = f"/v1/tenants/{t['id']}"
    assert client.get(me, headers=auth(t["sre"])).status_code == 200
    assert client.post(f"{me}/keys/{_key_id(t['sre'])}/rotate", headers=auth(t["admin"])).status_code == 201
    assert client.get(me, headers=auth(t["sre"])).status_code == 401
