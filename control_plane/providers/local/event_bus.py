"""In-process event bus: synchronous fan-out; a failing subscriber never breaks the publisher."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from control_plane.providers.ports import Handler

log = logging.getLogger(__name__)


class InProcessEventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        with self._lock:
            self._subscribers[topic].append(handler)

    def publish(self, topic: str, message: Mapping[str, Any]) -> None:
        with self._lock:
            handlers = list(self._subscribers.get(topic, ()))
        for handler in handlers:
            try:
                handler(topic, message)
            except Exception:
                log.exception("subscriber of %s failed", topic)
