"""The platform template lets the control plane run training and Batch Transform jobs, and lets the
role it passes to them write their outputs and checkpoints in tenants' folders (nothing more)."""

from __future__ import annotations

import json
from typing import Any

from tests.cdk.support import Synthesized


def statements_of(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    roles = {k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role" and role_prefix in k}
    assert roles, f"no role {role_prefix}* in the platform template"
    out: list[dict[str, Any]] = []
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        attached = {r.get("Ref") for r in resource["Properties"].get("Roles", [])}
        if attached & roles:
            out.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return out


def by_sid(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (found,) = [s for s in statements if s.get("Sid") == sid]
    return found


def test_the_task_role_may_run_training_and_transform_jobs_named_fraudrail(synthesized: Synthesized) -> None:
    template = synthesized.template_json("platform")
    jobs = by_sid(statements_of(template, "TaskRole"), "TrainingAndBatchJobs")
    assert set(jobs["Action"]) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:AddTags",
    }
    text = json.dumps(jobs["Resource"])
    assert "training-job/fraudrail-*" in text and "transform-job/fraudrail-*" in text and '"*"' not in text


def test_the_job_role_writes_only_training_and_batch_folders(synthesized: Synthesized) -> None:
    template = synthesized.template_json("platform")
    statements = statements_of(template, "PooledModelRole")
    outputs = by_sid(statements, "JobOutputs")
    assert outputs["Action"] == "s3:PutObject"
    text = json.dumps(outputs["Resource"])
    assert "/tenants/*/training/*" in text and "/tenants/*/batch/*" in text
    writers = [s for s in statements if "s3:PutObject" in json.dumps(s.get("Action"))]
    assert writers == [outputs]  # no other statement lets the job role write
    assert "kms:GenerateDataKey" in by_sid(statements, "UseKmsKey")["Action"]
