"""Records every fraud-check's outcome per (tenant, version, cohort) in memory, flushed in buckets.

The hot path only bumps counters under a lock; a background thread (and ``flush`` in tests)
writes finished buckets to ``request_samples``. Latency goes into a fixed histogram, scores into
a bounded sample per bucket (for PSI).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.slo.orm import RequestSample

log = logging.getLogger(__name__)

LATENCY_BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200)
MAX_SCORES_PER_BUCKET = 2000
# Buckets wait here only until a flush writes them; during a database outage they pile up. Past
# this many the oldest are dropped (logged and counted): the SLO loses history, the process lives.
MAX_BUCKETS = 20_000


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    slow: int = 0
    flagged: int = 0
    flips: int = 0
    pairs: int = 0
    hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    scores: list[float] = field(default_factory=list)


def latency_bin(ms: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            return i
    return len(LATENCY_BOUNDS_MS)


def histogram_percentile(hist: list[int], q: float) -> float | None:
    """The upper bound of the bin holding the q-th percentile (conservative)."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q / 100.0 * total
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return (
                float(LATENCY_BOUNDS_MS[i])
                if i < len(LATENCY_BOUNDS_MS)
                else float(LATENCY_BOUNDS_MS[-1] * 2)
            )
    return float(LATENCY_BOUNDS_MS[-1] * 2)


class RequestRecorder:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        bucket_s: int = 10,
        slow_ms: float = 200.0,
        clock: Callable[[], float] = time.time,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self._factory = factory
        self.max_buckets = max_buckets
        self.dropped = 0
        self.bucket_s = bucket_s
        self.slow_ms = slow_ms
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str, int], _Bucket] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self,
        tenant_id: str,
        version: str,
        cohort: str,
        *,
        ok: bool,
        latency_ms: float,
        score: float | None = None,
        flagged: bool = False,
    ) -> None:
        start = int(self.clock()) // self.bucket_s * self.bucket_s
        with self._lock:
            b = self._buckets.get((tenant_id, version, cohort, start))
            if b is None:
                self._trim()
                b = self._buckets[(tenant_id, version, cohort, start)] = _Bucket()
            b.requests += 1
            if not ok:
                b.errors += 1
            if latency_ms > self.slow_ms:
                b.slow += 1
            b.hist[latency_bin(latency_ms)] += 1
            if ok and flagged:
                b.flagged += 1
            if score is not None and len(b.scores) < MAX_SCORES_PER_BUCKET:
                b.scores.append(round(score, 6))

    def record_pair(self, tenant_id: str, version: str, *, flipped: bool) -> None:
        """A shadow pair: did the candidate's decision differ from the stable answer's?"""
        start = int(self.clock()) // self.bucket_s * self.bucket_s
        with self._lock:
            if (tenant_id, version, "shadow", start) not in self._buckets:
                self._trim()
            b = self._buckets.setdefault((tenant_id, version, "shadow", start), _Bucket())
            b.pairs += 1
            b.flips += int(flipped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def _trim(self) -> None:
        """Make room for one more bucket (lock held): drop the oldest tenth past the bound."""
        if len(self._buckets) < self.max_buckets:
            return
        oldest = sorted(self._buckets, key=lambda k: k[3])[: max(1, self.max_buckets // 10)]
        for key in oldest:
            del self._buckets[key]
        self.dropped += len(oldest)
        log.error("request samples not written for too long: dropped the %d oldest buckets", len(oldest))

    def flush(self, *, all_buckets: bool = True) -> int:
        """Write buckets (only finished ones unless ``all_buckets``) to the database."""
        now_start = int(self.clock()) // self.bucket_s * self.bucket_s
        with self._lock:
            ready = {k: v for k, v in self._buckets.items() if all_buckets or k[3] < now_start}
            for key in ready:
                del self._buckets[key]
        if not ready:
            return 0
        try:
            with unit_of_work(self._factory) as session:
                for (tenant_id, version, cohort, start), b in ready.items():
                    session.add(
                        RequestSample(
                            tenant_id=tenant_id,
                            version=version,
                            cohort=cohort,
                            bucket_start=datetime.fromtimestamp(start, UTC),
                            requests=b.requests,
                            errors=b.errors,
                            slow=b.slow,
                            flagged=b.flagged,
                            flips=b.flips,
                            pairs=b.pairs,
                            latency_hist=b.hist,
                            scores=b.scores,
                            extra={},
                        )
                    )
        except Exception:
            log.exception("could not write request samples; keeping them for the next flush")
            with self._lock:
                for key, b in ready.items():
                    if key not in self._buckets:
                        self._trim()
                    self._buckets.setdefault(key, b)
            return 0
        return len(ready)

    def start(self, interval_s: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.flush(all_buckets=False)

        self._thread = threading.Thread(target=loop, name="fraudrail-slo-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
