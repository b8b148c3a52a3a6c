"""Production monitoring of one serving process: counts in memory, flushed in batches.

``observe`` runs on the fraud-check hot path: it only appends the check to column buffers per
(tenant, version) (features and scores into ``array('d')``, no object per check) and the
transaction's tuple to a bounded list, under a lock — a few microseconds; per-check numpy work cost
a hundred. Everything else happens in ``flush``, the housekeeping chore, in a worker thread:
loading the versions' reference profiles, binning each column buffer with a few vectorised numpy
operations per (cohort, hour), and writing the hourly counts and the scored transactions (straight
to the driver: ``providers.sql_bulk``). Every structure is bounded; what does not fit is counted as
dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.ids import new_id
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, epoch_day
from control_plane.registry.orm import ModelVersion
from control_plane.scoring.schemas import FraudCheckRequest
from fraud_model.features import FEATURE_NAMES
from fraud_model.profile import CompiledProfile
from providers.sql_bulk import insert_new_rows

log = logging.getLogger(__name__)
BucketKey = tuple[str, str, str, int]  # tenant, version, cohort, hour (epoch seconds)
TxnRow = tuple[str, str, datetime, Decimal, str, str, float, str, str | None, str]
_SCORED = cast(Table, ScoredTransaction.__table__)
_TXN_COLUMNS = (
    "tenant_id",
    "txn_id",
    "ts",
    "amount",
    "card_token",
    "terminal_id",
    "score",
    "decision",
    "model_version",
    "cohort",
    "day",
)  # the order of TxnRow, then the day (the card history's index key)


class _Observed:
    """One (tenant, version)'s checks since the last flush, column by column: appending costs a
    few list and array appends, and the flush bins numpy views of the columns."""

    __slots__ = ("cohorts", "decisions", "features", "hours", "scores", "size")

    def __init__(self) -> None:
        self.features: array[float] = array("d")  # size x the version's feature count
        self.scores: array[float] = array("d")
        self.hours: array[int] = array("q")  # hour of transaction time, epoch seconds
        self.cohorts: list[str] = []
        self.decisions: list[str] = []
        self.size = 0

    def extend(self, other: _Observed) -> None:
        for name in ("features", "scores", "hours", "cohorts", "decisions"):
            getattr(self, name).extend(getattr(other, name))
        self.size += other.size

    def append(self, vector: Sequence[float], score: float, hour: int, cohort: str, decision: str) -> None:
        self.features.extend(vector)
        self.scores.append(score)
        self.hours.append(hour)
        self.cohorts.append(cohort)
        self.decisions.append(decision)
        self.size += 1


@dataclass
class _Counts:
    profile: CompiledProfile
    flat: np.ndarray
    score: np.ndarray
    nulls: np.ndarray
    out: np.ndarray
    unseen: np.ndarray
    decisions: Counter[str] = field(default_factory=Counter)
    volume: int = 0

    def add(self, other: _Counts) -> None:
        for name in ("flat", "score", "nulls", "out", "unseen"):
            getattr(self, name).__iadd__(getattr(other, name))
        self.decisions.update(other.decisions)
        self.volume += other.volume

    def quality(self) -> dict[str, dict[str, int]]:
        def named(a: np.ndarray) -> dict[str, int]:
            return {n: int(v) for n, v in zip(self.profile.names, a, strict=True) if v}

        return {"nulls": named(self.nulls), "out_of_range": named(self.out), "unseen": named(self.unseen)}


class DriftMonitor:
    """Implements ``control_plane.scoring.observer.ScoreObserver``."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        names: Sequence[str] = FEATURE_NAMES,
        max_keys: int = 2_000,
        max_profiles: int = 512,
        max_observations: int = 100_000,
        profile_retry_s: float = 300.0,
    ) -> None:
        self.factory = factory
        self.names = tuple(names)
        self.max_keys, self.max_profiles = max_keys, max_profiles
        self.max_observations = max_observations
        self.profile_retry_s = profile_retry_s
        self.writer = new_id("wr")[:40]  # this process's rows in drift_buckets
        self._lock = threading.Lock()
        # One flush at a time (the chore, the shutdown, a test): a flush that returns has written
        # everything observed before it was called, and two flushes never race on this writer's rows.
        self._flush_lock = threading.Lock()
        # (tenant, version) -> compiled profile, or None (no profile) with when it was looked up;
        # only the flush reads or writes it (under the flush lock).
        self._profiles: OrderedDict[tuple[str, str], tuple[CompiledProfile | None, float]] = OrderedDict()
        self._observed: dict[tuple[str, str], _Observed] = {}
        self._n_observed = 0
        self._txns: list[TxnRow] = []
        self._unwritten: dict[BucketKey, _Counts] = {}  # counts a failed flush keeps for the next
        self.dropped = 0  # observations that did not fit a bound

    def observe(
        self,
        tenant_id: str,
        version: str | None,
        cohort: str,
        req: FraudCheckRequest,
        vector: Sequence[float],
        score: float,
        decision: str,
    ) -> None:
        ts = req.timestamp.astimezone(UTC)
        row: TxnRow = (
            tenant_id, req.txn_id, ts, req.amount, req.card_token, req.terminal_id,
            score, decision, version, cohort,
        )  # fmt: skip
        with self._lock:
            if len(self._txns) < self.max_txns:
                self._txns.append(row)
            else:
                self.dropped += 1
            if version is None:  # answered from rules: no model, no reference to compare with
                return
            key = (tenant_id, version)
            observed = self._observed.get(key)
            if observed is None and len(self._observed) < self.max_keys:
                observed = self._observed[key] = _Observed()
            if observed is None or self._n_observed >= self.max_observations:
                self.dropped += 1
                return
            observed.append(vector, score, int(ts.timestamp()) // 3600 * 3600, cohort, decision)
            self._n_observed += 1

    @property
    def max_txns(self) -> int:
        return self.max_observations

    def forget(self, tenant_id: str) -> None:
        """Drop what this process holds of a tenant (offboarding), so no flush writes it back."""
        with self._lock:
            self._txns = [r for r in self._txns if r[0] != tenant_id]
            for key in [k for k in self._observed if k[0] == tenant_id]:
                self._n_observed -= self._observed.pop(key).size
            for bucket in [b for b in self._unwritten if b[0] == tenant_id]:
                del self._unwritten[bucket]

    def flush(self) -> None:
        """Bin what was observed and write it with the transactions (one transaction). On failure
        (reading the profiles or writing) the batch stays in memory for the next flush and the
        chore backs off."""
        with self._flush_lock:
            with self._lock:
                observed, self._observed, self._n_observed = self._observed, {}, 0
                txns, self._txns = self._txns, []
                counts, self._unwritten = self._unwritten, {}
            try:
                binned = self._bin(observed)
            except BaseException:
                self._keep(txns, counts, observed)
                raise
            for key, c in binned.items():
                mine = counts.setdefault(key, c)
                if mine is not c:
                    mine.add(c)
            try:
                with unit_of_work(self.factory) as session:
                    self._write_counts(session, counts)
                    self._write_txns(session, txns)
            except BaseException:
                self._keep(txns, counts, {})
                raise

    def _keep(
        self, txns: list[TxnRow], counts: dict[BucketKey, _Counts], observed: dict[tuple[str, str], _Observed]
    ) -> None:
        """A failed flush's batch back in front of what was observed since, within the bounds."""
        with self._lock:
            self._unwritten = dict(list(counts.items())[: self.max_keys])
            kept = txns + self._txns
            self._txns = kept[: self.max_txns]
            self.dropped += len(kept) - len(self._txns)
            for key, older in observed.items():
                newer = self._observed.get(key)
                if newer is None and len(self._observed) >= self.max_keys:
                    self.dropped += older.size
                    continue
                if newer is not None:
                    older.extend(newer)
                self._observed[key] = older
                self._n_observed += older.size - (newer.size if newer is not None else 0)

    def _bin(self, observed: dict[tuple[str, str], _Observed]) -> dict[BucketKey, _Counts]:
        now = time.monotonic()
        missing = [
            k
            for k in observed
            if k not in self._profiles
            or (self._profiles[k][0] is None and now - self._profiles[k][1] > self.profile_retry_s)
        ]
        for key, loaded in (self._load_profiles(missing) if missing else {}).items():
            self._profiles[key] = (loaded, now)
        while len(self._profiles) > self.max_profiles:
            self._profiles.popitem(last=False)
        out: dict[BucketKey, _Counts] = {}
        for (tenant_id, version), obs in observed.items():
            profile = self._profiles.get((tenant_id, version), (None, 0.0))[0]
            if profile is None:  # a version without a reference profile: nothing to compare with
                continue
            self._profiles.move_to_end((tenant_id, version))
            x = np.frombuffer(obs.features, dtype=float).reshape(obs.size, -1)
            scores = np.frombuffer(obs.scores, dtype=float)
            hours = np.frombuffer(obs.hours, dtype=np.int64)
            decisions = np.array(obs.decisions)
            cohorts = np.array(obs.cohorts)
            for cohort in np.unique(cohorts):
                in_cohort = cohorts == cohort
                for hour in np.unique(hours[in_cohort]):
                    rows = in_cohort & (hours == hour)
                    c = _Counts(profile, *profile.count_batch(x[rows], scores[rows]))
                    names, counts = np.unique(decisions[rows], return_counts=True)
                    c.decisions.update({str(n): int(k) for n, k in zip(names, counts, strict=True)})
                    c.volume = int(np.count_nonzero(rows))
                    out[(tenant_id, version, str(cohort), int(hour))] = c
        return out

    def _load_profiles(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], CompiledProfile | None]:
        wanted = dict.fromkeys(keys)
        out: dict[tuple[str, str], CompiledProfile | None] = dict.fromkeys(wanted)
        with self.factory() as session:
            stmt = select(
                ModelVersion.tenant_id, ModelVersion.id, ModelVersion.reference_profile, ModelVersion.params
            ).where(ModelVersion.id.in_([v for _, v in wanted]))
            for tenant_id, version, profile, params in session.execute(stmt):
                if (tenant_id, version) in out and profile:
                    try:
                        names = _feature_names(params) or self.names
                        out[(tenant_id, version)] = CompiledProfile.from_profile(profile, names)
                    except (KeyError, TypeError, ValueError):
                        log.warning("monitoring: unusable reference profile of %s", version, exc_info=True)
        return out

    def _write_counts(self, session: Session, counts: dict[BucketKey, _Counts]) -> None:
        for (tenant_id, version, cohort, hour), c in counts.items():
            start = datetime.fromtimestamp(hour, UTC)
            row = session.get(DriftBucket, (tenant_id, version, cohort, start, self.writer))
            if row is not None:  # this process's earlier flush in the same hour: add to it
                flat, score, nulls, out, unseen = _stored(row, c.profile)
                c.add(_Counts(c.profile, flat, score, nulls, out, unseen, Counter(row.decisions), row.volume))
            values = {
                "volume": c.volume,
                "feature_counts": c.profile.split(c.flat.tolist()),
                "score_counts": [int(v) for v in c.score],
                "decisions": dict(c.decisions),
                "quality": c.quality(),
                "updated_at": datetime.now(UTC),
            }
            if row is None:
                session.add(
                    DriftBucket(
                        tenant_id=tenant_id, model_version=version, cohort=cohort, hour_start=start,
                        writer=self.writer, **values,
                    )
                )  # fmt: skip
            else:
                for k, v in values.items():
                    setattr(row, k, v)

    def _write_txns(self, session: Session, txns: list[TxnRow]) -> None:
        # The same txn twice in a batch: the last answer; one already stored: kept as it is.
        latest = [(*r, epoch_day(r[2])) for r in {(r[0], r[1]): r for r in txns}.values()]
        # Straight to the driver (providers.sql_bulk): SQLAlchemy's executemany cost ~15 us a row,
        # in the serving process, which showed in its throughput.
        insert_new_rows(session.connection(), _SCORED, _TXN_COLUMNS, latest)


def _stored(
    row: DriftBucket, p: CompiledProfile
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    flat = np.concatenate([np.asarray(row.feature_counts[n], np.int64) for n in p.names])
    quality = [row.quality.get(k, {}) for k in ("nulls", "out_of_range", "unseen")]
    nulls, out, unseen = (np.array([q.get(n, 0) for n in p.names], np.int64) for q in quality)
    return flat, np.asarray(row.score_counts, np.int64), nulls, out, unseen


def _feature_names(params: Any) -> tuple[str, ...] | None:
    """A version trained on a tenant feature set scores that set's features, in its order (issue 16)."""
    feature_set = (params or {}).get("feature_set") if isinstance(params, dict) else None
    if not isinstance(feature_set, dict):
        return None
    return tuple(str(f["name"]) for f in feature_set["document"]["features"])
