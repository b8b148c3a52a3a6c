"""Model-drift alarms for the platform's operators.

Every drift report a tenant's monitoring computes sets the ``fraudrail_feature_psi`` gauge (one
series per tenant and feature, ``feature="score"`` for the score), which the CloudWatch metrics
adapter sends with ``tenant`` and ``feature`` as dimensions. Two alarms read the worst series with a
Metrics Insights query (one alarm for the whole fleet, however many tenants come and go), and
publish to their own topic: drift is news for people, never a reason to roll back, so it must
not reach the alarm topic that feeds the rollback Lambda.

Thresholds are the strictest tier's (``tenant_templates/*.json`` ``monitoring``): the alarm fires
for any drift some tier's retraining policy (``policies/rego/monitoring.rego``) would act on.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk.config import TIERS, load_tier_template

PSI_METRIC = "fraudrail_feature_psi"
SCORE_FEATURE = "score"
TOPIC_NAME = "fraudrail-monitoring"
FEATURE_ALARM_NAME = "fraudrail-feature-drift"
SCORE_ALARM_NAME = "fraudrail-score-drift"
# A drift report covers an hour or a day; an hour's period sees the worst gauge sent in it.
PERIOD = Duration.hours(1)


def strictest(tiers: Iterable[str], key: str) -> float:
    """The lowest limit any tier's monitoring block sets for ``key``."""
    return min(float(load_tier_template(tier)["monitoring"][key]) for tier in tiers)


def worst_psi_query(namespace: str, *, score: bool) -> str:
    """A Metrics Insights query giving one series: the highest PSI across tenants (and features)."""
    where = f"feature = '{SCORE_FEATURE}'" if score else f"feature != '{SCORE_FEATURE}'"
    return f'SELECT MAX({PSI_METRIC}) FROM SCHEMA("{namespace}", feature, tenant) WHERE {where}'


class DriftAlarms(Construct):
    """The monitoring topic and the two drift alarms that publish to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        namespace: str,
        tiers: Iterable[str] = TIERS,
    ) -> None:
        super().__init__(scope, construct_id)
        tiers = tuple(tiers)
        self.topic = sns.Topic(
            self, "Topic", topic_name=TOPIC_NAME, display_name="Fraudrail model monitoring", master_key=key
        )
        self.feature_alarm = self._alarm(
            "FeatureDriftAlarm",
            FEATURE_ALARM_NAME,
            worst_psi_query(namespace, score=False),
            strictest(tiers, "feature_psi_max"),
            "A tenant's feature drifted past the strictest tier's PSI limit: see GET /v1/monitoring/drift.",
        )
        self.score_alarm = self._alarm(
            "ScoreDriftAlarm",
            SCORE_ALARM_NAME,
            worst_psi_query(namespace, score=True),
            strictest(tiers, "score_psi_max"),
            "A tenant's score distribution drifted past the strictest tier's PSI limit.",
        )

    def _alarm(
        self, construct_id: str, name: str, query: str, threshold: float, why: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=why,
            metric=cloudwatch.MathExpression(expression=query, period=PERIOD, label=name),
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        return alarm
