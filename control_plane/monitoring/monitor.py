"""Production monitoring of one serving process: counts in memory, flushed in batches.

``observe`` runs on the fraud-check hot path: it only bins the check's features and score into the
reference profile's bins (a few numpy operations under a lock) and appends the transaction to a
bounded list. Everything that touches the database — loading a version's reference profile,
writing the hourly counts and the scored transactions — happens in ``flush``, the housekeeping
chore, in a worker thread. Every structure is bounded; what does not fit is counted as dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.ids import new_id
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction
from control_plane.registry.orm import ModelVersion
from control_plane.scoring.schemas import FraudCheckRequest
from fraud_model.features import FEATURE_NAMES
from fraud_model.profile import CompiledProfile

log = logging.getLogger(__name__)
BucketKey = tuple[str, str, str, int]  # tenant, version, cohort, hour (epoch seconds)
TxnRow = tuple[str, str, datetime, Decimal, str, str, float, str, str | None, str]


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

    @classmethod
    def empty(cls, p: CompiledProfile) -> _Counts:
        n = len(p.names)
        return cls(
            p,
            np.zeros(p.total_bins, np.int64),
            np.zeros(len(p.score_edges) + 1, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
        )

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
        max_pending: int = 1_000,
        max_txns: int = 100_000,
        profile_retry_s: float = 300.0,
    ) -> None:
        self.factory = factory
        self.names = tuple(names)
        self.max_keys, self.max_profiles = max_keys, max_profiles
        self.max_pending, self.max_txns = max_pending, max_txns
        self.profile_retry_s = profile_retry_s
        self.writer = new_id("wr")[:40]  # this process's rows in drift_buckets
        self._lock = threading.Lock()
        # One flush at a time (the chore, the shutdown, a test): a flush that returns has written
        # everything observed before it was called, and two flushes never race on this writer's rows.
        self._flush_lock = threading.Lock()
        # (tenant, version) -> compiled profile, or None (no profile) with when it was looked up
        self._profiles: OrderedDict[tuple[str, str], tuple[CompiledProfile | None, float]] = OrderedDict()
        self._pending: dict[tuple[str, str], list[tuple[str, int, list[float], float, str]]] = {}
        self._counts: dict[BucketKey, _Counts] = {}
        self._txns: list[TxnRow] = []
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
            float(score), decision, version, cohort,
        )  # fmt: skip
        hour = int(ts.timestamp()) // 3600 * 3600
        with self._lock:
            if len(self._txns) < self.max_txns:
                self._txns.append(row)
            else:
                self.dropped += 1
            if version is None:  # answered from rules: no model, no reference to compare with
                return
            key = (tenant_id, version)
            entry = self._profiles.get(key)
            if entry is None or (entry[0] is None and time.monotonic() - entry[1] > self.profile_retry_s):
                # Not loaded yet: keep the observation until the flush has loaded the profile.
                pending = self._pending.setdefault(key, []) if len(self._pending) < self.max_keys else None
                if pending is not None and len(pending) < self.max_pending:
                    pending.append((cohort, hour, list(vector), float(score), decision))
                else:
                    self.dropped += 1
                return
            self._profiles.move_to_end(key)
            if entry[0] is not None:
                self._count(entry[0], (tenant_id, version, cohort, hour), vector, score, decision)

    def forget(self, tenant_id: str) -> None:
        """Drop what this process holds of a tenant (offboarding), so no flush writes it back."""
        with self._lock:
            self._txns = [r for r in self._txns if r[0] != tenant_id]
            for bucket in [b for b in self._counts if b[0] == tenant_id]:
                del self._counts[bucket]
            for key in [k for k in self._pending if k[0] == tenant_id]:
                del self._pending[key]

    def _count(
        self, p: CompiledProfile, key: BucketKey, vector: Sequence[float], score: float, decision: str
    ) -> None:
        counts = self._counts.get(key)
        if counts is None:
            if len(self._counts) >= self.max_keys:
                self.dropped += 1
                return
            counts = self._counts[key] = _Counts.empty(p)
        idx, nulls, out, unseen = p.locate(vector)
        counts.flat[idx] += 1  # one index per feature: no repeats, so plain fancy indexing adds
        counts.nulls += nulls
        counts.out += out
        counts.unseen[unseen] += 1
        counts.score[p.score_bin(score)] += 1
        counts.decisions[decision] += 1
        counts.volume += 1

    def flush(self) -> None:
        """Load the profiles checks asked for, then write the counts and transactions (one
        transaction). On failure the batch goes back into memory and the chore backs off."""
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            wanted = [k for k, v in self._pending.items() if v]
        loaded = self._load_profiles(wanted) if wanted else {}
        with self._lock:
            now = time.monotonic()
            for key, profile in loaded.items():
                self._profiles[key] = (profile, now)
                for cohort, hour, vector, score, decision in self._pending.pop(key, []):
                    if profile is not None:
                        self._count(profile, (key[0], key[1], cohort, hour), vector, score, decision)
            while len(self._profiles) > self.max_profiles:
                self._profiles.popitem(last=False)
            counts, self._counts = self._counts, {}
            txns, self._txns = self._txns, []
        try:
            with unit_of_work(self.factory) as session:
                self._write_counts(session, counts)
                self._write_txns(session, txns)
        except BaseException:
            with self._lock:
                for bucket, c in counts.items():
                    mine = self._counts.setdefault(bucket, c)
                    if mine is not c:
                        mine.add(c)
                self._txns = (txns + self._txns)[: self.max_txns]
            raise

    def _load_profiles(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], CompiledProfile | None]:
        wanted = dict.fromkeys(keys)
        out: dict[tuple[str, str], CompiledProfile | None] = dict.fromkeys(wanted)
        with self.factory() as session:
            stmt = select(ModelVersion.tenant_id, ModelVersion.id, ModelVersion.reference_profile).where(
                ModelVersion.id.in_([v for _, v in wanted])
            )
            for tenant_id, version, profile in session.execute(stmt):
                if (tenant_id, version) in out and profile:
                    try:
                        out[(tenant_id, version)] = CompiledProfile.from_profile(profile, self.names)
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
        latest = {(r[0], r[1]): r for r in txns}  # the same txn twice in a batch: the last answer
        by_tenant: dict[str, list[str]] = {}
        for tenant_id, txn_id in latest:
            by_tenant.setdefault(tenant_id, []).append(txn_id)
        for tenant_id, ids in by_tenant.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                stmt = select(ScoredTransaction.txn_id).where(
                    ScoredTransaction.tenant_id == tenant_id, ScoredTransaction.txn_id.in_(chunk)
                )
                known = set(session.scalars(stmt))
                session.add_all(_txn_row(latest[(tenant_id, t)]) for t in chunk if t not in known)


def _stored(
    row: DriftBucket, p: CompiledProfile
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    flat = np.concatenate([np.asarray(row.feature_counts[n], np.int64) for n in p.names])
    quality = [row.quality.get(k, {}) for k in ("nulls", "out_of_range", "unseen")]
    nulls, out, unseen = (np.array([q.get(n, 0) for n in p.names], np.int64) for q in quality)
    return flat, np.asarray(row.score_counts, np.int64), nulls, out, unseen


def _txn_row(r: TxnRow) -> ScoredTransaction:
    tenant_id, txn_id, ts, amount, card, terminal, score, decision, version, cohort = r
    return ScoredTransaction(
        tenant_id=tenant_id, txn_id=txn_id, ts=ts, amount=amount, card_token=card, terminal_id=terminal,
        score=score, decision=decision, model_version=version, cohort=cohort,
    )  # fmt: skip
