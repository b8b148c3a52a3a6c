"""Ports: the small interfaces every piece of infrastructure sits behind.

Each port has a ``local`` adapter (the embedded default) and an ``aws`` adapter; one contract
suite in ``tests/control_plane/providers`` runs against both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from providers.cache_port import Admission as Admission
from providers.cache_port import Admitted as Admitted
from providers.cache_port import FeatureCache as FeatureCache
from providers.cache_port import ScriptedAdmission as ScriptedAdmission


class ProviderError(Exception):
    """An adapter could not reach or use its backend."""


class PermanentProviderError(ProviderError):
    """A failure that retrying cannot fix (e.g. a template a policy denies): a job fails at once."""


class DeliveryFailed(ProviderError):
    """``publish(..., require_delivery=True)``: a subscriber failed; the publisher should retry later
    (subscribers are idempotent: delivery is at least once)."""

    def __init__(self, topic: str, errors: list[Exception]) -> None:
        super().__init__(f"{len(errors)} subscriber(s) of {topic} failed: {errors[0]!r}")
        self.topic = topic
        self.errors = errors


@runtime_checkable
class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes:
        """Raise ``KeyError`` when the key does not exist."""
        ...

    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def total_bytes(self, prefix: str) -> int:
        """Bytes stored under ``prefix``, from the listing's sizes (no object is read)."""
        ...

    def delete_prefix(self, prefix: str) -> int: ...


@dataclass(frozen=True)
class ModelSlot:
    tenant_id: str
    kind: str  # serverless | pooled | dedicated


class ArtifactIntegrityError(ProviderError):
    """A model artifact's bytes do not match the sha256 recorded in the registry."""


@dataclass(frozen=True)
class HostedModel:
    tenant_id: str
    version_id: str
    artifact_key: str  # object-store key of the artifact
    sha256: str


@runtime_checkable
class ModelHost(Protocol):
    """Hosts tenants' model versions (multi-model-endpoint semantics) and their traffic weights.

    Weights are basis points (0..10_000) per version id and sum to 10_000 when set.
    """

    def ensure_slot(self, tenant_id: str, kind: str) -> bool:
        """Reserve the tenant's hosting slot; True when it was created now."""
        ...

    def slots(self, tenant_id: str) -> list[ModelSlot]: ...
    def delete_tenant(self, tenant_id: str) -> int: ...

    def deploy(self, model: HostedModel) -> None:
        """Make a version invocable (loaded lazily on first use; idempotent)."""
        ...

    def undeploy(self, tenant_id: str, version_id: str) -> None: ...
    def deployed(self, tenant_id: str) -> list[HostedModel]: ...
    def set_weights(self, tenant_id: str, weights: Mapping[str, int]) -> None:
        """Ask the backend to serve ``weights``; only ``traffic.set_weights`` calls it."""
        ...

    def weights(self, tenant_id: str) -> dict[str, int]:
        """The weights as the hot path reads them (may come from the adapter's own record)."""
        ...

    def verify_weights(self, tenant_id: str) -> dict[str, int]:
        """The weights read back from the backend itself, bypassing any record or cache the adapter
        keeps (SageMaker: the endpoint's variant weights from ``DescribeEndpoint``). ``{}`` when the
        backend serves the tenant nothing yet. ``traffic.set_weights`` compares it with what it set.
        """
        ...

    def invoke(self, tenant_id: str, version_id: str, rows: Sequence[Sequence[float]]) -> list[float]:
        """Scores for feature rows; raises ``ArtifactIntegrityError`` on a tampered artifact."""
        ...

    def explain(
        self, tenant_id: str, version_id: str, row: Sequence[float], top_k: int
    ) -> list[dict[str, Any]]:
        """Reason codes (feature contributions) for one row; [] where the host cannot explain."""
        ...


@runtime_checkable
class ModelPreloading(Protocol):
    """An optional capability of an in-process model host: load and verify a version ahead of its
    first check (off the event loop), and say whether it is loaded."""

    def is_loaded(self, tenant_id: str, version_id: str) -> bool: ...
    def scorer(self, tenant_id: str, version_id: str) -> object: ...


