"""In-process event bus: synchronous fan-out; a failing subscriber never stops the others, and
breaks the publisher only when it asks for delivery (``require_delivery``)."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from providers.ports import DeliveryFailed, DeliveryMode, Handler

log = logging.getLogger(__name__)


class InProcessEventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(
        self, topic: str, handler: Handler, *, mode: DeliveryMode | None = None, group: str | None = None
    ) -> None:
        # One process is every consumer there is: "broadcast" and "work" both run the handler once.
        check_mode(mode)
        with self._lock:
            self._subscribers[topic].append(handler)

    def publish(self, topic: str, message: Mapping[str, Any], *, require_delivery: bool = False) -> None:
        with self._lock:
            handlers = list(self._subscribers.get(topic, ()))
        errors = run_handlers(handlers, topic, message)
        if errors and require_delivery:
            raise DeliveryFailed(topic, errors)


def run_handlers(handlers: Sequence[Handler], topic: str, message: Mapping[str, Any]) -> list[Exception]:
    """Call every handler; a failure is logged and returned, never stops the others."""
    errors: list[Exception] = []
    for handler in handlers:
        try:
            handler(topic, message)
        except Exception as exc:
            log.exception("subscriber of %s failed", topic)
            errors.append(exc)
    return errors


def check_mode(mode: str | None) -> None:
    if mode is not None and mode not in ("broadcast", "work"):
        raise ValueError(f"delivery mode must be 'broadcast' or 'work', not {mode!r}")
