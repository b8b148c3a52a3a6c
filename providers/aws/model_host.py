"""Model host on SageMaker (boto3 only).

Hosting kinds, per tenant slot:

* ``pooled`` -- the platform's multi-model endpoint (``pooled_endpoint``). No per-version
  SageMaker model: a version is its artifact under the endpoint's S3 prefix and is invoked
  with ``TargetModel`` (the artifact key relative to ``pooled_model_prefix``). Weights are
  recorded only; the caller picks the version it invokes.
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
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from providers.aws._util import (
    AwsError,
    bounded_name,
    error_code,
    error_message,
    provider_error,
    sagemaker_slug,
    short_hash,
    tenant_endpoint_name,
)
from providers.ports import (
    ArtifactIntegrityError,
    HostedModel,
    ModelSlot,
    ObjectStore,
    ProviderError,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import ProductionVariantTypeDef
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

log = logging.getLogger(__name__)

KINDS = ("serverless", "pooled", "dedicated")
FULL_WEIGHT = 10_000
_SETTLING = {"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}
_NOT_FOUND_MARKERS = ("could not find", "does not exist", "not found")


@dataclass
class _Version:
    version_id: str
    artifact_key: str
    sha256: str
    model_name: str | None
    variant: str
    deployed_at: str


@dataclass
class _Record:
    tenant_id: str
    kind: str
    created_at: str
    endpoint_owner: str | None = None  # "host" when this adapter created the tenant's endpoint
    versions: list[_Version] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)

    def version(self, version_id: str) -> _Version | None:
        return next((v for v in self.versions if v.version_id == version_id), None)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> _Record:
        raw = json.loads(data)
        versions = [_Version(**v) for v in raw.pop("versions", [])]
        weights = {str(k): int(v) for k, v in raw.pop("weights", {}).items()}
        return cls(versions=versions, weights=weights, **raw)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _not_found(exc: BaseException) -> bool:
    message = error_message(exc).lower()
    return error_code(exc) in {"ValidationException", "ResourceNotFound"} and any(
        marker in message for marker in _NOT_FOUND_MARKERS
    )


def csv_body(rows: Sequence[Sequence[float]]) -> bytes:
    """Feature rows as SageMaker's ``text/csv`` (no header; NaN as an empty field)."""
    lines = []
    for row in rows:
        lines.append(",".join("" if math.isnan(float(v)) else repr(float(v)) for v in row))
    return ("\n".join(lines) + "\n").encode()


def parse_scores(body: bytes | str) -> list[float]:
    """One score per row from a CSV / newline / JSON-list response body."""
    text = body.decode() if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return []
    if text[0] in "[{":
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("predictions", data.get("scores"))
        if not isinstance(data, list):
            raise ValueError("a JSON body must be a list or carry 'predictions'")
        out = []
        for item in data:
            if isinstance(item, list) and len(item) == 1:
                item = item[0]
            if isinstance(item, dict):
                item = item.get("score")
            out.append(float(item))
        return out
    return [float(cell) for line in text.splitlines() for cell in line.split(",") if cell.strip()]


