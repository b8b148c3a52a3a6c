"""``FRAUDRAIL_PROVIDER=aws``: the registry builds every adapter from settings, against moto."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from cdk import config as cdk_config
from control_plane.bootstrap.providers import build_providers
from control_plane.settings import AppSettings
from providers.aws import (
    CloudFormationProvisioner,
    CloudWatchMetrics,
    DynamoFlaggedTransactionStore,
    DynamoRollbackLog,
    S3ObjectStore,
    SageMakerModelHost,
    SnsEventBus,
    build_rollback_log,
)
from providers.aws._util import sagemaker_slug, tenant_endpoint_name, tenant_stack_name
from providers.aws.factory import AwsClients
from providers.aws.settings import AwsSettings
from providers.ports import FlaggedRecord
from providers.redis_cache import RedisFeatureCache
from tests.aws.conftest import REGION, _free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.aws


@pytest.mark.parametrize("tenant_id", ["ten_3f2a9c", "ten_" + "ab" * 16, "Ten__Mixed--Case_1"])
def test_names_match_the_cdk_app(tenant_id: str) -> None:
    assert sagemaker_slug(tenant_id) == cdk_config.sagemaker_slug(tenant_id)
    assert tenant_stack_name(tenant_id) == cdk_config.tenant_stack_name(tenant_id)
    assert tenant_endpoint_name(tenant_id) == cdk_config.tenant_endpoint_name(tenant_id)


def test_registry_builds_the_aws_providers_from_settings(
    clients: AwsClients,
    aws_settings: AwsSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "fake-secret-do-not-log-8c1d"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("FRAUDRAIL_AWS_REGION", REGION)
    monkeypatch.setenv("FRAUDRAIL_AWS_ENDPOINT_URL", str(aws_settings.endpoint_url))
    monkeypatch.setenv("FRAUDRAIL_AWS_BUCKET", aws_settings.bucket)
    monkeypatch.setenv("FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/fraudrail-model")
    receiver_port = _free_port()
    monkeypatch.setenv("FRAUDRAIL_AWS_RECEIVER_PORT", str(receiver_port))
    caplog.set_level(logging.DEBUG)
    settings = AppSettings(provider="aws", bus_backend="sns", cache_backend="redis", home=tmp_path)
    providers = build_providers(settings, sessionmaker())
    assert isinstance(providers.metrics, CloudWatchMetrics)
    try:
        assert isinstance(providers.object_store, S3ObjectStore)
        assert isinstance(providers.flagged_store, DynamoFlaggedTransactionStore)
        assert isinstance(providers.model_host, SageMakerModelHost)
        assert isinstance(providers.event_bus, SnsEventBus)
        assert isinstance(providers.provisioner, CloudFormationProvisioner)
        assert isinstance(providers.feature_cache, RedisFeatureCache)
        assert isinstance(providers.rollback_log, DynamoRollbackLog)

        providers.object_store.put("tenants/ten_f/a.bin", b"via settings")
        assert clients.s3.get_object(Bucket=aws_settings.bucket, Key="tenants/ten_f/a.bin")[
            "Body"
        ].read() == (b"via settings")
        assert providers.flagged_store.put(FlaggedRecord("ten_f", "flg_1", {"score": 0.7})) is True
        seen: list[object] = []
        providers.event_bus.subscribe("alarms", lambda _t, m: seen.append(dict(m)))
        providers.event_bus.publish("alarms", {"tenant_id": "ten_f"})
        wait_until(lambda: seen, timeout_s=10, what="an SNS delivery")
        assert str(providers.event_bus.receiver_url).endswith(f":{receiver_port}")  # the setting's port
        providers.metrics.increment("fraudrail_integrity_failures_total", tenant="ten_f")
        assert providers.metrics.flush() == 1
        log = build_rollback_log(aws_settings, clients)
        assert log.list("ten_f") == []
    finally:
        providers.metrics.close()
        bus = providers.event_bus
        assert isinstance(bus, SnsEventBus)
        bus.close()
    assert secret not in caplog.text
