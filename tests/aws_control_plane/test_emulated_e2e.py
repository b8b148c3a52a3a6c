"""The whole AWS path on moto's server, from an empty state (docs/aws.md, "An emulated deployment").

The platform stack is deployed to moto's CloudFormation and the control plane is configured from
its outputs, with ``FRAUDRAIL_AWS_EMULATION=moto`` (declared stand-ins for what moto lacks). Then:
one tenant of each tier is onboarded to ACTIVE (a CloudFormation stack and a model-hosting slot
each); the premium tenant trains a model as a SageMaker Training job (the image's entry point
run as a process) and promotes it; every tenant answers fraud checks through SageMaker runtime
(moto answers InvokeEndpoint from results queued through its API); a canary on the premium
endpoint and an emergency rollback report the weights read back from DescribeEndpoint; and
offboarding leaves nothing tagged with any tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.jobs.worker import Worker
from control_plane.settings import AppSettings
from fraud_model.simulator import simulate
from providers.aws._util import tenant_stack_name
from providers.aws.inventory import TaggedInventory
from providers.aws.model_host import SageMakerModelHost
from tests.aws.conftest import REGION, moto_post
from tests.aws_control_plane.emulated_platform import deploy_platform, queue_endpoint_result, settings_env
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.scoring.conftest import (  # noqa: F401  (session fixtures)
    register_model,
    sim_frame,
    trained_artifact,
    txn,
)

pytestmark = pytest.mark.aws

TIERS = ("trial", "standard", "premium")


@pytest.fixture
def platform(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, boto_session: boto3.session.Session
) -> dict[str, str]:
    moto_post(moto_url, "/moto-api/reset")  # an empty account
    outputs = deploy_platform(boto_session, moto_url, tmp_path / "cdk.out")
    for name, value in settings_env(outputs, moto_url).items():
        monkeypatch.setenv(name, value)
    return outputs


@pytest.fixture
def settings(platform: dict[str, str], tmp_path: Path, database_url: str) -> AppSettings:
    return AppSettings(
        env="test",
        home=tmp_path / "home",
        database_url=database_url,
        run_worker_in_process=False,
        provider="aws",
        aws_emulation="moto",
    )


@pytest.fixture
def aws(moto_url: str, boto_session: boto3.session.Session) -> Iterator[dict[str, Any]]:
    def client(service: Any) -> Any:
        return boto_session.client(service, region_name=REGION, endpoint_url=moto_url)

    yield {
        "sagemaker": client("sagemaker"),
        "cloudformation": client("cloudformation"),
        "inventory": TaggedInventory(
            client("resourcegroupstaggingapi"), client("ec2"), client("s3"), client("kms")
        ),
    }


def _train(client: TestClient, worker: Worker, container: State, t: dict[str, Any]) -> str:
    container.templates["premium"]["gate"] = {"min_auc_roc": 0.5, "min_average_precision": 0.0}
    data = simulate(300, 600, 40, start_date="2026-06-01", seed=11).to_csv(index=False).encode()
    ds = client.post(
        "/v1/datasets",
        files={"file": ("june.csv", data, "text/csv")},
        data={"name": "june"},
        headers=auth(t["admin"]),
    )
    assert ds.status_code == 201, ds.text
    run = client.post(
        "/v1/training-runs",
        json={"dataset_id": ds.json()["id"], "params": {"n_estimators": 30, "max_depth": 4}},
        headers=auth(t["admin"]),
    )
    assert run.status_code == 202, run.text
    worker.drain()  # submit, re-poll (JobPending), register the version
    done = client.get(f"/v1/training-runs/{run.json()['id']}", headers=auth(t["admin"])).json()
    assert done["status"] == "succeeded", done
    assert done["result"]["training_run"]["arn"].startswith("arn:aws:sagemaker:")
    return str(done["result"]["model_version"])


def _check(client: TestClient, moto_url: str, t: dict[str, Any], txn_id: str, score: str) -> dict[str, Any]:
    queue_endpoint_result(moto_url, f"{score}\n")
    resp = client.post(
        "/v1/fraud-check", json=txn(txn_id, card_token=f"card_{txn_id}"), headers=auth(t["app"])
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _endpoint_weights(
    sagemaker: Any, endpoint: str, host: SageMakerModelHost, versions: list[str]
) -> dict[str, int]:
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    by_variant = {host.variant_name(v): v for v in versions}
    return {
        by_variant[str(v["VariantName"])]: int(v["CurrentWeight"])
        for v in described["ProductionVariants"]
        if str(v["VariantName"]) in by_variant
    }


def test_the_aws_path_end_to_end_on_moto(
    client: TestClient,
    container: State,
    worker: Worker,
    onboard: OnboardFn,
    admin_key: str,
    moto_url: str,
    platform: dict[str, str],
    aws: dict[str, Any],
    trained_artifact: bytes,  # noqa: F811
) -> None:
    host = container.providers.model_host
    assert isinstance(host, SageMakerModelHost)

    # Onboarding: each tier's stack (moto-compatible) and its model-hosting slot.
    tenants = {tier: onboard(f"e2e-{tier}", tier=tier, scopes=("app", "sre")) for tier in TIERS}
    for tier, t in tenants.items():
        got = client.get(f"/v1/tenants/{t['id']}", headers=auth(admin_key)).json()
        assert got["status"] == "ACTIVE", got
        stack = aws["cloudformation"].describe_stacks(StackName=tenant_stack_name(t["id"]))["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        assert [s.kind for s in host.slots(t["id"])] == [
            {"trial": "serverless", "standard": "pooled", "premium": "dedicated"}[tier]
        ]
        assert aws["inventory"].tagged(t["id"]) != []  # the stack's resources carry the tenant's tag

    # A model trained on SageMaker (premium), promoted; the others promote an approved version.
    premium = tenants["premium"]
    versions = {"premium": _train(client, worker, container, premium)}
    approved = client.post(f"/v1/models/{versions['premium']}/approve", headers=auth(premium["admin"]))
    assert approved.status_code == 200, approved.text
    for tier in ("trial", "standard"):
        versions[tier] = register_model(container, tenants[tier]["id"], trained_artifact)
    for tier, t in tenants.items():
        promoted = client.post(f"/v1/models/{versions[tier]}/promote", headers=auth(t["admin"]))
        assert promoted.status_code == 200, promoted.text
    worker.drain()

    # Fraud checks answer through SageMaker runtime: the score is the one queued in moto.
    for index, (tier, t) in enumerate(tenants.items()):
        score = f"0.{index + 1}25"
        answer = _check(client, moto_url, t, f"tx_{tier}", score)
        assert answer["model_version"] == versions[tier] and answer["score"] == pytest.approx(float(score))

    # A canary on the premium endpoint, then an emergency rollback: weights read back from AWS.
    pid = premium["id"]
    candidate = register_model(container, pid, trained_artifact)
    started = client.post(
        "/v1/rollouts",
        json={"candidate_version": candidate, "steps": [2000, 5000, 10000]},
        headers=auth(premium["admin"]),
    )
    assert started.status_code == 201, started.text
    rollout = started.json()["id"]
    worker.drain()  # the reconcile moves the endpoint's weights to the first step
    canary = {versions["premium"]: 8000, candidate: 2000}
    got = client.get(f"/v1/rollouts/{rollout}", headers=auth(premium["admin"])).json()
    assert got["weights"] == canary and got["weights_read_back"] == canary
    paused = client.post(f"/v1/rollouts/{rollout}/pause", headers=auth(premium["admin"]))
    assert paused.status_code == 200, paused.text
    assert paused.json()["weights_read_back"] == canary
    endpoint = host.endpoint_name(pid)
    assert _endpoint_weights(aws["sagemaker"], endpoint, host, [versions["premium"], candidate]) == canary
    rolled = client.post(
        f"/v1/rollouts/{rollout}/rollback", json={"reason": "e2e drill"}, headers=auth(premium["admin"])
    )
    assert rolled.status_code == 200, rolled.text
    stable = {versions["premium"]: 10000, candidate: 0}
    assert rolled.json()["state"] == "ROLLED_BACK" and rolled.json()["weights_read_back"] == stable
    assert _endpoint_weights(aws["sagemaker"], endpoint, host, [versions["premium"], candidate]) == stable
    logged = container.providers.rollback_log.list(pid)  # DynamoDB, from the platform stack's table
    assert len(logged) == 1 and dict(logged[0].weights_after) == stable
    config = aws["sagemaker"].describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    variants = aws["sagemaker"].describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    assert len(variants) == 2  # the candidate joined through UpdateEndpoint (the declared stand-in)

    # Offboarding: nothing tagged with any tenant remains.
    for tier, t in tenants.items():
        report = client.delete(f"/v1/tenants/{t['id']}", headers=auth(admin_key))
        assert report.status_code == 200, (tier, report.text)
        assert report.json()["all_empty"] is True
        assert aws["inventory"].tagged(t["id"]) == []
        assert host.slots(t["id"]) == []
    # The training job's record is history (S3 URIs of purged objects), declared as such.
    assert [a.split(":")[5].split("/")[0] for a in aws["inventory"].job_history(premium["id"])] == [
        "training-job"
    ]