@runtime_checkable
class ModelFaultInjection(Protocol):
    """An optional capability of a model host: make a version fail or slow down (game days)."""

    def inject_fault(self, tenant_id: str, version_id: str, *, error: bool, delay_ms: float) -> None: ...
    def clear_faults(self) -> None: ...


@dataclass(frozen=True)
class FlaggedRecord:
    tenant_id: str
    flagged_id: str
    payload: Mapping[str, Any]


@runtime_checkable
class FlaggedTransactionStore(Protocol):
    def put(self, record: FlaggedRecord) -> bool:
        """Store once; False when the id was already stored (idempotent replay)."""
        ...

    def get(self, tenant_id: str, flagged_id: str) -> FlaggedRecord | None: ...
    def list(self, tenant_id: str, limit: int = 100) -> list[FlaggedRecord]: ...
    def count(self, tenant_id: str) -> int: ...
    def purge_tenant(self, tenant_id: str) -> int: ...


Handler = Callable[[str, Mapping[str, Any]], None]

# How a subscription receives a topic when many processes share one bus:
# - "broadcast": every process runs its handler (per-process state: serving registry, limits,
#   key cache); a process that was down misses it and rebuilds its state from the database.
# - "work": exactly one process of the subscriber kind (``group``) runs it (shared effects: the
#   review queue, label windows, rollbacks); at least once, so handlers must be idempotent.
DeliveryMode = Literal["broadcast", "work"]


@runtime_checkable
class EventBus(Protocol):
    def publish(self, topic: str, message: Mapping[str, Any], *, require_delivery: bool = False) -> None:
        """Fan ``message`` out to the topic's subscribers. With ``require_delivery`` a subscriber's
        failure raises ``DeliveryFailed`` (in process: after every subscriber ran); without it, it is
        logged. A remote bus is durable by itself: ``require_delivery`` then means the broker stored the
        message (SNS accepted it, XADD succeeded), and a failed subscriber is retried by the broker
        (SNS: the receiver answers 5xx; Redis Streams: the entry stays pending and is reclaimed)."""
        ...

    def subscribe(
        self, topic: str, handler: Handler, *, mode: DeliveryMode | None = None, group: str | None = None
    ) -> None:
        """Run ``handler`` for the topic's messages. ``mode`` says who receives them across processes
        (see ``DeliveryMode``; None: the bus's topic map, given where it is built, else "broadcast");
        ``group`` names the subscriber kind of a "work" subscription (default: the topic): the
        handlers of one group in one process run together, once per message."""
        ...


@runtime_checkable
class MetricsSink(Protocol):
    def increment(self, name: str, value: float = 1.0, **labels: str) -> None: ...
    def observe(self, name: str, value: float, **labels: str) -> None: ...
    def gauge(self, name: str, value: float, **labels: str) -> None:
        """Set a value that can go up and down (e.g. a canary's traffic weight)."""
        ...


@dataclass(frozen=True)
class TenantSpec:
    """What a provisioner needs to know about a tenant."""

    tenant_id: str
    slug: str
    tier: str
    region: str
    template: Mapping[str, Any]
    budget_amount: str = "0"
    budget_currency: str = "USD"
    contacts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedResource:
    kind: str  # object_store | cache_namespace | model_slot | stack | ...
    name: str


@runtime_checkable
class Provisioner(Protocol):
    def plan(self, spec: TenantSpec) -> list[PlannedResource]: ...
    def apply(self, spec: TenantSpec, resource: PlannedResource) -> bool:
        """Make the resource exist; idempotent. True when it was created by this call."""
        ...

    def destroy(self, spec: TenantSpec) -> list[str]: ...
    def list_resources(self, tenant_id: str) -> list[str]: ...


@dataclass(frozen=True)
class RollbackRecord:
    tenant_id: str
    rollback_id: str
    at: str  # ISO-8601 UTC
    reason: str
    evidence: Mapping[str, Any]
    weights_after: Mapping[str, int]


@runtime_checkable
class RollbackLog(Protocol):
    def append(self, record: RollbackRecord) -> bool:
        """Store once; False when this rollback id was already recorded."""
        ...

    def list(self, tenant_id: str, limit: int = 50) -> list[RollbackRecord]: ...
    def purge_tenant(self, tenant_id: str) -> int: ...


