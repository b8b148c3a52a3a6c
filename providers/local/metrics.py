"""In-memory metrics sink with a Prometheus text rendering."""

from __future__ import annotations

import threading
from collections import defaultdict


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


class InMemoryMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.observations: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = defaultdict(list)
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[_key(name, labels)] += value

    def observe(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            values = self.observations[_key(name, labels)]
            values.append(value)
            if len(values) > 10_000:  # keep a bounded recent window
                del values[:5_000]

    def gauge(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self.gauges[_key(name, labels)] = value

    def counter(self, name: str, **labels: str) -> float:
        with self._lock:
            return self.counters.get(_key(name, labels), 0.0)

    def render_prometheus(self) -> str:
        lines: list[str] = []
        with self._lock:
            for (name, labels), value in sorted(self.counters.items()):
                lines.append(f"{name}{_fmt(labels)} {value}")
            for (name, labels), value in sorted(self.gauges.items()):
                lines.append(f"{name}{_fmt(labels)} {value}")
            for (name, labels), values in sorted(self.observations.items()):
                lines.append(f"{name}_count{_fmt(labels)} {len(values)}")
                lines.append(f"{name}_sum{_fmt(labels)} {sum(values)}")
        return "\n".join(lines) + "\n"


def _fmt(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
