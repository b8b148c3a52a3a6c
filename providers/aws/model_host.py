"""Model host on SageMaker (boto3 only).

Hosting kinds, per tenant slot:

* ``pooled`` -- the platform's multi-model endpoint (``pooled_endpoint``). No per-version
  SageMaker model: a version is its verified ``model.tar.gz`` under the endpoint's S3 prefix
  (SageMaker's multi-model loader fetches tarballs), invoked with ``TargetModel`` (that key
  relative to ``pooled_model_prefix``). Weights are recorded only; the caller picks the version.
* ``dedicated`` / ``serverless`` -- the tenant's own endpoint ``fraudrail-<tenant-slug>`` (the
  name the CDK tenant stack uses). Each version is a SageMaker model and a production variant
  named after the version id; weights are the variants' ``DesiredWeight`` (basis points).

The endpoint's variant set is reconciled lazily: ``deploy`` registers the model, and the first
``set_weights`` or ``invoke`` that needs a variant creates the endpoint (or moves it to a new
endpoint config with ``UpdateEndpoint``) and waits until it is ``InService``. Slot records
(kind, versions, weights) are JSON objects in the object store under ``model-host/``, outside
``tenants/<id>/`` so that purging the tenant's objects first cannot orphan its endpoint.
Record writes assume one writer per tenant at a time (the worker); a process lock serialises
writers inside a process.

Integrity: ``deploy`` hashes the artifact in the object store and refuses a mismatch with
``ArtifactIntegrityError``; ``invoke`` re-checks when the last check is older than
``verify_ttl_s``.

Per check (``weights``, ``invoke``) the only call is ``InvokeEndpoint``: records are held in
memory (``max_tenants``, ``record_ttl_s``) with the endpoint's live variants; the
``serving.changed`` broadcast (``on_serving_changed``) re-reads a tenant's off the request path.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from providers.aws._util import AwsError, provider_error
from providers.aws.model_archive import ensure_model_archive, model_archive_key
from providers.aws.model_host_endpoint import SageMakerEndpoints
from providers.aws.model_host_records import (
    FULL_WEIGHT,
    KINDS,
    Record,
    Version,
    csv_body,
    not_found,
    now_iso,
    parse_scores,
    validated_weights,
    variant_weights,
)
from providers.lru import BoundedMap
from providers.ports import (
    ArtifactIntegrityError,
    HostedModel,
    ModelSlot,
    ObjectStore,
    ProviderError,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

__all__ = ["FULL_WEIGHT", "KINDS", "SageMakerModelHost", "csv_body", "parse_scores"]

log = logging.getLogger(__name__)


class SageMakerModelHost(SageMakerEndpoints):
    def __init__(
        self,
        sm_client: SageMakerClient,
        runtime_client: SageMakerRuntimeClient,
        object_store: ObjectStore,
        *,
        execution_role_arn: str | None,
        image_uri: str | None,
        pooled_endpoint: str,
        bucket: str,
        pooled_model_prefix: str = "tenants/",
        instance_type: str = "ml.m5.xlarge",
        initial_instance_count: int = 1,
        kms_key_id: str | None = None,
        serverless_memory_mb: int = 2048,
        serverless_max_concurrency: int = 5,
        records_prefix: str = "model-host/",
        poll_s: float = 15.0,
        endpoint_timeout_s: float = 3600.0,
        verify_ttl_s: float = 300.0,
        record_ttl_s: float = 60.0,
        max_tenants: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sm = sm_client
        self._runtime = runtime_client
        self._store = object_store
        self._role_arn = execution_role_arn
        self._image_uri = image_uri
        self._pooled_endpoint = pooled_endpoint
        self._bucket = bucket
        self._pooled_prefix = pooled_model_prefix
        self._instance_type = instance_type
        self._instance_count = initial_instance_count
        self._kms_key_id = kms_key_id
        self._serverless = {
            "MemorySizeInMB": serverless_memory_mb,
            "MaxConcurrency": serverless_max_concurrency,
        }
        self._records_prefix = records_prefix
        self._poll_s = poll_s
        self._endpoint_timeout_s = endpoint_timeout_s
        self._verify_ttl_s = verify_ttl_s
        self._clock = clock
        self._lock = threading.RLock()
        # tenant -> its record, or None for "no slot" (a miss is remembered too, for the TTL).
        self._cache: BoundedMap[str, tuple[Record | None]] = BoundedMap(
            max_tenants, default_ttl_s=record_ttl_s, clock=clock
        )
        self._verified: dict[tuple[str, str], float] = {}
        self._live: dict[str, frozenset[str]] = {}  # tenant -> variants known to be on its endpoint
        self._pause = threading.Event()

    def target_model(self, artifact_key: str) -> str:
        """The ``TargetModel`` of an artifact on the pooled multi-model endpoint."""
        if not artifact_key.startswith(self._pooled_prefix):
            raise ProviderError(
                f"artifact {artifact_key!r} is outside the pooled endpoint's prefix {self._pooled_prefix!r}"
            )
        return artifact_key[len(self._pooled_prefix) :]

    def _record_key(self, tenant_id: str) -> str:
        return f"{self._records_prefix}{tenant_id}.json"

    def _load(self, tenant_id: str, *, fresh: bool = True) -> Record | None:
        """The tenant's record: from memory when ``fresh`` is False and it is held, else from S3."""
        if not fresh:
            with self._lock:
                cached = self._cache.get(tenant_id)
            if cached is not None:
                return cached[0]
        try:
            record: Record | None = Record.from_json(self._store.get(self._record_key(tenant_id)))
        except KeyError:
            record = None
        with self._lock:
            self._cache.set(tenant_id, (record,))
        return record

    def _save(self, record: Record) -> None:
        self._store.put(self._record_key(record.tenant_id), record.to_json())
        with self._lock:
            self._cache.set(record.tenant_id, (record,))

    def on_serving_changed(self, _topic: str, message: Mapping[str, Any]) -> None:
        """Bus handler: re-read the tenant's record and live variants now, off the request path."""
        tenant_id = message.get("tenant_id")
        if isinstance(tenant_id, str):
            self.refresh(tenant_id)

    def refresh(self, tenant_id: str) -> None:
        try:
            record = self._load(tenant_id, fresh=True)
            live = None
            if record is not None and record.kind != "pooled" and record.versions:
                live = self._endpoint_variants(self.endpoint_name(tenant_id))
        except ProviderError as exc:
            # Forget what is held: the next check reads it (and fails or succeeds on its own).
            log.warning("could not refresh the model-host record of %s: %s", tenant_id, exc)
            with self._lock:
                self._cache.pop(tenant_id)
                self._live.pop(tenant_id, None)
            return
        with self._lock:
            if live is None:
                self._live.pop(tenant_id, None)
            else:
                self._live[tenant_id] = live

    def _endpoint_variants(self, endpoint: str) -> frozenset[str] | None:
        """The variants of the endpoint's current config when it is in service (read only)."""
        description = self._describe_endpoint(endpoint)
        if description is None or description.get("EndpointStatus") != "InService":
            return None
        config = self._describe_config(str(description["EndpointConfigName"]))
        return frozenset(str(v["VariantName"]) for v in config.get("ProductionVariants", []))

    def _require(self, tenant_id: str, *, fresh: bool = True) -> Record:
        record = self._load(tenant_id, fresh=fresh)
        if record is None:
            raise ProviderError(f"tenant {tenant_id} has no model-hosting slot (ensure_slot first)")
        return record

    def ensure_slot(self, tenant_id: str, kind: str) -> bool:
        if kind not in KINDS:
            raise ValueError(f"unknown slot kind {kind!r}; expected one of {', '.join(KINDS)}")
        with self._lock:
            existing = self._load(tenant_id)
            if existing is not None:
                if existing.kind != kind:
                    log.warning(
                        "tenant %s already has a %s slot (asked for %s)", tenant_id, existing.kind, kind
                    )
                return False
            self._save(Record(tenant_id=tenant_id, kind=kind, created_at=now_iso()))
            return True

    def slots(self, tenant_id: str) -> list[ModelSlot]:
        record = self._load(tenant_id)
        return [] if record is None else [ModelSlot(tenant_id=tenant_id, kind=record.kind)]

    def delete_tenant(self, tenant_id: str) -> int:
        """Delete the tenant's endpoint (if this host created it), configs, models and slot record."""
        with self._lock:
            record = self._load(tenant_id)
            removed = 0
            if record is not None and record.endpoint_owner == "host":
                removed += self._delete_endpoint(self.endpoint_name(tenant_id))
            removed += self._delete_named("endpoint_config", self._config_prefix(tenant_id))
            removed += self._delete_named("model", self._model_prefix(tenant_id))
            if record is not None:
                self._store.delete_prefix(self._record_key(tenant_id))
                removed += 1
            self._cache.pop(tenant_id)
            self._live.pop(tenant_id, None)
            for key in [k for k in self._verified if k[0] == tenant_id]:
                del self._verified[key]
            return removed

    def _verify(self, tenant_id: str, version_id: str, artifact_key: str, sha256: str) -> None:
        try:
            data = self._store.get(artifact_key)
        except KeyError as exc:
            raise ArtifactIntegrityError(f"artifact {artifact_key} of {version_id} is missing") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256.lower():
            raise ArtifactIntegrityError(
                f"artifact {artifact_key} of {version_id} has sha256 {digest}, the registry says {sha256}"
            )
        with self._lock:
            self._verified[(tenant_id, version_id)] = self._clock()

    def deploy(self, model: HostedModel) -> None:
        with self._lock:
            record = self._require(model.tenant_id)
            self._verify(model.tenant_id, model.version_id, model.artifact_key, model.sha256)
            existing = record.version(model.version_id)
            if existing is not None:
                if existing.sha256 != model.sha256.lower() or existing.artifact_key != model.artifact_key:
                    raise ProviderError(
                        f"version {model.version_id} is already deployed with another artifact"
                    )
                return
            model_name: str | None = None
            if record.kind == "pooled":
                self.target_model(model.artifact_key)  # refuses keys the endpoint cannot load
                ensure_model_archive(self._store, model)  # verified, then uploaded once
            else:
                model_name = self.model_name(model.tenant_id, model.version_id)
                self._create_model(model_name, model)
            record.versions.append(
                Version(
                    version_id=model.version_id,
                    artifact_key=model.artifact_key,
                    sha256=model.sha256.lower(),
                    model_name=model_name,
                    variant=self.variant_name(model.version_id),
                    deployed_at=now_iso(),
                )
            )
            self._save(record)

    def undeploy(self, tenant_id: str, version_id: str) -> None:
        with self._lock:
            record = self._require(tenant_id)
            version = record.version(version_id)
            if version is None:
                return
            if record.weights.get(version_id, 0) > 0:
                raise ValueError(
                    f"version {version_id} still takes {record.weights[version_id]} bp of traffic: "
                    "shift it away with set_weights first"
                )
            record.versions.remove(version)
            record.weights.pop(version_id, None)
            if record.kind != "pooled":
                if record.versions and self._describe_endpoint(self.endpoint_name(tenant_id)) is not None:
                    self._reconcile(record)
                elif not record.versions and record.endpoint_owner == "host":
                    self._delete_endpoint(self.endpoint_name(tenant_id))
                    record.endpoint_owner = None
                    self._live.pop(tenant_id, None)
                if version.model_name:
                    try:
                        self._sm.delete_model(ModelName=version.model_name)
                    except AwsError as exc:
                        if not not_found(exc):
                            raise provider_error(f"sagemaker delete_model {version.model_name}", exc) from exc
            self._verified.pop((tenant_id, version_id), None)
            self._save(record)

    def deployed(self, tenant_id: str) -> list[HostedModel]:
        record = self._load(tenant_id)
        if record is None:
            return []
        models = [HostedModel(tenant_id, v.version_id, v.artifact_key, v.sha256) for v in record.versions]
        return sorted(models, key=lambda m: m.version_id)

    def set_weights(self, tenant_id: str, weights: Mapping[str, int]) -> None:
        with self._lock:
            record = self._require(tenant_id)
            full = validated_weights(record, weights)
            if record.kind != "pooled":
                endpoint = self._reconcile(record, full)
                by_version = {v.version_id: v for v in record.versions}
                try:
                    self._sm.update_endpoint_weights_and_capacities(
                        EndpointName=endpoint,
                        DesiredWeightsAndCapacities=[
                            {"VariantName": by_version[vid].variant, "DesiredWeight": float(bp)}
                            for vid, bp in full.items()
                        ],
                    )
                except AwsError as exc:
                    raise provider_error(f"sagemaker update weights of {endpoint}", exc) from exc
                self._wait_in_service(endpoint)
            record.weights = full
            self._save(record)

    def weights(self, tenant_id: str) -> dict[str, int]:
        """The weights this host last set (read back from the endpoint before it recorded them),
        from memory: the hot path asks on every check. ``verify_weights`` asks AWS."""
        record = self._load(tenant_id, fresh=False)
        return {} if record is None else dict(record.weights)

    def verify_weights(self, tenant_id: str) -> dict[str, int]:
        """Read back from AWS: the endpoint's variant weights (``DescribeEndpoint``), never the record.

        A pooled slot has no variants (the caller picks the version): its weights are the record
        re-read from the object store. No endpoint means nothing is served: ``{}``.
        """
        record = self._load(tenant_id, fresh=True)
        if record is None:
            return {}
        if record.kind == "pooled":
            return dict(record.weights)
        description = self._describe_endpoint(self.endpoint_name(tenant_id))
        if description is None:
            return {}
        return variant_weights(record, description)

    def invoke(self, tenant_id: str, version_id: str, rows: Sequence[Sequence[float]]) -> list[float]:
        if not rows:
            return []
        record = self._require(tenant_id, fresh=False)
        version = record.version(version_id)
        if version is None:
            record = self._require(tenant_id)
            version = record.version(version_id)
            if version is None:
                raise ProviderError(f"version {version_id} is not deployed for tenant {tenant_id}")
        with self._lock:
            checked = self._verified.get((tenant_id, version_id))
        if checked is None or self._clock() - checked > self._verify_ttl_s:
            self._verify(tenant_id, version_id, version.artifact_key, version.sha256)
        params: dict[str, Any] = {"ContentType": "text/csv", "Accept": "text/csv", "Body": csv_body(rows)}
        if record.kind == "pooled":
            params["EndpointName"] = self._pooled_endpoint
            params["TargetModel"] = self.target_model(model_archive_key(version.artifact_key))
        else:
            params["EndpointName"] = self.endpoint_name(tenant_id)
            params["TargetVariant"] = version.variant
            if version.variant not in self._live.get(tenant_id, frozenset()):
                with self._lock:
                    self._reconcile(self._require(tenant_id))
        try:
            response = self._runtime.invoke_endpoint(**params)
            body = response["Body"].read()
        except AwsError as exc:
            raise provider_error(f"sagemaker invoke {params['EndpointName']}", exc) from exc
        try:
            scores = parse_scores(body)
        except ValueError as exc:
            raise ProviderError(
                f"endpoint {params['EndpointName']} answered an unreadable body: {exc}"
            ) from exc
        if len(scores) != len(rows):
            raise ProviderError(
                f"endpoint {params['EndpointName']} returned {len(scores)} scores for {len(rows)} rows"
            )
        return scores

    def explain(
        self, tenant_id: str, version_id: str, row: Sequence[float], top_k: int
    ) -> list[dict[str, Any]]:
        """SageMaker's inference containers return scores only: no reason codes here."""
        del tenant_id, version_id, row, top_k
        return []