@dataclass(frozen=True)
class Notification:
    title: str
    text: str
    severity: str  # info | warning | critical
    facts: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryResult:
    channel: str  # slack | teams
    url: str
    ok: bool
    status: int | None
    attempts: int
    error: str | None = None


@runtime_checkable
class Notifier(Protocol):
    def send(self, contacts: Mapping[str, Any], note: Notification) -> list[DeliveryResult]:
        """Deliver to every webhook in ``contacts``; never raises for a failed delivery."""
        ...


@dataclass(frozen=True)
class TrackedRun:
    """One training run as an experiment tracker records it (the platform stays the source of truth)."""

    tenant_id: str
    model_version_id: str
    stage: str
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    # File name → bytes: evaluation curves (PNG) and the search history (JSON).
    files: Mapping[str, bytes]
    artifact: bytes
    artifact_name: str
    # Per-step series (e.g. each search trial's validation AP), logged as metric histories.
    series: Mapping[str, Sequence[float]] = field(default_factory=dict)


@runtime_checkable
class ExperimentTracker(Protocol):
    """An experiment tracker and model registry mirror (MLflow), one experiment per tenant."""

    @property
    def enabled(self) -> bool: ...

    def log_run(self, run: TrackedRun) -> str:
        """Record the run, its artifact and a registry version; idempotent per model version.
        Returns the tracker's run id; raises ProviderError when the tracker cannot be reached."""
        ...

    def set_alias(self, tenant_id: str, model_version_id: str, stage: str) -> None:
        """Mirror a registry stage on the tracker's version (alias and tag); ProviderError on failure."""
        ...


@dataclass(frozen=True)
class RemoteJob:
    """A training or batch-scoring job as its backend reports it (SageMaker: Describe*Job)."""

    name: str  # the backend's job name, derived from the control plane's job id (idempotent)
    state: Literal["running", "succeeded", "failed", "stopped"]
    arn: str | None = None
    detail: str = ""  # the backend's secondary status, or the failure reason
    percent: float = 0.0
    output_key: str | None = None  # object-store key of the result (training: the model.tar.gz)
    facts: Mapping[str, Any] = field(default_factory=dict)  # lineage: spot, billable seconds, image
    poll_after_s: float = 30.0  # while running: when to ask again


@dataclass(frozen=True)
class TrainingJobSpec:
    tenant_id: str
    job_id: str
    dataset_key: str  # parquet in the tenant's prefix
    labels_key: str  # JSON {txn_id: 0|1} in the tenant's prefix (analysts' verdicts)
    request_key: str  # JSON of ``request`` in the tenant's prefix (a feature set can be large)
    output_prefix: str  # tenants/<id>/training/<job_id>/
    request: Mapping[str, Any]  # fraud_model.pipeline.run_training's request
    spot: bool = False
    instance_type: str = "ml.m5.large"
    max_runtime_s: int = 3600
    max_wait_s: int = 7200  # spot: how long to wait for capacity, runtime included


@runtime_checkable
class TrainingBackend(Protocol):
    """Where training runs: in-process (local) or as a SageMaker Training job."""

    def ensure(self, spec: TrainingJobSpec, progress: Callable[..., None] | None = None) -> RemoteJob:
        """Start the run unless its job exists, and describe it: called again to poll, after a restart
        too, it never starts a second job. ``PermanentProviderError`` for a request it refuses."""
        ...


@dataclass(frozen=True)
class BatchScoringSpec:
    tenant_id: str
    job_id: str
    model: HostedModel  # the version that scores these rows
    input_key: str  # CSV, one feature row per line, in the tenant's prefix
    output_prefix: str  # where the scores go: ``<output_prefix><input file name>.out``, one a line


@runtime_checkable
class BatchJobRunner(Protocol):
    """Scores a file of feature rows with one model version: in-process, or a Batch Transform job."""

    def ensure(self, spec: BatchScoringSpec) -> RemoteJob:
        """Start the job unless it exists, and describe it (called again to poll)."""
        ...
