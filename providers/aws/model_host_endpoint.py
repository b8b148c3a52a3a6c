"""SageMaker endpoint plumbing of the model host: names, models, endpoint configs, waiting.

``SageMakerEndpoints`` is a base class of ``SageMakerModelHost`` (``providers/aws/model_host.py``),
split out to keep each module readable; it holds no state of its own.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from providers.aws._util import (
    AwsError,
    bounded_name,
    error_message,
    provider_error,
    sagemaker_slug,
    short_hash,
    tenant_endpoint_name,
)
from providers.aws.model_host_records import (
    FULL_WEIGHT,
    SETTLING,
    Record,
    as_basis_points,
    not_found,
)
from providers.aws.sagemaker_models import ensure_sagemaker_model
from providers.ports import HostedModel, ObjectStore, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import ProductionVariantTypeDef

log = logging.getLogger(__name__)


class SageMakerEndpoints:
    """Endpoint operations; the attributes are set by ``SageMakerModelHost.__init__``."""

    _sm: SageMakerClient
    _role_arn: str | None
    _image_uri: str | None
    _bucket: str
    _store: ObjectStore
    _instance_type: str
    _instance_count: int
    _kms_key_id: str | None
    _serverless: dict[str, int]
    _poll_s: float
    _endpoint_timeout_s: float
    _clock: Callable[[], float]
    _live: dict[str, frozenset[str]]
    _pause: threading.Event

    def _save(self, record: Record) -> None:
        raise NotImplementedError

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

    def _delete_endpoint(self, name: str) -> int:
        try:
            self._sm.delete_endpoint(EndpointName=name)
        except AwsError as exc:
            if not_found(exc):
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
                if not_found(exc):
                    continue
                raise provider_error(f"sagemaker delete {what} {name}", exc) from exc
            removed += 1
        return removed

    def _create_model(self, name: str, model: HostedModel) -> None:
        if not self._role_arn or not self._image_uri:
            raise ProviderError(
                "SageMaker hosting needs an execution role and an image "
                "(FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN, FRAUDRAIL_AWS_INFERENCE_IMAGE_URI)"
            )
        ensure_sagemaker_model(
            self._sm,
            self._store,
            name,
            model,
            bucket=self._bucket,
            role_arn=self._role_arn,
            image_uri=self._image_uri,
            tags=[
                {"Key": "tenant_id", "Value": model.tenant_id},
                {"Key": "version_id", "Value": model.version_id},
            ],
        )

    def _describe_endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._sm.describe_endpoint(EndpointName=name))
        except AwsError as exc:
            if not_found(exc):
                return None
            raise provider_error(f"sagemaker describe_endpoint {name}", exc) from exc

    def _variants(self, record: Record, weights: Mapping[str, int]) -> list[ProductionVariantTypeDef]:
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

    def _reconcile(self, record: Record, weights: Mapping[str, int] | None = None) -> str:
        """Make the tenant's endpoint serve exactly its deployed versions; returns its name."""
        endpoint = self.endpoint_name(record.tenant_id)
        if not record.versions:
            raise ProviderError(f"tenant {record.tenant_id} has no deployed version")
        desired = {(v.variant, v.model_name) for v in record.versions}
        description = self._describe_endpoint(endpoint)
        if description is not None and description.get("EndpointStatus") in SETTLING:
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
                current_weights = as_basis_points(live) if any(live.values()) else current_weights
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
            if not not_found(exc):
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
            if status not in SETTLING and status != "Deleting":
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
