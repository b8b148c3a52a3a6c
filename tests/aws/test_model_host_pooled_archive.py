"""The pooled multi-model endpoint loads each version as its ``model.tar.gz`` (moto server).

SageMaker's multi-model loader downloads ``TargetModel`` from under the endpoint's model data
prefix and expects a tarball there: deploy uploads the verified archive, invoke names it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from providers.aws.factory import AwsClients
from providers.aws.model_archive import model_archive_key
from providers.aws.model_host import SageMakerModelHost
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from providers.ports import ArtifactIntegrityError, HostedModel
from tests.aws import contracts_extra
from tests.aws.test_model_host import make_host

pytestmark = pytest.mark.aws


@pytest.fixture
def store(clients: AwsClients, aws_settings: AwsSettings, kms_key_id: str) -> S3ObjectStore:
    return S3ObjectStore(clients.s3, aws_settings.bucket, kms_key_id)


@pytest.fixture
def host(clients: AwsClients, store: S3ObjectStore, aws_settings: AwsSettings) -> SageMakerModelHost:
    return make_host(clients, store, aws_settings)


def _registry_artifact(store: S3ObjectStore, tenant: str, version: str, data: bytes) -> HostedModel:
    """An artifact where the registry puts it (``tenants/<id>/models/<version>.frm``)."""
    key = f"tenants/{tenant}/models/{version}.frm"
    store.put(key, data)
    return HostedModel(tenant, version, key, hashlib.sha256(data).hexdigest())


def test_deploy_uploads_the_verified_tarball_and_invoke_targets_it(
    host: SageMakerModelHost, store: S3ObjectStore, clients: AwsClients, aws_settings: AwsSettings
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "pooled")
    data = b"FRM1 pooled model bytes"
    model = _registry_artifact(store, tenant, "mv_3", data)
    archive = model_archive_key(model.artifact_key)
    assert archive == f"tenants/{tenant}/models/mv_3/model.tar.gz"
    assert not store.exists(archive)

    host.deploy(model)
    with tarfile.open(fileobj=io.BytesIO(store.get(archive)), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["model.frm", "model.frm.sha256"]
        member = tar.extractfile("model.frm")
        assert member is not None and member.read() == data
        digest = tar.extractfile("model.frm.sha256")
        assert digest is not None and digest.read().decode().split()[0] == model.sha256
    # No per-version SageMaker model on the pooled endpoint.
    assert clients.sagemaker.list_models(NameContains=tenant.replace("_", "-"))["Models"] == []

    body = b"0.125"
    stub = Stubber(clients.sagemaker_runtime)  # moto's InvokeEndpoint answers a fixed text
    stub.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "text/csv"},
        {
            "EndpointName": aws_settings.pooled_endpoint,
            "TargetModel": f"{tenant}/models/mv_3/model.tar.gz",
            "ContentType": "text/csv",
            "Accept": "text/csv",
            "Body": b"0.5,1.0\n",
        },
    )
    with stub:
        assert host.invoke(tenant, "mv_3", [[0.5, 1.0]]) == [0.125]
    stub.assert_no_pending_responses()


def test_a_tampered_artifact_is_refused_and_no_tarball_is_made(
    host: SageMakerModelHost, store: S3ObjectStore
) -> None:
    tenant = contracts_extra.new_tenant()
    host.ensure_slot(tenant, "pooled")
    model = _registry_artifact(store, tenant, "mv_1", b"original")
    store.put(model.artifact_key, b"swapped after registration")
    with pytest.raises(ArtifactIntegrityError, match="registry says"):
        host.deploy(model)
    assert not store.exists(model_archive_key(model.artifact_key))
    assert host.deployed(tenant) == []
