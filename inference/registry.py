"""Loaded models of the multi-model contract, bounded by memory with least-recently-used unloading.

SageMaker unloads models itself when the container answers 507, but only after the container is
already short of memory; the registry keeps the estimated resident size of its models under
``memory_budget`` by unloading the least recently used ones first, so a load succeeds whenever
the new model fits on its own. A model larger than the whole budget is refused with 507.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from inference.artifacts import LoadedModel, ModelLoadError, load_model

log = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = 1024 * 1024 * 1024
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


class ModelExistsError(ModelLoadError):
    status = 409


class InsufficientMemoryError(ModelLoadError):
    status = 507


def default_memory_budget() -> int:
    """Half the container's cgroup memory limit (the rest is the server and requests), else 1 GiB."""
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or a huge number means no limit
            return int(text) // 2
    return DEFAULT_MEMORY_BUDGET


class ModelRegistry:
    def __init__(
        self,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        *,
        require_digest: bool = True,
        loader: Callable[..., LoadedModel] = load_model,
    ) -> None:
        if memory_budget <= 0:
            raise ValueError("memory_budget must be positive")
        self.memory_budget = memory_budget
        self.require_digest = require_digest
        self._loader = loader
        self._lock = threading.Lock()
        self._loading: set[str] = set()
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self.evictions = 0

    @property
    def used(self) -> int:
        with self._lock:
            return sum(m.footprint for m in self._models.values())

    def load(self, name: str, url: str, *, expected_sha256: str | None = None) -> LoadedModel:
        """Load and verify; 409 when the name is taken, 507 when the model alone exceeds the budget."""
        with self._lock:
            if name in self._models or name in self._loading:
                raise ModelExistsError(f"model {name!r} is already loaded")
            self._loading.add(name)
        try:
            # Reading and parsing happen outside the lock: other models keep serving meanwhile.
            model = self._loader(
                name, Path(url), expected_sha256=expected_sha256, require_digest=self.require_digest
            )
            with self._lock:
                if model.footprint > self.memory_budget:
                    raise InsufficientMemoryError(
                        f"model {name!r} needs ~{model.footprint} bytes, above the container's "
                        f"budget of {self.memory_budget}"
                    )
                self._make_room(model.footprint)
                self._models[name] = model
        finally:
            with self._lock:
                self._loading.discard(name)
        log.info("loaded model %s (%d bytes, sha256 %s)", name, model.footprint, model.sha256)
        return model

    def _make_room(self, needed: int) -> None:
        used = sum(m.footprint for m in self._models.values())
        while self._models and used + needed > self.memory_budget:
            victim_name, victim = self._models.popitem(last=False)
            used -= victim.footprint
            self.evictions += 1
            log.info("unloaded least recently used model %s to make room", victim_name)

    def get(self, name: str) -> LoadedModel | None:
        """The model, marked as just used; None when it is not loaded (or was unloaded)."""
        with self._lock:
            model = self._models.get(name)
            if model is not None:
                self._models.move_to_end(name)
            return model

    def peek(self, name: str) -> LoadedModel | None:
        """The model without touching its recency (for descriptions)."""
        with self._lock:
            return self._models.get(name)

    def unload(self, name: str) -> bool:
        with self._lock:
            return self._models.pop(name, None) is not None

    def names(self) -> list[str]:
        """Loaded model names, least recently used first."""
        with self._lock:
            return list(self._models)
