"""Metrics to CloudWatch: buffered in memory, flushed with PutMetricData in batches.

``CloudWatchMetrics`` is an ``InMemoryMetrics`` too: every call is checked against
``providers/metrics_catalog.py`` and recorded in the process's Prometheus registry first, so
``/metrics`` serves the same series locally (``render_prometheus``) and the ``Providers.metrics``
type holds. Tenant ids stay as CloudWatch dimensions (the account is the operator's own; the
tenant-label policy applies to the ``/metrics`` scrape). Counters become one ``Count`` datum per
series and flush; a gauge sends its last value of the flush. Observations are sent as
``Values``/``Counts`` arrays (values rounded to 4 significant digits, at most 150 distinct values
a datum), so CloudWatch can compute percentiles (it cannot from ``StatisticValues``). A flush
never raises into the caller: failures are logged and the lost data counted in ``dropped``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from providers.local.metrics import InMemoryMetrics

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef

log = logging.getLogger(__name__)

_SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
_MAX_DIMENSIONS = 30
_MAX_VALUES = 150  # distinct values in one datum's Values / Counts
_UNITS = (
    ("_seconds", "Seconds"),
    ("_ms", "Milliseconds"),
    ("_bytes", "Bytes"),
    ("_total", "Count"),
)


def _unit(name: str) -> str:
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return "None"


class CloudWatchMetrics(InMemoryMetrics):
    def __init__(
        self,
        client: CloudWatchClient,
        namespace: str = "Fraudrail",
        *,
        batch_size: int = 500,
        flush_threshold: int = 1_000,
        flush_interval_s: float | None = 60.0,
        strict: bool = True,
    ) -> None:
        super().__init__(strict=strict)
        if not 1 <= batch_size <= 1_000:
            raise ValueError("batch_size must be 1..1000 (PutMetricData's limit)")
        self._cw = client
        self.namespace = namespace
        self._batch_size = batch_size
        self._flush_threshold = flush_threshold
        self._flush_interval_s = flush_interval_s
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._counts: dict[_SeriesKey, float] = {}
        self._observed: dict[_SeriesKey, Counter[float]] = {}
        self._gauges: dict[_SeriesKey, float] = {}
        self._pending = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # data (one per series and flush) lost to failed flushes
        self.sent = 0  # data (one per series and flush) accepted by CloudWatch
        self.flushes = 0

    # ------------------------------------------------------------------- record

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        if not self._record("counter", name, value, labels):
            return  # refused by the catalogue: not sent either
        key = (name, tuple(sorted(labels.items())))
        with self._buffer_lock:
            self._counts[key] = self._counts.get(key, 0.0) + value
            self._pending += 1
            full = self._pending >= self._flush_threshold
        if full:
            self._flush_soon()

    def observe(self, name: str, value: float, **labels: str) -> None:
        if not self._record("histogram", name, value, labels):
            return
        key = (name, tuple(sorted(labels.items())))
        rounded = float(f"{value:.4g}")
        with self._buffer_lock:
            self._observed.setdefault(key, Counter())[rounded] += 1
            self._pending += 1
            full = self._pending >= self._flush_threshold
        if full:
            self._flush_soon()

    def gauge(self, name: str, value: float, **labels: str) -> None:
        if not self._record("gauge", name, value, labels):
            return
        key = (name, tuple(sorted(labels.items())))
        with self._buffer_lock:
            self._gauges[key] = value  # last value wins: a gauge is a level, not a sum
            self._pending += 1
            full = self._pending >= self._flush_threshold
        if full:
            self._flush_soon()

    @property
    def pending(self) -> int:
        """Data points recorded since the last flush."""
        with self._buffer_lock:
            return self._pending

    # -------------------------------------------------------------------- flush

    def flush(self) -> int:
        """Send what is buffered; returns the number of data sent. Never raises."""
        with self._flush_lock:
            with self._buffer_lock:
                counts, observed, gauges = self._counts, self._observed, self._gauges
                self._counts, self._observed, self._gauges, self._pending = {}, {}, {}, 0
            if not counts and not observed and not gauges:
                return 0
            data = self._data(counts, observed, gauges)
            sent = 0
            for start in range(0, len(data), self._batch_size):
                batch = data[start : start + self._batch_size]
                try:
                    self._cw.put_metric_data(Namespace=self.namespace, MetricData=batch)
                except Exception as exc:  # never into the caller: metrics are best-effort
                    self.dropped += len(batch)
                    log.warning("CloudWatch PutMetricData failed (%d data dropped): %s", len(batch), exc)
                    continue
                sent += len(batch)
            self.sent += sent
            self.flushes += 1
            return sent

    def _data(
        self,
        counts: dict[_SeriesKey, float],
        observed: dict[_SeriesKey, Counter[float]],
        gauges: dict[_SeriesKey, float],
    ) -> list[MetricDatumTypeDef]:
        now = datetime.now(UTC)
        data: list[MetricDatumTypeDef] = []
        for (name, labels), value in counts.items():
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": _dimensions(labels),
                    "Timestamp": now,
                    "Value": float(value),
                    "Unit": "Count",
                }
            )
        for (name, labels), value in gauges.items():
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": _dimensions(labels),
                    "Timestamp": now,
                    "Value": float(value),
                    "Unit": "None",
                }
            )
        for (name, labels), histogram in observed.items():
            items = sorted(histogram.items())
            for start in range(0, len(items), _MAX_VALUES):
                chunk = items[start : start + _MAX_VALUES]
                data.append(
                    {
                        "MetricName": name,
                        "Dimensions": _dimensions(labels),
                        "Timestamp": now,
                        "Values": [v for v, _ in chunk],
                        "Counts": [float(c) for _, c in chunk],
                        "Unit": _unit(name),  # type: ignore[typeddict-item]
                    }
                )
        return data

    def _flush_soon(self) -> None:
        self._ensure_thread()
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is not None or self._stop.is_set():
            return
        with self._flush_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cloudwatch-metrics", daemon=True)
                self._thread.start()

    def start(self) -> None:
        """Start the background flusher (periodic when ``flush_interval_s`` is set)."""
        self._ensure_thread()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.flush()

    def close(self) -> None:
        """Stop the flusher and send what is left (idempotent)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self.flush()


def _dimensions(labels: tuple[tuple[str, str], ...]) -> list[Any]:
    # CloudWatch refuses empty dimension values and more than 30 dimensions.
    dims = [{"Name": k[:255], "Value": str(v)[:1024]} for k, v in labels if k and str(v)]
    return dims[:_MAX_DIMENSIONS]
