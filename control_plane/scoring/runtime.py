"""The scoring runtime of one process: serving registry, checker, spool and its drainer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from control_plane.registry.service import SERVING_TOPIC
from control_plane.review.contract import FLAGGED_TOPIC, LABEL_TOPIC
from control_plane.scoring.service import TERMINAL_TTL_S, FraudChecker
from control_plane.scoring.serving import ServingRegistry
from control_plane.scoring.spool import FlaggedSpool, SpoolDrainer
from control_plane.slo.recorder import RequestRecorder
from fraud_model.online_features import TerminalState, apply_label
from providers.ports import FlaggedRecord

if TYPE_CHECKING:
    from control_plane.container import Container


@dataclass
class ScoringRuntime:
    serving: ServingRegistry
    checker: FraudChecker
    spool: FlaggedSpool
    drainer: SpoolDrainer
    recorder: RequestRecorder


def build_scoring(c: Container) -> ScoringRuntime:
    p = c.providers
    serving = ServingRegistry(c.factory, p.model_host, c.templates)
    spool = FlaggedSpool(c.settings.home / c.settings.spool_dir_name)

    def deliver(record: Mapping[str, Any]) -> None:
        p.flagged_store.put(FlaggedRecord(record["tenant_id"], record["flagged_id"], record["payload"]))
        # Delivered once the review queue has it: a failing subscriber keeps the record in the spool.
        p.event_bus.publish(
            FLAGGED_TOPIC, {**record["payload"], "tenant_id": record["tenant_id"]}, require_delivery=True
        )

    def on_label(_topic: str, message: Mapping[str, Any]) -> None:
        """Analyst verdicts feed the terminal-risk windows (used once older than the label delay)."""
        tenant_id, terminal_id = str(message["tenant_id"]), str(message["terminal_id"])
        raw = p.feature_cache.get_many(tenant_id, [f"term:{terminal_id}"])[0]
        if raw is None:
            return
        state = TerminalState.from_bytes(raw)
        if apply_label(state, str(message["txn_id"]), int(message["label"])):
            p.feature_cache.set_many(
                tenant_id, {f"term:{terminal_id}": state.to_bytes()}, ttl_s=TERMINAL_TTL_S
            )

    p.event_bus.subscribe(SERVING_TOPIC, serving.on_event)
    p.event_bus.subscribe(LABEL_TOPIC, on_label)
    recorder = RequestRecorder(c.factory, bucket_s=c.settings.slo_bucket_s)
    checker = FraudChecker(serving, p.feature_cache, p.model_host, spool, p.metrics, recorder)
    return ScoringRuntime(
        serving=serving, checker=checker, spool=spool, drainer=SpoolDrainer(spool, deliver), recorder=recorder
    )
