"""Port contracts beyond ``tests/control_plane/providers/contracts.py``: rollback log, model host.

Plain checks over the ports only, so any adapter can run them (the local ones included).
"""

from __future__ import annotations

import hashlib
import uuid

import pytest

from providers.ports import (
    ArtifactIntegrityError,
    HostedModel,
    ModelHost,
    ModelSlot,
    ObjectStore,
    ProviderError,
    RollbackLog,
    RollbackRecord,
)


def new_tenant() -> str:
    return f"ten_{uuid.uuid4().hex}"


def hosted(store: ObjectStore, tenant_id: str, version_id: str, data: bytes | None = None) -> HostedModel:
    """Put an artifact in the store and describe it as the registry would."""
    data = data if data is not None else f"model {version_id} of {tenant_id}".encode()
    key = f"tenants/{tenant_id}/models/{version_id}/model.tar.gz"
    store.put(key, data)
    return HostedModel(tenant_id, version_id, key, hashlib.sha256(data).hexdigest())


def check_rollback_log(log: RollbackLog) -> None:
    """Each rollback id is stored once; ``list`` is newest first; purge is per tenant."""
    a, b = new_tenant(), new_tenant()
    first = RollbackRecord(
        tenant_id=a,
        rollback_id="rb_1",
        at="2025-03-01T10:00:00+00:00",
        reason="canary 5xx errors over threshold",
        evidence={"alarm": "fraudrail-x-canary-5xx", "errors": 7, "window_s": 60},
        weights_after={"mv_1": 10_000, "mv_2": 0},
    )
    second = RollbackRecord(
        a, "rb_2", "2025-03-02T10:00:00+00:00", "latency", {"p95_ms": 420.5}, {"mv_1": 10_000}
    )
    assert log.append(first) is True
    assert log.append(first) is False
    assert log.append(second) is True
    assert (
        log.append(RollbackRecord(b, "rb_1", "2025-03-01T11:00:00+00:00", "other", {}, {"mv_9": 10_000}))
        is True
    )
    assert log.list(a) == [second, first]
    assert log.list(a, limit=1) == [second]
    assert log.purge_tenant(a) == 2
    assert log.list(a) == []
    assert [r.rollback_id for r in log.list(b)] == ["rb_1"]


def check_model_host(host: ModelHost, store: ObjectStore, kind: str) -> str:
    """Slots, idempotent deploys, weights in basis points, refusals, undeploy, delete."""
    tenant = new_tenant()
    assert host.ensure_slot(tenant, kind) is True
    assert host.ensure_slot(tenant, kind) is False
    assert host.slots(tenant) == [ModelSlot(tenant, kind)]

    v1, v2 = hosted(store, tenant, "mv_1"), hosted(store, tenant, "mv_2")
    host.deploy(v1)
    host.deploy(v1)  # idempotent
    host.deploy(v2)
    assert host.deployed(tenant) == [v1, v2]

    host.set_weights(tenant, {"mv_1": 10_000, "mv_2": 0})
    assert host.weights(tenant) == {"mv_1": 10_000, "mv_2": 0}
    host.set_weights(tenant, {"mv_1": 9_000, "mv_2": 1_000})
    assert host.weights(tenant) == {"mv_1": 9_000, "mv_2": 1_000}

    with pytest.raises(ValueError):
        host.set_weights(tenant, {"mv_1": 9_000, "mv_2": 900})  # 9,900 bp
    with pytest.raises(ProviderError):
        host.set_weights(tenant, {"mv_404": 10_000})  # not deployed
    assert host.weights(tenant) == {"mv_1": 9_000, "mv_2": 1_000}  # refusals change nothing

    host.set_weights(tenant, {"mv_1": 10_000, "mv_2": 0})
    host.undeploy(tenant, "mv_2")
    host.undeploy(tenant, "mv_2")  # idempotent
    assert host.deployed(tenant) == [v1]
    assert "mv_2" not in host.weights(tenant)

    assert host.delete_tenant(tenant) >= 1
    assert host.slots(tenant) == []
    assert host.deployed(tenant) == []
    assert host.weights(tenant) == {}
    assert host.delete_tenant(tenant) == 0
    return tenant


def check_model_host_integrity(host: ModelHost, store: ObjectStore, kind: str) -> None:
    """A version whose bytes differ from the registry's sha256 never scores.

    Hosts may refuse at ``deploy`` (AWS) or when the version is first loaded (local): either
    way the first of deploy / invoke raises ``ArtifactIntegrityError``.
    """
    tenant = new_tenant()
    host.ensure_slot(tenant, kind)
    good = hosted(store, tenant, "mv_good", b"the reviewed model")
    tampered = HostedModel(tenant, "mv_bad", good.artifact_key.replace("mv_good", "mv_bad"), good.sha256)
    store.put(tampered.artifact_key, b"a swapped model")
    with pytest.raises(ArtifactIntegrityError):
        host.deploy(tampered)
        host.invoke(tenant, "mv_bad", [[0.0, 1.0]])

    # Tampered after a successful deploy: the next load / check refuses it.
    later = hosted(store, tenant, "mv_later", b"a model that will be swapped")
    host.deploy(later)
    store.put(later.artifact_key, b"swapped after deploy")
    with pytest.raises(ArtifactIntegrityError):
        host.invoke(tenant, "mv_later", [[0.0, 1.0]])
    host.delete_tenant(tenant)
