"""Offboarding revokes keys, purges every store and proves each empty by re-listing it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from providers.ports import FlaggedRecord
from tests.control_plane.conftest import OnboardFn, auth


def test_offboarding_purges_every_store_and_reports_it(
    client: TestClient, admin_key: str, onboard: OnboardFn, container: State
) -> None:
    gone = onboard("acme-pay", scopes=("app",))
    kept = onboard("beta-co")
    p = container.providers
    for t in (gone, kept):
        p.object_store.put(f"tenants/{t['id']}/datasets/d1.parquet", b"rows")
        p.feature_cache.set_many(t["id"], {"card:c1": b"state"})
        p.flagged_store.put(FlaggedRecord(t["id"], "flg_1", {"score": 0.9}))

    resp = client.delete(f"/v1/tenants/{gone['id']}", headers=auth(admin_key))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["status"] == "DELETED" and report["all_empty"] is True
    stores = {s["store"]: s for s in report["stores"]}
    assert set(stores) >= {"object_store", "feature_cache", "model_host", "flagged_transactions", "api_keys"}
    assert all(s["remaining"] == [] for s in stores.values())
    assert stores["flagged_transactions"]["purged"] == 1
    assert stores["feature_cache"]["purged"] >= 1
    assert len(report["revoked_keys"]) == 2

    assert p.object_store.list(f"tenants/{gone['id']}/") == []
    assert p.flagged_store.count(gone["id"]) == 0
    for token in (gone["admin"], gone["app"]):
        assert client.get(f"/v1/tenants/{gone['id']}", headers=auth(token)).status_code == 401
    assert client.get(f"/v1/tenants/{gone['id']}", headers=auth(admin_key)).json()["status"] == "DELETED"
    assert client.get(f"/v1/tenants/{gone['id']}/deletion-report", headers=auth(admin_key)).json() == report
    assert client.delete(f"/v1/tenants/{gone['id']}", headers=auth(admin_key)).status_code == 409

    # The other tenant is untouched.
    assert p.object_store.list(f"tenants/{kept['id']}/") != []
    assert p.flagged_store.count(kept["id"]) == 1
    assert p.feature_cache.get_many(kept["id"], ["card:c1"]) == [b"state"]
    audit = client.get(
        "/v1/audit", params={"tenant_id": gone["id"], "limit": 1000}, headers=auth(admin_key)
    ).json()
    assert [e["action"] for e in audit][-1] == "tenant.deleted"


def test_offboarding_interrupted_is_resumable(
    client: TestClient, admin_key: str, onboard: OnboardFn, container: State
) -> None:
    t = onboard("acme-pay")
    purger = container.purgers[0]
    original = purger.purge

    def failing(_: str) -> int:
        raise RuntimeError("object store timed out")

    purger.purge = failing  # type: ignore[method-assign]
    first = client.delete(f"/v1/tenants/{t['id']}", headers=auth(admin_key))
    assert first.status_code == 202 and "timed out" in first.json()["last_error"]
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(admin_key)).json()["status"] == "OFFBOARDING"
    assert client.get(f"/v1/tenants/{t['id']}", headers=auth(t["admin"])).status_code == 401

    purger.purge = original  # type: ignore[method-assign]
    second = client.delete(f"/v1/tenants/{t['id']}", headers=auth(admin_key))
    assert second.status_code == 200 and second.json()["all_empty"] is True
