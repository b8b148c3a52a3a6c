"""The SageMaker host's hot path makes no S3 or SageMaker control-plane call per check, and a
``serving.changed`` broadcast refreshes what it holds (against the moto server).

Requests are counted with botocore's ``before-send`` hook on the very clients the host uses, so
a call made through any code path is seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from control_plane.events import SERVING_CHANGED
from providers.aws.factory import AwsClients
from providers.aws.model_host import SageMakerModelHost
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from tests.aws import contracts_extra
from tests.aws.conftest import ACCOUNT, REGION, moto_post
from tests.aws.test_model_host import EndpointUpdates, endpoint_updates, make_host, store  # noqa: F401

pytestmark = pytest.mark.aws

ROWS = [[0.5, 1.0]]


class Requests:
    """Every request each client sends, by ``service.Operation``."""

    def __init__(self, clients: AwsClients) -> None:
        self.seen: Counter[str] = Counter()
        self._hooks = [(c, self._count) for c in (clients.s3, clients.sagemaker, clients.sagemaker_runtime)]
        for client, hook in self._hooks:
            client.meta.events.register("before-send", hook)

    def _count(self, request: Any, **kwargs: Any) -> None:
        self.seen[str(kwargs.get("event_name", "")).removeprefix("before-send.")] += 1

    def close(self) -> None:
        for client, hook in self._hooks:
            client.meta.events.unregister("before-send", hook)

    def control_calls(self) -> dict[str, int]:
        """Requests other than scoring (S3 and the SageMaker control plane)."""
        return {op: n for op, n in self.seen.items() if not op.startswith("sagemaker-runtime.")}


@pytest.fixture
def requests_sent(clients: AwsClients) -> Iterator[Requests]:
    counted = Requests(clients)
    yield counted
    counted.close()


def canned_scores(moto_url: str, variant: str, n: int) -> None:
    """Queue ``n`` answers for moto's InvokeEndpoint (it ignores the model)."""
    result = {"Body": "0.25\n", "ContentType": "text/csv", "InvokedProductionVariant": variant}
    moto_post(
        moto_url,
        "/moto-api/static/sagemaker/endpoint-results",
        {"account_id": ACCOUNT, "region": REGION, "results": [{**result, "CustomAttributes": ""}] * n},
    )


def serving_pair(
    clients: AwsClients, objects: S3ObjectStore, aws: AwsSettings, kind: str
) -> tuple[str, SageMakerModelHost, SageMakerModelHost]:
    """A worker's host that deploys and sets weights, and a serving process's host that scores."""
    worker = make_host(clients, objects, aws)
    serving = make_host(clients, objects, aws, verify_ttl_s=300.0)
    tenant = contracts_extra.new_tenant()
    worker.ensure_slot(tenant, kind)
    for version in ("mv_stable", "mv_canary"):
        model = contracts_extra.hosted(objects, tenant, version)
        worker.deploy(model)
        serving.deploy(model)  # what the serving registry's reload does
    worker.set_weights(tenant, {"mv_stable": 10_000, "mv_canary": 0})
    serving.on_serving_changed(SERVING_CHANGED, {"tenant_id": tenant})  # the promotion's event
    return tenant, worker, serving


@pytest.mark.parametrize("kind", ["dedicated", "serverless", "pooled"])
def test_a_check_calls_only_invoke_endpoint(
    kind: str,
    clients: AwsClients,
    store: S3ObjectStore,  # noqa: F811
    aws_settings: AwsSettings,
    moto_url: str,
    requests_sent: Requests,
) -> None:
    tenant, _, serving = serving_pair(clients, store, aws_settings, kind)
    variant = serving.variant_name("mv_stable")
    checks = 25
    canned_scores(moto_url, variant, checks + 1)
    # The first check may look at the endpoint once (which variants are live); none after it.
    assert serving.weights(tenant) == {"mv_stable": 10_000, "mv_canary": 0}
    assert serving.invoke(tenant, "mv_stable", ROWS) == [0.25]
    requests_sent.seen.clear()
    for _ in range(checks):  # what FraudChecker does per check: route (weights), then invoke
        assert serving.weights(tenant)["mv_stable"] == 10_000
        assert serving.invoke(tenant, "mv_stable", ROWS) == [0.25]
    assert requests_sent.control_calls() == {}
    assert requests_sent.seen == {"sagemaker-runtime.InvokeEndpoint": checks}


@pytest.mark.parametrize("kind", ["dedicated", "pooled"])
def test_serving_changed_refreshes_weights_and_live_variants(
    kind: str,
    clients: AwsClients,
    store: S3ObjectStore,  # noqa: F811
    aws_settings: AwsSettings,
    moto_url: str,
    requests_sent: Requests,
    endpoint_updates: EndpointUpdates,  # noqa: F811
) -> None:
    from control_plane.bootstrap.bus import build_event_bus
    from control_plane.settings import AppSettings

    tenant, worker, serving = serving_pair(clients, store, aws_settings, kind)
    bus = build_event_bus(AppSettings(bus_backend="memory"))
    bus.subscribe(SERVING_CHANGED, serving.on_serving_changed, mode="broadcast")
    canned_scores(moto_url, serving.variant_name("mv_next"), 2)
    serving.invoke(tenant, "mv_stable", ROWS)

    # Another process starts a rollout and adds a version: this one still serves what it holds.
    worker.set_weights(tenant, {"mv_stable": 9_000, "mv_canary": 1_000})
    model = contracts_extra.hosted(store, tenant, "mv_next")
    worker.deploy(model)
    worker.set_weights(tenant, {"mv_stable": 8_000, "mv_canary": 1_000, "mv_next": 1_000})
    requests_sent.seen.clear()
    assert serving.weights(tenant) == {"mv_stable": 10_000, "mv_canary": 0}
    assert requests_sent.seen == {}

    bus.publish(SERVING_CHANGED, {"tenant_id": tenant, "reason": "rollout"})
    assert serving.weights(tenant) == {"mv_stable": 8_000, "mv_canary": 1_000, "mv_next": 1_000}
    serving.deploy(model)  # the serving registry's reload on the same event
    # The event also read the endpoint's live variants: the new version is invoked directly.
    requests_sent.seen.clear()
    assert serving.invoke(tenant, "mv_next", ROWS) == [0.25]
    assert requests_sent.control_calls() == {}


def test_the_composition_root_subscribes_the_host_to_serving_changed(
    clients: AwsClients,
    store: S3ObjectStore,  # noqa: F811
    aws_settings: AwsSettings,
    requests_sent: Requests,
) -> None:
    from control_plane.bootstrap.aws import build_aws_providers
    from control_plane.settings import AppSettings

    built = build_aws_providers(AppSettings(bus_backend="memory"), aws_settings, None, clients=clients)  # type: ignore[arg-type]
    try:
        host = built.model_host
        assert isinstance(host, SageMakerModelHost)
        tenant = contracts_extra.new_tenant()
        worker = make_host(clients, store, aws_settings)
        worker.ensure_slot(tenant, "pooled")
        worker.deploy(contracts_extra.hosted(store, tenant, "mv_1"))
        assert host.weights(tenant) == {}
        worker.set_weights(tenant, {"mv_1": 10_000})
        assert host.weights(tenant) == {}  # held in memory
        built.event_bus.publish(SERVING_CHANGED, {"tenant_id": tenant, "reason": "promoted"})
        assert host.weights(tenant) == {"mv_1": 10_000}
    finally:
        stop = getattr(built.metrics, "stop", None)
        if callable(stop):
            stop()
