"""A database outage: recently verified keys keep working, others get 503 + Retry-After, never a 500."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url

from control_plane.auth.service import KeyVerifier
from control_plane.bootstrap.state import State
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import live_tenant, sim_frame, trained_artifact, txn  # noqa: F401


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _unreachable(url: str) -> str:
    """The same kind of database, somewhere nothing answers (a server that is down)."""
    if url.startswith("postgresql"):
        return make_url(url).set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    return "sqlite:////proc/no-such-dir/fraudrail.db"  # cannot be opened: OperationalError


def _assert_503(resp: Any) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert int(resp.headers["retry-after"]) > 0
    assert resp.json()["status"] == 503


def test_keys_verified_recently_survive_an_outage_others_get_503(
    client: TestClient,
    live_tenant: Any,  # noqa: F811
    container: State,
    database_url: str,
) -> None:
    t = live_tenant()
    fresh = client.post(
        f"/v1/tenants/{t['id']}/keys", json={"scope": "app", "name": "never-used"}, headers=auth(t["admin"])
    ).json()["key"]
    clock = FakeClock()
    container.verifier.clock = clock
    assert client.post("/v1/fraud-check", json=txn("warm"), headers=auth(t["app"])).status_code == 200
    assert client.get("/v1/models", headers=auth(t["admin"])).status_code == 200

    container.factory.configure(bind=create_engine(_unreachable(database_url)))
    clock.now += 31  # past the key cache's TTL: verification needs the database now
    try:
        codes = [
            client.post(
                "/v1/fraud-check", json=txn(f"outage_{i}", card_token=f"card_{i}"), headers=auth(t["app"])
            ).status_code
            for i in range(40)
        ]
        assert codes == [200] * 40, "a key verified before the outage keeps working"
        assert container.verifier.stale_answers >= 40
        _assert_503(client.post("/v1/fraud-check", json=txn("fresh"), headers=auth(fresh)))
        # Any route that needs the database answers 503 too (the generic mapping), never 500.
        _assert_503(client.get("/v1/models", headers=auth(t["admin"])))
        _assert_503(
            client.post(
                f"/v1/tenants/{t['id']}/keys", json={"scope": "app", "name": "x"}, headers=auth(t["admin"])
            )
        )
        clock.now += 900  # past the stale-if-error bound: not even a known key is taken on trust
        _assert_503(client.post("/v1/fraud-check", json=txn("too_old"), headers=auth(t["app"])))
        # A wrong secret for a cached key id is still refused during the outage.
        key_id, _ = t["app"].split(".", 1)
        assert client.post(
            "/v1/fraud-check", json=txn("forged"), headers=auth(f"{key_id}.forged")
        ).status_code in (
            401,
            503,
        )
    finally:
        container.factory.configure(bind=container.engine)
    assert client.post("/v1/fraud-check", json=txn("back"), headers=auth(t["app"])).status_code == 200
    assert client.post("/v1/fraud-check", json=txn("fresh_back"), headers=auth(fresh)).status_code == 200


def test_the_key_cache_is_bounded(onboard: OnboardFn, container: State) -> None:
    t = onboard("bounded", scopes=("app", "sre", "analyst"))
    verifier = KeyVerifier(container.factory, max_keys=2)
    for token in (t["admin"], t["app"], t["sre"], t["analyst"]):
        verifier.verify(token)
    assert len(verifier) == 2, "least recently used keys leave the cache"
