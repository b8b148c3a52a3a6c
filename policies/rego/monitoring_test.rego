# Tests for fraudrail.monitoring; run with `python -m guardrails.rego_testing policies/rego`.
#
# The tier data is mocked by replacing the rule monitoring.tiers (regopy 1.5 ignores
# `with data.fraudrail_data as ...`); input is overridden key by key (`with input as` crashes it).
package fraudrail.monitoring_test

import rego.v1

import data.fraudrail.monitoring

mock_tiers := {"standard": {"monitoring": {
	"score_psi_max": 0.2, "feature_psi_max": 0.25, "min_volume": 500,
	"label_maturity_days": 7, "min_flagged": 20, "precision_floor": 0.2,
	"min_fraud_labels": 20, "recall_floor": 0.4, "retrain_every_days": 7,
	"challenger_margin": 0.01, "max_recall_drop": 0.02, "min_comparison_fraud": 20,
}}}

tenant := {"tier": "standard", "auto_rollout": true}

calm_drift := {"volume": 5000, "score_psi": 0.03, "max_feature_psi": 0.1, "feature": "amount"}

good_performance := {"mature_days": 9, "labelled": 900, "fraud": 60, "flagged": 80, "precision": 0.6, "recall": 0.7}

retrain_rules(drift, perf, schedule) := {v.rule | some v in ds} if {
	t := tenant
	ds := monitoring.deny with input.question as "retrain" with input.tenant as t
		with input.drift as drift with input.performance as perf with input.schedule as schedule
		with data.fraudrail.monitoring.tiers as mock_tiers
}

promote_denials(comparison, auto) := ds if {
	t := object.union(tenant, {"auto_rollout": auto})
	ds := monitoring.deny with input.question as "promote" with input.tenant as t
		with input.comparison as comparison with data.fraudrail.monitoring.tiers as mock_tiers
}

promote_rules(comparison, auto) := {v.rule | some v in promote_denials(comparison, auto)}

winning := {
	"transactions": 20000, "fraud": 120,
	"champion": {"average_precision": 0.41, "recall": 0.55},
	"challenger": {"average_precision": 0.63, "recall": 0.71},
}

# --- retrain ---------------------------------------------------------------------------------

test_a_healthy_model_is_not_retrained if {
	retrain_rules(calm_drift, good_performance, {"days_since_last": 2}) == set()
}

test_score_drift_over_the_threshold_retrains if {
	retrain_rules(object.union(calm_drift, {"score_psi": 0.31}), good_performance, {"days_since_last": 2}) == {"score_drift"}
}

test_drift_exactly_at_the_threshold_does_not_retrain if {
	retrain_rules(object.union(calm_drift, {"score_psi": 0.2}), good_performance, {"days_since_last": 2}) == set()
}

test_feature_drift_names_the_feature if {
	t := tenant
	drift := object.union(calm_drift, {"max_feature_psi": 0.9, "feature": "card_amount_sum_1h"})
	ds := monitoring.deny with input.question as "retrain" with input.tenant as t with input.drift as drift
		with data.fraudrail.monitoring.tiers as mock_tiers
	some v in ds
	v.rule == "feature_drift"
	contains(v.msg, "card_amount_sum_1h")
	v.field == "drift.max_feature_psi"
}

test_drift_on_too_little_traffic_is_no_reason if {
	retrain_rules({"volume": 100, "score_psi": 2.0, "max_feature_psi": 3.0, "feature": "amount"}, null, null) == set()
}

test_missing_evidence_triggers_nothing if {
	retrain_rules(null, null, null) == set()
}

test_precision_under_the_floor_retrains_once_labels_are_mature if {
	perf := object.union(good_performance, {"precision": 0.1})
	retrain_rules(calm_drift, perf, {"days_since_last": 1}) == {"precision_under_floor"}
}

test_young_labels_never_trigger_on_performance if {
	perf := object.union(good_performance, {"precision": 0.01, "recall": 0.01, "mature_days": 3})
	retrain_rules(calm_drift, perf, {"days_since_last": 1}) == set()
}

test_recall_under_the_floor_needs_enough_fraud_labels if {
	low := object.union(good_performance, {"recall": 0.1})
	retrain_rules(calm_drift, low, {"days_since_last": 1}) == {"recall_under_floor"}
	few := object.union(low, {"fraud": 5})
	retrain_rules(calm_drift, few, {"days_since_last": 1}) == set()
}

test_the_schedule_retrains_when_due if {
	retrain_rules(calm_drift, good_performance, {"days_since_last": 7}) == {"retrain_due"}
	retrain_rules(calm_drift, good_performance, {"days_since_last": 6.9}) == set()
}

test_a_tier_without_thresholds_is_reported if {
	t := {"tier": "gold"}
	ds := monitoring.deny with input.question as "retrain" with input.tenant as t
		with data.fraudrail.monitoring.tiers as mock_tiers
	{v.rule | some v in ds} == {"thresholds_missing"}
}

test_an_unknown_question_is_denied if {
	t := tenant
	ds := monitoring.deny with input.question as "promote-all" with input.tenant as t
		with data.fraudrail.monitoring.tiers as mock_tiers
	{v.rule | some v in ds} == {"question_unknown"}
}

# --- promote ---------------------------------------------------------------------------------

test_a_challenger_winning_by_the_margin_with_auto_rollout_may_start_a_canary if {
	promote_rules(winning, true) == set()
}

test_a_winning_challenger_without_opt_in_asks_the_admin if {
	promote_rules(winning, false) == {"auto_rollout_off"}
}

test_a_challenger_inside_the_margin_does_not_win if {
	close := object.union(winning, {"challenger": {"average_precision": 0.415, "recall": 0.6}})
	promote_rules(close, true) == {"margin_not_met"}
	some v in promote_denials(close, true)
	contains(v.msg, "0.4150")
	contains(v.msg, "0.4100")
}

test_a_challenger_that_loses_recall_does_not_win if {
	worse := object.union(winning, {"challenger": {"average_precision": 0.7, "recall": 0.4}})
	promote_rules(worse, true) == {"recall_regressed"}
}

test_a_window_with_too_few_frauds_cannot_decide if {
	promote_rules(object.union(winning, {"fraud": 3}), true) == {"comparison_too_small"}
}

test_a_missing_comparison_fails_closed if {
	promote_rules({}, true) == {"margin_not_met", "recall_regressed", "comparison_too_small"}
}

test_mistyped_figures_fail_closed if {
	bad := object.union(winning, {"challenger": {"average_precision": "0.9", "recall": "0.9"}})
	promote_rules(bad, true) == {"margin_not_met", "recall_regressed"}
}

test_every_violation_names_rule_field_and_message if {
	ds := promote_denials({}, false)
	count(ds) == 4
	every v in ds {
		is_string(v.rule)
		is_string(v.field)
		contains(v.msg, v.field)
	}
}
