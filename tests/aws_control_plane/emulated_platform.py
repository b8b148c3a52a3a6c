"""The platform stack on moto's server, as an operator deploys it, and the settings its outputs give.

The stack is synthesized by the CDK app (``cdk.app.add_platform_stack``), its file assets (the
rollback Lambda's zip) published where the template expects them, adapted by
``cdk.emulation.moto_compatible_template`` (moto cannot create the WAF, cache, alarms...) and
created through CloudFormation. Every ``FRAUDRAIL_AWS_*`` setting comes from its outputs.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from cdk.app import add_platform_stack, new_app
from cdk.emulation import moto_compatible_template, publish_file_assets
from tests.aws.conftest import ACCOUNT, REGION
from tests.helpers import wait_until

# Output -> setting: nothing an operator types by hand.
SETTINGS_FROM_OUTPUTS = {
    "PlatformBucketName": "FRAUDRAIL_AWS_BUCKET",
    "PlatformKeyArn": "FRAUDRAIL_AWS_KMS_KEY_ID",
    "AlarmTopicArn": "FRAUDRAIL_AWS_ALARM_TOPIC_ARN",
    "FlaggedTableName": "FRAUDRAIL_AWS_FLAGGED_TABLE",
    "RollbackTableName": "FRAUDRAIL_AWS_ROLLBACK_TABLE",
    "PooledEndpointName": "FRAUDRAIL_AWS_POOLED_ENDPOINT",
    "SageMakerRoleArn": "FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN",
    "InferenceImageUri": "FRAUDRAIL_AWS_INFERENCE_IMAGE_URI",
}


def deploy_platform(session: boto3.session.Session, endpoint_url: str, outdir: Path) -> dict[str, str]:
    """Create the platform stack on moto; return its outputs."""
    app = new_app({}, outdir=str(outdir))
    stack = add_platform_stack(app, {})
    app.synth()
    template = json.loads((outdir / stack.template_file).read_text(encoding="utf-8"))
    s3 = session.client("s3", region_name=REGION, endpoint_url=endpoint_url)
    publish_file_assets(outdir, stack.artifact_id, s3, account=ACCOUNT, region=REGION)
    cfn = session.client("cloudformation", region_name=REGION, endpoint_url=endpoint_url)
    cfn.create_stack(
        StackName=stack.stack_name,
        TemplateBody=json.dumps(moto_compatible_template(template)),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )

    def settled() -> dict[str, Any] | None:
        found = cfn.describe_stacks(StackName=stack.stack_name)["Stacks"][0]
        return None if str(found["StackStatus"]).endswith("_IN_PROGRESS") else dict(found)

    described = wait_until(settled, timeout_s=60, what="the platform stack")
    assert described["StackStatus"] == "CREATE_COMPLETE", described
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def settings_env(outputs: dict[str, str], endpoint_url: str) -> dict[str, str]:
    """The environment of the control plane on this platform (emulated: ``FRAUDRAIL_AWS_EMULATION``)."""
    env = {setting: outputs[output] for output, setting in SETTINGS_FROM_OUTPUTS.items()}
    env |= {
        "FRAUDRAIL_AWS_REGION": REGION,
        "FRAUDRAIL_AWS_ENDPOINT_URL": endpoint_url,
        # Test pacing only: moto settles at once, so nothing needs AWS's poll intervals.
        "FRAUDRAIL_AWS_STACK_POLL_S": "0.05",
        "FRAUDRAIL_AWS_ENDPOINT_POLL_S": "0.01",
        "FRAUDRAIL_AWS_JOB_POLL_S": "0",
        "FRAUDRAIL_AWS_MAX_ATTEMPTS": "2",
    }
    return env


def queue_endpoint_result(endpoint_url: str, body: str) -> None:
    """The next new InvokeEndpoint request on moto answers ``body`` (moto's results queue)."""
    payload = {
        "account_id": ACCOUNT,
        "region": REGION,
        "results": [{"Body": body, "ContentType": "text/csv", "InvokedProductionVariant": "emulated"}],
    }
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201 or response.status == 200
