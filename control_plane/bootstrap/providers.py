"""Builds the adapters chosen by settings, once, in the app's lifespan (or the worker's start)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from control_plane.bootstrap.bus import build_event_bus
from control_plane.settings import AppSettings
from providers.local.feature_cache import MemoryFeatureCache
from providers.local.flagged_store import SqlFlaggedTransactionStore
from providers.local.metrics import InMemoryMetrics
from providers.local.model_host import LocalModelHost
from providers.local.object_store import LocalObjectStore
from providers.local.provisioner import LocalProvisioner
from providers.local.rollback_log import FileRollbackLog, MemoryRollbackLog
from providers.mlflow_tracking import build_tracker
from providers.ports import (
    BatchJobRunner,
    EventBus,
    ExperimentTracker,
    FeatureCache,
    FlaggedTransactionStore,
    ModelHost,
    Notifier,
    ObjectStore,
    Provisioner,
    RollbackLog,
    TrainingBackend,
)
from providers.webhook_notifier import WebhookNotifier


@dataclass
class Providers:
    object_store: ObjectStore
    feature_cache: FeatureCache
    model_host: ModelHost
    flagged_store: FlaggedTransactionStore
    event_bus: EventBus
    metrics: InMemoryMetrics
    provisioner: Provisioner
    # Defaults keep builders that predate these ports working; they should pass durable ones.
    rollback_log: RollbackLog = field(default_factory=MemoryRollbackLog)
    notifier: Notifier = field(default_factory=WebhookNotifier)
    # MLflow when FRAUDRAIL_MLFLOW_TRACKING_URI is set, else a no-op tracker.
    tracker: ExperimentTracker = field(default_factory=build_tracker)
    # Where training and batch scoring compute: in-process when None (job_handlers builds it).
    training: TrainingBackend | None = None
    batch_runner: BatchJobRunner | None = None


def build_providers(settings: AppSettings, factory: sessionmaker[Session]) -> Providers:
    """The adapters selected by ``FRAUDRAIL_PROVIDER`` and the cache / bus settings."""
    if settings.provider != "local":
        from control_plane.bootstrap.aws import build_aws_providers
        from providers.aws.settings import AwsSettings

        return build_aws_providers(settings, AwsSettings(), factory)
    cache: FeatureCache
    if settings.cache_backend == "redis":
        from providers.redis_cache import RedisFeatureCache

        cache = RedisFeatureCache(settings.redis_url, timeout_ms=settings.cache_timeout_ms)
    else:
        cache = MemoryFeatureCache()
    store = LocalObjectStore(settings.home / "objects")
    host = LocalModelHost(store, capacity=settings.model_cache_size)
    return Providers(
        object_store=store,
        feature_cache=cache,
        model_host=host,
        flagged_store=SqlFlaggedTransactionStore(factory),
        event_bus=build_event_bus(settings),
        metrics=InMemoryMetrics(),
        provisioner=LocalProvisioner(store, cache, host, settings.home / "provisioner" / "ledger.jsonl"),
        rollback_log=FileRollbackLog(settings.home / "rollback-log.jsonl"),
        notifier=WebhookNotifier(),
    )
