"""The rollback Lambda: a thin adapter from SNS records to traffic.handle_alarm that raises on failure."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping

import pytest

from lambdas.rollback import handler as rollback_handler
from lambdas.rollback.env import CloudWatchSink, LambdaSettings, deps_from_env
from lambdas.rollback.handler import RollbackFailed, handle, lambda_handler
from providers.aws.settings import AwsRuntimeSettings, AwsSettings
from providers.local.model_host import LocalModelHost
from tests.lambdas.rollback_fixtures import CANARY, STABLE, TENANT, alarm, sns_event, sns_record
from traffic import AlarmDeps


def test_an_alarm_moves_traffic_to_stable_and_records_the_rollback_once(
    deps: AlarmDeps, host: LocalModelHost
) -> None:
    event = sns_event(sns_record(alarm()))
    first = handle(event, deps)
    second = handle(event, deps)  # SNS delivers at least once

    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    [outcome] = first["results"]
    assert outcome["status"] == "rolled_back" and outcome["message_id"] == "msg-1"
    assert outcome["rollback_id"] == "rb_ro_42" and outcome["weights_after"] == {STABLE: 10_000, CANARY: 0}
    assert (second["rolled_back"], second["duplicate"]) == (0, 1)
    [record] = deps.rollback_log.list(TENANT)
    assert record.at == "2025-03-01T10:00:05+00:00"
    assert record.evidence == {**alarm()["evidence"], "rollout_id": "ro_42"}


def test_bad_records_are_skipped_and_a_good_one_in_the_same_event_still_runs(
    deps: AlarmDeps, host: LocalModelHost
) -> None:
    incomplete = alarm()
    del incomplete["stable_version"]
    event = sns_event(
        sns_record("{not json", "bad-json"),
        sns_record(incomplete, "bad-fields"),
        {"EventSource": "aws:sqs", "body": "{}"},
        sns_record(alarm(type="rollout.promoted"), "bad-type"),
        sns_record(alarm(), "good"),
    )
    result = handle(event, deps)
    assert [(o["message_id"], o["status"]) for o in result["results"]] == [
        ("bad-json", "invalid"),
        ("bad-fields", "invalid"),
        (None, "invalid"),
        ("bad-type", "invalid"),
        ("good", "rolled_back"),
    ]
    errors = [o["error"] for o in result["results"][:4]]
    assert "not JSON" in errors[0] and "stable_version" in errors[1]
    assert "not from SNS" in errors[2] and "rollout.promoted" in errors[3]
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    assert handle({"hello": "world"}, deps)["invalid"] == 1  # no retry can fix these: no raise


def test_a_failed_weight_change_raises_after_every_record_ran(deps: AlarmDeps, host: LocalModelHost) -> None:
    event = sns_event(
        sns_record(alarm(canary_version="mv_unknown"), "unknown-version"),
        sns_record(alarm(rollout_id="ro_43"), "good"),
    )
    with pytest.raises(RollbackFailed, match="rollback failed for 1 record") as failed:
        handle(event, deps)
    statuses = [(o["message_id"], o["status"]) for o in failed.value.result["results"]]
    assert statuses == [("unknown-version", "failed"), ("good", "rolled_back")]
    assert "WeightChangeFailed" in failed.value.result["results"][0]["error"]
    assert [r.rollback_id for r in deps.rollback_log.list(TENANT)] == ["rb_ro_43"]


def test_a_failing_rollback_log_fails_the_invocation_so_lambda_retries(
    deps: AlarmDeps, host: LocalModelHost
) -> None:
    class Unreachable:
        def append(self, record: object) -> bool:
            raise OSError("dynamodb unreachable")

    broken = dataclasses.replace(deps, rollback_log=Unreachable())  # type: ignore[arg-type]
    with pytest.raises(RollbackFailed):
        handle(sns_event(sns_record(alarm())), broken)
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}  # the weights moved first
    assert handle(sns_event(sns_record(alarm())), deps)["rolled_back"] == 1  # the retry records it


def test_lambda_handler_uses_the_deps_built_once(deps: AlarmDeps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollback_handler, "_ENV_DEPS", deps)
    assert lambda_handler(sns_event(sns_record(alarm())))["rolled_back"] == 1
    with pytest.raises(RollbackFailed):
        lambda_handler(sns_event(sns_record(alarm(rollout_id="ro_9", stable_version="mv_gone"))))


def test_the_lambda_settings_mirror_the_control_planes_aws_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FRAUDRAIL_AWS_"):
            monkeypatch.delenv(name)
    aws, rt, lam = AwsSettings(), AwsRuntimeSettings(), LambdaSettings.from_env({})
    for field in dataclasses.fields(LambdaSettings):
        if field.name == "endpoint_timeout_s":
            continue  # the Lambda's own wait (FRAUDRAIL_ROLLBACK_ENDPOINT_TIMEOUT_S)
        source = aws if field.name in AwsSettings.model_fields else rt
        assert getattr(lam, field.name) == getattr(source, field.name), field.name
    env = {
        "FRAUDRAIL_AWS_BUCKET": "b",
        "FRAUDRAIL_AWS_MAX_ATTEMPTS": "2",
        "FRAUDRAIL_AWS_ENDPOINT_POLL_S": "1.5",
    }
    parsed = LambdaSettings.from_env({**env, "FRAUDRAIL_ROLLBACK_ENDPOINT_TIMEOUT_S": "30"})
    assert (parsed.bucket, parsed.max_attempts, parsed.endpoint_poll_s) == ("b", 2, 1.5)
    assert parsed.endpoint_timeout_s == 30.0


def test_deps_from_env_builds_the_aws_adapters_without_calling_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.aws.dynamo import DynamoRollbackLog
    from providers.aws.model_host import SageMakerModelHost

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env_deps = deps_from_env(
        {"FRAUDRAIL_AWS_REGION": "eu-west-1", "FRAUDRAIL_AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert isinstance(env_deps.model_host, SageMakerModelHost)
    assert isinstance(env_deps.rollback_log, DynamoRollbackLog)
    assert isinstance(env_deps.metrics, CloudWatchSink)


def test_the_cloudwatch_sink_never_fails_a_rollback() -> None:
    calls: list[Mapping[str, object]] = []

    class Client:
        def put_metric_data(self, **kw: object) -> None:
            calls.append(kw)
            raise ConnectionError("no route to monitoring")

    sink = CloudWatchSink(Client(), "Fraudrail")  # type: ignore[arg-type]
    sink.increment("fraudrail_rollbacks_total", tenant=TENANT, reason="manual")
    sink.gauge("fraudrail_canary_weight", 0.0, tenant=TENANT)
    assert [c["MetricData"][0]["MetricName"] for c in calls] == [  # type: ignore[index]
        "fraudrail_rollbacks_total",
        "fraudrail_canary_weight",
    ]
    assert json.dumps(calls[0]["MetricData"][0]["Dimensions"]) == json.dumps(  # type: ignore[index]
        [{"Name": "reason", "Value": "manual"}, {"Name": "tenant", "Value": TENANT}]
    )
