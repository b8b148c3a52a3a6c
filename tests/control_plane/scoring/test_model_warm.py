"""A version is loaded (memory-mapped) where it will serve before it takes traffic: a promotion
is swapped into serving only once loaded, and a rollout step loads its canary before the
weights move."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from fraud_model.training import sha256
from providers.local.model_host import LocalModelHost
from providers.local.object_store import LocalObjectStore
from providers.ports import HostedModel
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, register_model, txn
from tests.helpers import wait_until


def test_a_promotion_is_loaded_before_it_serves_and_the_load_is_a_memory_map(
    client: TestClient, live_tenant: LiveFn, container: State, trained_artifact: bytes
) -> None:
    t = live_tenant()
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    first = client.post("/v1/fraud-check", json=txn("w_1"), headers=auth(t["app"])).json()
    assert first["model_version"] == t["model"]
    base = host.scorer(t["id"], t["model"]).trees.children2.base
    while not isinstance(base, np.memmap) and isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, np.memmap), "the artifact's tree arrays are views of a memory map"

    second = register_model(container, t["id"], trained_artifact)
    assert not host.is_loaded(t["id"], second)
    resp = client.post(f"/v1/models/{second}/promote", headers=auth(t["admin"]))
    assert resp.status_code == 200, resp.text
    serving = container.scoring.serving

    def switched() -> bool:
        entry = serving.get(t["id"])
        return entry is not None and entry.production is not None and entry.production.version_id == second

    wait_until(switched, what="the promotion to reach serving")
    # No check ran since the promote: only the deploy in the serving registry's reload, which
    # happens before the entry is swapped, can have loaded it.
    assert host.is_loaded(t["id"], second)
    loads = host.loads
    answer = client.post("/v1/fraud-check", json=txn("w_2"), headers=auth(t["app"])).json()
    assert answer["model_version"] == second and host.loads == loads  # served warm


class RecordingStore(LocalObjectStore):
    """Records the host's weights at the moment each artifact file is opened."""

    host: LocalModelHost | None = None
    seen: list[tuple[str, dict[str, int]]]

    def local_path(self, key: str) -> Path | None:
        assert self.host is not None
        self.seen.append((key, self.host.weights("ten_a")))
        return super().local_path(key)


def test_a_rollout_step_loads_its_canary_before_the_weights_move(
    tmp_path: Path, trained_artifact: bytes
) -> None:
    store = RecordingStore(tmp_path / "objects")
    store.seen = []
    host = LocalModelHost(store)
    store.host = host
    models = {}
    for version in ("mv_stable", "mv_canary", "mv_next"):
        key = f"tenants/ten_a/models/{version}.frm"
        store.put(key, trained_artifact)
        models[version] = HostedModel("ten_a", version, key, sha256(trained_artifact))
    host.deploy(models["mv_stable"])
    host.deploy(models["mv_canary"])
    assert host.loaded() == []  # a tenant this process does not serve yet loads on first use
    host.set_weights("ten_a", {"mv_stable": 10_000})
    host.set_weights("ten_a", {"mv_stable": 9_000, "mv_canary": 1_000})
    assert store.seen == [
        (models["mv_stable"].artifact_key, {}),
        (models["mv_canary"].artifact_key, {"mv_stable": 10_000}),  # loaded before the weights moved
    ]
    assert host.weights("ten_a") == {"mv_stable": 9_000, "mv_canary": 1_000}
    host.deploy(models["mv_next"])  # a new version of a tenant being served is loaded on deploy
    assert host.is_loaded("ten_a", "mv_next")
