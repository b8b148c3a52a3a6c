"""In-process model host with multi-model-endpoint semantics.

Versions are registered (``deploy``) cheaply and loaded on first use into an LRU of scorers;
the least recently used is evicted beyond ``capacity``. Every load re-reads the artifact and
verifies its SHA-256, so a tampered artifact refuses to load. An artifact on the local disk is
memory-mapped (``Scorer.from_file``): its stored tree arrays are views of the mapping, so a load
parses only the header and hashes the file with the GIL released (a cold tenant's load no longer
stalls the hot tenants' checks).

A version is loaded before it takes traffic where it will serve: ``deploy`` of a new version
of a tenant this process is serving (one of its versions is loaded) loads it before returning,
and the serving registry swaps a promotion in only after its deploys (``ServingRegistry.reload``);
``set_weights`` loads every version it gives weight before the weights change. A tenant nobody
has checked yet loads on its first check, off the event loop (``FraudChecker.warm``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fraud_model.scoring import Scorer
from fraud_model.training import ArtifactIntegrityError as ModelIntegrityError
from providers.ports import (
    ArtifactIntegrityError,
    HostedModel,
    ModelSlot,
    ObjectStore,
    ProviderError,
)

log = logging.getLogger(__name__)


@runtime_checkable
class LocalFiles(Protocol):
    """An object store that keeps each object in a file (``LocalObjectStore``)."""

    def local_path(self, key: str) -> Path | None: ...


class LocalModelHost:
    def __init__(self, store: ObjectStore, capacity: int = 64) -> None:
        self._store = store
        self.capacity = capacity
        self._lock = threading.Lock()
        self._slots: dict[str, ModelSlot] = {}
        self._models: dict[str, dict[str, HostedModel]] = {}
        self._weights: dict[str, dict[str, int]] = {}
        self._loaded: OrderedDict[tuple[str, str], Scorer] = OrderedDict()
        self.loads = 0
        self.evictions = 0
        self._faults: dict[tuple[str, str], tuple[bool, float]] = {}

    # slots -------------------------------------------------------------------------------
    def ensure_slot(self, tenant_id: str, kind: str) -> bool:
        with self._lock:
            if tenant_id in self._slots:
                return False
            self._slots[tenant_id] = ModelSlot(tenant_id=tenant_id, kind=kind)
            return True

    def slots(self, tenant_id: str) -> list[ModelSlot]:
        with self._lock:
            slot = self._slots.get(tenant_id)
            return [slot] if slot else []

    def delete_tenant(self, tenant_id: str) -> int:
        with self._lock:
            removed = 1 if self._slots.pop(tenant_id, None) else 0
            removed += len(self._models.pop(tenant_id, {}))
            self._weights.pop(tenant_id, None)
            for key in [k for k in self._loaded if k[0] == tenant_id]:
                del self._loaded[key]
            return removed

    # versions and weights ------------------------------------------------------------------
    def deploy(self, model: HostedModel) -> None:
        with self._lock:
            self._models.setdefault(model.tenant_id, {})[model.version_id] = model
            key = (model.tenant_id, model.version_id)
            serving = key not in self._loaded and any(t == model.tenant_id for t, _ in self._loaded)
        if serving:
            self._warm(model.tenant_id, model.version_id)

    def _warm(self, tenant_id: str, version_id: str) -> None:
        """Load ahead of traffic; a failure is logged here and answered when a check scores."""
        try:
            self.scorer(tenant_id, version_id)
        except (ProviderError, ArtifactIntegrityError) as exc:
            log.warning("could not load %s of tenant %s ahead of traffic: %s", version_id, tenant_id, exc)

    def undeploy(self, tenant_id: str, version_id: str) -> None:
        with self._lock:
            self._models.get(tenant_id, {}).pop(version_id, None)
            self._loaded.pop((tenant_id, version_id), None)
            weights = self._weights.get(tenant_id)
            if weights:
                weights.pop(version_id, None)

    def deployed(self, tenant_id: str) -> list[HostedModel]:
        with self._lock:
            return sorted(self._models.get(tenant_id, {}).values(), key=lambda m: m.version_id)

    def set_weights(self, tenant_id: str, weights: Mapping[str, int]) -> None:
        if any(w < 0 for w in weights.values()) or sum(weights.values()) != 10_000:
            raise ValueError(
                f"weights must be non-negative basis points summing to 10000, got {dict(weights)}"
            )
        with self._lock:
            known = self._models.get(tenant_id, {})
            missing = [v for v in weights if v not in known]
            if missing:
                raise ProviderError(f"versions not deployed for {tenant_id}: {missing}")
        for version_id, bp in weights.items():
            if bp > 0 and not self.is_loaded(tenant_id, version_id):
                self._warm(tenant_id, version_id)
        with self._lock:
            self._weights[tenant_id] = dict(weights)

    def weights(self, tenant_id: str) -> dict[str, int]:
        with self._lock:
            return dict(self._weights.get(tenant_id, {}))

    def verify_weights(self, tenant_id: str) -> dict[str, int]:
        """This host is its own backend: the weights it serves are the ones it holds."""
        return self.weights(tenant_id)

    # scoring -----------------------------------------------------------------------------------
    def scorer(self, tenant_id: str, version_id: str) -> Scorer:
        """The loaded scorer (loading and verifying it on first use; LRU eviction)."""
        key = (tenant_id, version_id)
        with self._lock:
            hit = self._loaded.get(key)
            if hit is not None:
                self._loaded.move_to_end(key)
                return hit
            model = self._models.get(tenant_id, {}).get(version_id)
        if model is None:
            raise ProviderError(f"model {version_id} is not deployed for {tenant_id}")
        try:
            scorer = self._load(model)
        except ModelIntegrityError as exc:
            raise ArtifactIntegrityError(
                f"artifact of {version_id} fails its integrity check (sha256 differs from the registry): "
                "refusing to load"
            ) from exc
        with self._lock:
            self._loaded[key] = scorer
            self._loaded.move_to_end(key)
            self.loads += 1
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)
                self.evictions += 1
        return scorer

    def _load(self, model: HostedModel) -> Scorer:
        path = self._store.local_path(model.artifact_key) if isinstance(self._store, LocalFiles) else None
        if path is not None:
            try:
                return Scorer.from_file(str(path), expected_sha256=model.sha256)
            except FileNotFoundError as exc:  # deleted since it was found
                raise ArtifactIntegrityError(f"artifact {model.artifact_key} is missing") from exc
        try:
            artifact = self._store.get(model.artifact_key)
        except KeyError as exc:
            raise ArtifactIntegrityError(f"artifact {model.artifact_key} is missing") from exc
        return Scorer.from_bytes(artifact, expected_sha256=model.sha256)

    def is_loaded(self, tenant_id: str, version_id: str) -> bool:
        return (tenant_id, version_id) in self._loaded

    def loaded(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._loaded)

    def inject_fault(
        self, tenant_id: str, version_id: str, *, error: bool = False, delay_ms: float = 0.0
    ) -> None:
        """Chaos testing: make one version fail or slow down (the SLO and canary analysis must notice)."""
        with self._lock:
            self._faults[(tenant_id, version_id)] = (error, delay_ms)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def invoke(self, tenant_id: str, version_id: str, rows: Sequence[Sequence[float]]) -> list[float]:
        fault = self._faults.get((tenant_id, version_id))
        if fault is not None:
            error, delay_ms = fault
            if delay_ms:
                time.sleep(delay_ms / 1000.0)
            if error:
                raise ProviderError(f"injected fault: model {version_id} returns errors")
        scorer = self.scorer(tenant_id, version_id)
        if len(rows) == 1:
            return [scorer.score_one(rows[0])]
        return [float(x) for x in scorer.score_batch(np.asarray(rows, dtype=np.float32))]

    def explain(
        self, tenant_id: str, version_id: str, row: Sequence[float], top_k: int
    ) -> list[dict[str, Any]]:
        return self.scorer(tenant_id, version_id).reasons(row, top_k)
