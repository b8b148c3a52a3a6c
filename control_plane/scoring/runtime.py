"""The scoring runtime of one process: serving registry, checker, spool and its drainer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane.events import FLAGGED_STORED as FLAGGED_TOPIC
from control_plane.events import LABEL_RECORDED as LABEL_TOPIC
from control_plane.events import SERVING_CHANGED as SERVING_TOPIC
from control_plane.scoring.check_features import TERMINAL_TTL_S
from control_plane.scoring.label_feed import feed_label
from control_plane.scoring.observer import ScoreObserver
from control_plane.scoring.service import FraudChecker
from control_plane.scoring.serving import ServingRegistry
from control_plane.scoring.spool import FlaggedSpool, SpoolDrainer
from control_plane.scoring.spool_dirs import SpoolDirectory
from control_plane.slo.recorder import RequestRecorder
from fraud_model.online_features import TerminalState, apply_label
from providers.ports import (
    EventBus,
    FeatureCache,
    FlaggedRecord,
    FlaggedTransactionStore,
    MetricsSink,
    ModelHost,
)


@dataclass
class ScoringRuntime:
    serving: ServingRegistry
    checker: FraudChecker
    spool: FlaggedSpool
    drainer: SpoolDrainer
    recorder: RequestRecorder
    spool_dir: SpoolDirectory | None = None  # holds the spool directory's lock while the process lives


class FlaggedDelivery:
    """The spool's sink: the flagged store first, then the review queue. A record counts as
    delivered once the queue has it: a failing subscriber keeps it in the spool."""

    def __init__(self, store: FlaggedTransactionStore, bus: EventBus) -> None:
        self.store = store
        self.bus = bus

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.store.put(FlaggedRecord(record["tenant_id"], record["flagged_id"], record["payload"]))
        message = {**record["payload"], "tenant_id": record["tenant_id"]}
        self.bus.publish(FLAGGED_TOPIC, message, require_delivery=True)


@dataclass(frozen=True)
class ScoringPorts:
    """The ports the hot path and its spool use."""

    feature_cache: FeatureCache
    model_host: ModelHost
    flagged_store: FlaggedTransactionStore
    event_bus: EventBus
    metrics: MetricsSink


def build_scoring(
    factory: sessionmaker[Session],
    p: ScoringPorts,
    *,
    templates: Mapping[str, Mapping[str, Any]],
    spool_root: Path,
    slo_bucket_s: int,
    monitor: ScoreObserver | None = None,
) -> ScoringRuntime:
    """The runtime, subscribed to serving changes and labels (called once by the composition root)."""
    serving = ServingRegistry(factory, p.model_host, templates)
    # One spool per process (a dead process's spool is taken over here): see spool_dirs.
    spool_dir = SpoolDirectory(spool_root)
    spool = FlaggedSpool(spool_dir.path)

    def on_label(_topic: str, message: Mapping[str, Any]) -> None:
        """Labels (analyst verdicts, ``POST /v1/labels``) feed the built-in terminal-risk windows and
        a tenant set's delayed-label states (used once older than the label delay)."""
        tenant_id, terminal_id = str(message["tenant_id"]), str(message["terminal_id"])
        txn_id, label = str(message["txn_id"]), int(message["label"])
        raw = p.feature_cache.get_many(tenant_id, [f"term:{terminal_id}"])[0]
        if raw is not None:
            state = TerminalState.from_bytes(raw)
            if apply_label(state, txn_id, label):
                p.feature_cache.set_many(
                    tenant_id, {f"term:{terminal_id}": state.to_bytes()}, ttl_s=TERMINAL_TTL_S
                )
        feed_label(p.feature_cache, tenant_id, txn_id, label)

    p.event_bus.subscribe(SERVING_TOPIC, serving.on_event)
    p.event_bus.subscribe(LABEL_TOPIC, on_label, mode="work", group="terminal-labels")
    recorder = RequestRecorder(factory, bucket_s=slo_bucket_s)
    checker = FraudChecker(
        serving, p.feature_cache, p.model_host, spool, p.metrics, recorder, monitor=monitor
    )
    return ScoringRuntime(
        serving=serving,
        checker=checker,
        spool=spool,
        drainer=SpoolDrainer(spool, FlaggedDelivery(p.flagged_store, p.event_bus)),
        recorder=recorder,
        spool_dir=spool_dir,
    )
