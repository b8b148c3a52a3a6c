"""In-process model host: tenant slots (models are added by the scoring issue)."""

from __future__ import annotations

import threading

from control_plane.providers.ports import ModelSlot


class LocalModelHost:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, ModelSlot] = {}

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
            return 1 if self._slots.pop(tenant_id, None) else 0
