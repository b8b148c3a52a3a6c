"""Drift alarms in the platform stack: the worst PSI across tenants, on their own topic."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from cdk.config import TIERS, load_tier_template
from cdk.platform_monitoring import FEATURE_ALARM_NAME, SCORE_ALARM_NAME, TOPIC_NAME
from tests.cdk.support import Synthesized, logical_id


def _alarm(synthesized: Synthesized, name: str) -> dict[str, Any]:
    found = synthesized.templates["platform"].find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": name}}
    )
    assert len(found) == 1, found
    return dict(next(iter(found.values()))["Properties"])


def test_drift_alarms_query_the_psi_gauge_of_every_tenant_at_the_strictest_tier_limit(
    synthesized: Synthesized,
) -> None:
    limits = [load_tier_template(t)["monitoring"] for t in TIERS]
    for name, key, where in (
        (FEATURE_ALARM_NAME, "feature_psi_max", "feature != 'score'"),
        (SCORE_ALARM_NAME, "score_psi_max", "feature = 'score'"),
    ):
        props = _alarm(synthesized, name)
        assert props["Threshold"] == min(float(m[key]) for m in limits)
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["TreatMissingData"] == "notBreaching"
        (query,) = props["Metrics"]
        assert query["Expression"] == (
            f'SELECT MAX(fraudrail_feature_psi) FROM SCHEMA("Fraudrail", feature, tenant) WHERE {where}'
        )
        assert query["Period"] == 3600 and query["ReturnData"] is True


def test_drift_never_reaches_the_rollback_topic(synthesized: Synthesized) -> None:
    stack = synthesized.platform
    template = synthesized.templates["platform"]
    monitoring_topic = logical_id(stack, stack.drift_alarms.topic)
    rollback_topic = logical_id(stack, stack.alarm_topic)
    template.has_resource_properties(
        "AWS::SNS::Topic", {"TopicName": TOPIC_NAME, "KmsMasterKeyId": Match.any_value()}
    )
    for name in (FEATURE_ALARM_NAME, SCORE_ALARM_NAME):
        assert _alarm(synthesized, name)["AlarmActions"] == [{"Ref": monitoring_topic}]
    # The rollback Lambda listens on the alarm topic only; nothing subscribes it to drift.
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert [s["Properties"]["TopicArn"] for s in subscriptions.values()] == [{"Ref": rollback_topic}]
    outputs = template.find_outputs("MonitoringTopicArn")
    assert outputs["MonitoringTopicArn"]["Value"] == {"Ref": monitoring_topic}