class SageMakerModelHost:
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
        record_ttl_s: float = 30.0,
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
        self._record_ttl_s = record_ttl_s
        self._clock = clock
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[float, _Record]] = {}
        self._verified: dict[tuple[str, str], float] = {}
        self._live: dict[str, frozenset[str]] = {}  # tenant -> variants known to be on its endpoint
        self._pause = threading.Event()

    # ------------------------------------------------------------------ names

    @staticmethod
    def _tenant_part(tenant_id: str) -> str:
        slug = sagemaker_slug(tenant_id)
        return slug if len(slug) <= 36 else f"{slug[:27].rstrip('-')}-{short_hash(tenant_id, 8)}"

    def endpoint_name(self, tenant_id: str) -> str:
        """The tenant's own endpoint (dedicated and serverless slots)."""
        return tenant_endpoint_name(tenant_id)

    def model_name(self, tenant_id: str, version_id: str) -> str:
        return f"{self._model_prefix(tenant_id)}{short_hash(version_id, 12)}"

    def _model_prefix(self, tenant_id: str) -> str:
        return f"fraudrail-{self._tenant_part(tenant_id)}-m-"

    def _config_prefix(self, tenant_id: str) -> str:
        return f"fraudrail-{self._tenant_part(tenant_id)}-cfg-"

    @staticmethod
    def variant_name(version_id: str) -> str:
        """A version id as a production variant name (``mv_1`` -> ``mv-1-<hash>``)."""
        return bounded_name(version_id, 63, keep_case=True)

    def target_model(self, artifact_key: str) -> str:
        """The ``TargetModel`` of an artifact on the pooled multi-model endpoint."""
        if not artifact_key.startswith(self._pooled_prefix):
            raise ProviderError(
                f"artifact {artifact_key!r} is outside the pooled endpoint's prefix {self._pooled_prefix!r}"
            )
        return artifact_key[len(self._pooled_prefix) :]

    # ---------------------------------------------------------------- records

    def _record_key(self, tenant_id: str) -> str:
        return f"{self._records_prefix}{tenant_id}.json"

    def _load(self, tenant_id: str, *, fresh: bool = True) -> _Record | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(tenant_id)
            if not fresh and cached is not None and now - cached[0] <= self._record_ttl_s:
                return cached[1]
        try:
            record = _Record.from_json(self._store.get(self._record_key(tenant_id)))
        except KeyError:
            with self._lock:
                self._cache.pop(tenant_id, None)
            return None
        with self._lock:
            self._cache[tenant_id] = (now, record)
        return record

    def _save(self, record: _Record) -> None:
        self._store.put(self._record_key(record.tenant_id), record.to_json())
        with self._lock:
            self._cache[record.tenant_id] = (self._clock(), record)

    def _require(self, tenant_id: str, *, fresh: bool = True) -> _Record:
        record = self._load(tenant_id, fresh=fresh)
        if record is None:
            raise ProviderError(f"tenant {tenant_id} has no model-hosting slot (ensure_slot first)")
        return record

    # ------------------------------------------------------------------ slots

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
            self._save(_Record(tenant_id=tenant_id, kind=kind, created_at=_now()))
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
            self._cache.pop(tenant_id, None)
            self._live.pop(tenant_id, None)
            for key in [k for k in self._verified if k[0] == tenant_id]:
                del self._verified[key]
            return removed

    def _delete_endpoint(self, name: str) -> int:
        try:
            self._sm.delete_endpoint(EndpointName=name)
        except AwsError as exc:
            if _not_found(exc):
                return 0
            raise provider_error(f"sagemaker delete_endpoint {name}", exc) from exc
        return 1

    def _delete_named(self, what: str, prefix: str) -> int:
        names: list[str] = []
        try:
            if what == "model":
                for page in self._sm.get_paginator("list_models").paginate(NameContains=prefix):
                    names.extend(m["ModelName"] for m in page.get("Models", []))
            else:
                for cfg_page in self._sm.get_paginator("list_endpoint_configs").paginate(NameContains=prefix):
                    names.extend(c["EndpointConfigName"] for c in cfg_page.get("EndpointConfigs", []))
        except AwsError as exc:
            raise provider_error(f"sagemaker list {what}s {prefix}", exc) from exc
        removed = 0
        for name in names:
            if not name.startswith(prefix):
                continue
            try:
                if what == "model":
                    self._sm.delete_model(ModelName=name)
                else:
                    self._sm.delete_endpoint_config(EndpointConfigName=name)
            except AwsError as exc:
                if _not_found(exc):
                    continue
                raise provider_error(f"sagemaker delete {what} {name}", exc) from exc
            removed += 1
        return removed

    # --------------------------------------------------------------- versions

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
            else:
                model_name = self.model_name(model.tenant_id, model.version_id)
                self._create_model(model_name, model)
            record.versions.append(
                _Version(
                    version_id=model.version_id,
                    artifact_key=model.artifact_key,
                    sha256=model.sha256.lower(),
                    model_name=model_name,
                    variant=self.variant_name(model.version_id),
                    deployed_at=_now(),
                )
            )
            self._save(record)

    def _create_model(self, name: str, model: HostedModel) -> None:
        if not self._role_arn or not self._image_uri:
            raise ProviderError(
                "SageMaker hosting needs an execution role and an image "
                "(FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN, FRAUDRAIL_AWS_INFERENCE_IMAGE_URI)"
            )
        try:
            self._sm.describe_model(ModelName=name)
            return  # created by an earlier, interrupted attempt
        except AwsError as exc:
            if not _not_found(exc):
                raise provider_error(f"sagemaker describe_model {name}", exc) from exc
        try:
            self._sm.create_model(
                ModelName=name,
                ExecutionRoleArn=self._role_arn,
                PrimaryContainer={
                    "Image": self._image_uri,
                    "ModelDataUrl": f"s3://{self._bucket}/{model.artifact_key}",
                    "Environment": {"FRAUDRAIL_MODEL_SHA256": model.sha256.lower()},
                },
                Tags=[
                    {"Key": "tenant_id", "Value": model.tenant_id},
                    {"Key": "version_id", "Value": model.version_id},
                ],
            )
        except AwsError as exc:
            if "already exist" in error_message(exc).lower():
                return
            raise provider_error(f"sagemaker create_model {name}", exc) from exc

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
                        if not _not_found(exc):
                            raise provider_error(f"sagemaker delete_model {version.model_name}", exc) from exc
            self._verified.pop((tenant_id, version_id), None)
            self._save(record)

    def deployed(self, tenant_id: str) -> list[HostedModel]:
        record = self._load(tenant_id)
        if record is None:
            return []
        models = [HostedModel(tenant_id, v.version_id, v.artifact_key, v.sha256) for v in record.versions]
        return sorted(models, key=lambda m: m.version_id)

    # ---------------------------------------------------------------- weights

    def set_weights(self, tenant_id: str, weights: Mapping[str, int]) -> None:
        with self._lock:
            record = self._require(tenant_id)
            full = self._validated(record, weights)
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

    @staticmethod
    def _validated(record: _Record, weights: Mapping[str, int]) -> dict[str, int]:
        deployed = [v.version_id for v in record.versions]
        unknown = sorted(set(weights) - set(deployed))
        if unknown:
            raise ProviderError(f"versions not deployed for {record.tenant_id}: {unknown}")
        for version_id, bp in weights.items():
            if isinstance(bp, bool) or not isinstance(bp, int) or not 0 <= bp <= FULL_WEIGHT:
                raise ValueError(f"weight of {version_id} must be an integer 0..{FULL_WEIGHT} (basis points)")
        if sum(weights.values()) != FULL_WEIGHT:
            raise ValueError(f"weights must sum to {FULL_WEIGHT} basis points, not {sum(weights.values())}")
        return {vid: int(weights.get(vid, 0)) for vid in deployed}

    def weights(self, tenant_id: str) -> dict[str, int]:
        record = self._load(tenant_id)
        if record is None:
            return {}
        if record.kind == "pooled":
            return dict(record.weights)
        description = self._describe_endpoint(self.endpoint_name(tenant_id))
        if description is None:
            return dict(record.weights)
        by_variant = {v.variant: v.version_id for v in record.versions}
        raw: dict[str, float] = {}
        for variant in description.get("ProductionVariants", []):
            version_id = by_variant.get(str(variant.get("VariantName")))
            if version_id is None:
                continue  # a variant this host did not create (e.g. the CDK stack's own)
            weight = variant.get("CurrentWeight", variant.get("DesiredWeight", 0.0))
            raw[version_id] = float(weight or 0.0)
        return _as_basis_points(raw)

    # --------------------------------------------------------------- endpoint

    def _describe_endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._sm.describe_endpoint(EndpointName=name))
        except AwsError as exc:
            if _not_found(exc):
                return None
            raise provider_error(f"sagemaker describe_endpoint {name}", exc) from exc

    def _variants(self, record: _Record, weights: Mapping[str, int]) -> list[ProductionVariantTypeDef]:
        if not any(weights.get(v.version_id, 0) for v in record.versions):
            weights = {record.versions[0].version_id: FULL_WEIGHT}
        variants: list[ProductionVariantTypeDef] = []
        for version in record.versions:
            assert version.model_name is not None
            variant: ProductionVariantTypeDef = {
                "VariantName": version.variant,
                "ModelName": version.model_name,
                "InitialVariantWeight": float(weights.get(version.version_id, 0)),
            }
            if record.kind == "serverless":
                variant["ServerlessConfig"] = {
                    "MemorySizeInMB": self._serverless["MemorySizeInMB"],
                    "MaxConcurrency": self._serverless["MaxConcurrency"],
                }
            else:
                variant["InstanceType"] = self._instance_type  # type: ignore[typeddict-item]
                variant["InitialInstanceCount"] = self._instance_count
            variants.append(variant)
        return variants

    def _reconcile(self, record: _Record, weights: Mapping[str, int] | None = None) -> str:
        """Make the tenant's endpoint serve exactly its deployed versions; returns its name."""
        endpoint = self.endpoint_name(record.tenant_id)
        if not record.versions:
            raise ProviderError(f"tenant {record.tenant_id} has no deployed version")
        desired = {(v.variant, v.model_name) for v in record.versions}
        description = self._describe_endpoint(endpoint)
        if description is not None and description.get("EndpointStatus") in _SETTLING:
            description = self._wait_settled(endpoint)
        if description is not None and description.get("EndpointStatus") == "Failed":
            reason = description.get("FailureReason") or "no reason given"
            if record.endpoint_owner != "host":
                raise ProviderError(f"endpoint {endpoint} is Failed: {reason}")
            log.warning("endpoint %s is Failed (%s): creating it again", endpoint, reason)
            self._delete_endpoint(endpoint)
            self._wait_settled(endpoint)
            description = None
        current_weights: dict[str, int] = dict(weights or record.weights)
        if description is not None:
            config = self._describe_config(str(description["EndpointConfigName"]))
            current = {
                (str(v["VariantName"]), str(v["ModelName"])) for v in config.get("ProductionVariants", [])
            }
            if current == desired:
                self._live[record.tenant_id] = frozenset(v for v, _ in desired)
                return endpoint
            if weights is None:
                by_variant = {v.variant: v.version_id for v in record.versions}
                live = {
                    by_variant[str(v["VariantName"])]: float(v.get("CurrentWeight", 0.0) or 0.0)
                    for v in description.get("ProductionVariants", [])
                    if str(v.get("VariantName")) in by_variant
                }
                current_weights = _as_basis_points(live) if any(live.values()) else current_weights
        variants = self._variants(record, current_weights)
        config_name = self._config_prefix(record.tenant_id) + short_hash(
            json.dumps([*sorted(desired), record.kind, self._instance_type]), 12
        )
        self._create_config(config_name, variants, record.tenant_id)
        try:
            if description is None:
                record.endpoint_owner = "host"
                self._save(record)  # before creating it, so a crash cannot orphan the endpoint
                self._sm.create_endpoint(
                    EndpointName=endpoint,
                    EndpointConfigName=config_name,
                    Tags=[{"Key": "tenant_id", "Value": record.tenant_id}],
                )
            else:
                self._sm.update_endpoint(
                    EndpointName=endpoint, EndpointConfigName=config_name, RetainAllVariantProperties=False
                )
        except AwsError as exc:
            raise provider_error(f"sagemaker endpoint {endpoint} -> {config_name}", exc) from exc
        self._wait_in_service(endpoint)
        self._live[record.tenant_id] = frozenset(v for v, _ in desired)
        return endpoint

    def _describe_config(self, name: str) -> dict[str, Any]:
        try:
            return dict(self._sm.describe_endpoint_config(EndpointConfigName=name))
        except AwsError as exc:
            raise provider_error(f"sagemaker describe_endpoint_config {name}", exc) from exc

    def _create_config(self, name: str, variants: list[ProductionVariantTypeDef], tenant_id: str) -> None:
        try:
            self._sm.describe_endpoint_config(EndpointConfigName=name)
            return  # same variant set as an earlier attempt
        except AwsError as exc:
            if not _not_found(exc):
                raise provider_error(f"sagemaker describe_endpoint_config {name}", exc) from exc
        params: dict[str, Any] = {
            "EndpointConfigName": name,
            "ProductionVariants": variants,
            "Tags": [{"Key": "tenant_id", "Value": tenant_id}],
        }
        if self._kms_key_id:
            params["KmsKeyId"] = self._kms_key_id
        try:
            self._sm.create_endpoint_config(**params)
        except AwsError as exc:
            if "already exist" in error_message(exc).lower():
                return
            raise provider_error(f"sagemaker create_endpoint_config {name}", exc) from exc

    def _wait_settled(self, endpoint: str) -> dict[str, Any] | None:
        """Poll until the endpoint is neither changing nor being deleted (None once it is gone)."""
        deadline = self._clock() + self._endpoint_timeout_s
        while True:
            description = self._describe_endpoint(endpoint)
            if description is None:
                return None
            status = str(description.get("EndpointStatus"))
            if status not in _SETTLING and status != "Deleting":
                return description
            if self._clock() > deadline:
                raise ProviderError(
                    f"endpoint {endpoint} still {status} after {self._endpoint_timeout_s:.0f}s"
                )
            log.info("waiting for endpoint %s (%s)", endpoint, status)
            self._pause.wait(self._poll_s)

    def _wait_in_service(self, endpoint: str) -> dict[str, Any]:
        description = self._wait_settled(endpoint)
        if description is None:
            raise ProviderError(f"endpoint {endpoint} disappeared while waiting for it")
        status = str(description.get("EndpointStatus"))
        if status != "InService":
            reason = description.get("FailureReason") or "no reason given"
            raise ProviderError(f"endpoint {endpoint} is {status}: {reason}")
        return description

    # ----------------------------------------------------------------- invoke

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
            params["TargetModel"] = self.target_model(version.artifact_key)
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


def _as_basis_points(raw: Mapping[str, float]) -> dict[str, int]:
    """Relative weights as basis points summing to 10,000 (largest remainder)."""
    total = sum(raw.values())
    if total <= 0:
        return {k: 0 for k in raw}
    exact = {k: v * FULL_WEIGHT / total for k, v in raw.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    short = FULL_WEIGHT - sum(out.values())
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[:short]:
        out[k] += 1
    return out
