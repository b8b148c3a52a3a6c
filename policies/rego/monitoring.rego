# Model monitoring: when to retrain a tenant's champion, and when a retrained challenger may go to
# a canary by itself.
#
# The thresholds are the tier's ("monitoring" in tenant_templates/<tier>.json, mounted at
# data.fraudrail_data); this policy says how they are read. As every fraudrail policy, it answers
# a `deny` set of {"rule", "field", "msg"}; what a deny means depends on the question:
#
# input.question == "retrain": each deny is a reason to retrain the champion now.
#   input: {"tenant": {"tier"},
#           "drift": {"volume", "score_psi", "max_feature_psi", "feature"} | null,
#           "performance": {"mature_days", "labelled", "fraud", "flagged", "precision", "recall"} | null,
#           "schedule": {"days_since_last": number}}
#   No evidence is no reason: a missing drift or performance block triggers nothing.
#
# input.question == "promote": each deny is a reason the challenger may NOT start a canary by
#   itself (the tenant admin is asked instead). Fail closed: a missing or mistyped figure denies.
#   input: {"tenant": {"tier", "auto_rollout": bool},
#           "comparison": {"transactions", "fraud",
#                          "champion": {"average_precision", "recall"},
#                          "challenger": {"average_precision", "recall"}}}
package fraudrail.monitoring

import rego.v1

tiers := data.fraudrail_data

limits := object.get(object.get(tiers, object.get(object.get(input, "tenant", {}), "tier", ""), {}), "monitoring", {})

limit(name) := limits[name] if is_number(limits[name])

shown(x) := substring(regex.replace(sprintf("%v", [x]), `[^A-Za-z0-9 ._:/@+=,()-]`, "?"), 0, 80)

num(x) := sprintf("%.4f", [x]) if is_number(x)

else := shown(x)

questions := {"retrain", "promote"}

deny contains v if {
	not input.question in questions
	v := {
		"rule": "question_unknown",
		"field": "question",
		"msg": concat("", ["question must be retrain or promote, got ", shown(object.get(input, "question", null))]),
	}
}

deny contains v if {
	input.question in questions
	not is_number(limits.min_volume)
	v := {
		"rule": "thresholds_missing",
		"field": "tenant.tier",
		"msg": concat("", ["tenant.tier ", shown(object.get(object.get(input, "tenant", {}), "tier", null)), " has no monitoring thresholds in its template"]),
	}
}

# --- retrain: drift --------------------------------------------------------------------------

drift_counted if {
	input.question == "retrain"
	input.drift.volume >= limit("min_volume")
}

deny contains v if {
	drift_counted
	input.drift.score_psi > limit("score_psi_max")
	v := {
		"rule": "score_drift",
		"field": "drift.score_psi",
		"msg": concat("", ["drift.score_psi ", num(input.drift.score_psi), " is over the tier's ", num(limit("score_psi_max")), " (", shown(input.drift.volume), " checks)"]),
	}
}

deny contains v if {
	drift_counted
	input.drift.max_feature_psi > limit("feature_psi_max")
	v := {
		"rule": "feature_drift",
		"field": "drift.max_feature_psi",
		"msg": concat("", ["drift.max_feature_psi ", num(input.drift.max_feature_psi), " (", shown(input.drift.feature), ") is over the tier's ", num(limit("feature_psi_max"))]),
	}
}

# --- retrain: performance once labels are mature ---------------------------------------------

labels_mature if {
	input.question == "retrain"
	input.performance.mature_days >= limit("label_maturity_days")
}

deny contains v if {
	labels_mature
	input.performance.flagged >= limit("min_flagged")
	is_number(input.performance.precision)
	input.performance.precision < limit("precision_floor")
	v := {
		"rule": "precision_under_floor",
		"field": "performance.precision",
		"msg": concat("", ["performance.precision ", num(input.performance.precision), " is under the tier's floor ", num(limit("precision_floor")), " on days with mature labels"]),
	}
}

deny contains v if {
	labels_mature
	input.performance.fraud >= limit("min_fraud_labels")
	is_number(input.performance.recall)
	input.performance.recall < limit("recall_floor")
	v := {
		"rule": "recall_under_floor",
		"field": "performance.recall",
		"msg": concat("", ["performance.recall ", num(input.performance.recall), " is under the tier's floor ", num(limit("recall_floor")), " on days with mature labels"]),
	}
}

# --- retrain: schedule -----------------------------------------------------------------------

deny contains v if {
	input.question == "retrain"
	input.schedule.days_since_last >= limit("retrain_every_days")
	v := {
		"rule": "retrain_due",
		"field": "schedule.days_since_last",
		"msg": concat("", ["schedule.days_since_last ", num(input.schedule.days_since_last), " reaches the tier's retraining period of ", num(limit("retrain_every_days")), " days"]),
	}
}

# --- promote: the champion / challenger gate --------------------------------------------------

comparison := object.get(input, "comparison", {})

champion := object.get(comparison, "champion", {})

challenger := object.get(comparison, "challenger", {})

deny contains v if {
	input.question == "promote"
	not challenger.average_precision >= champion.average_precision + limit("challenger_margin")
	v := {
		"rule": "margin_not_met",
		"field": "comparison.challenger.average_precision",
		"msg": concat("", ["comparison.challenger.average_precision ", num(object.get(challenger, "average_precision", null)), " does not beat the champion's ", num(object.get(champion, "average_precision", null)), " by the tier's margin ", num(object.get(limits, "challenger_margin", null))]),
	}
}

deny contains v if {
	input.question == "promote"
	not challenger.recall >= champion.recall - limit("max_recall_drop")
	v := {
		"rule": "recall_regressed",
		"field": "comparison.challenger.recall",
		"msg": concat("", ["comparison.challenger.recall ", num(object.get(challenger, "recall", null)), " falls below the champion's ", num(object.get(champion, "recall", null)), " by more than the tier's ", num(object.get(limits, "max_recall_drop", null))]),
	}
}

deny contains v if {
	input.question == "promote"
	not comparison.fraud >= limit("min_comparison_fraud")
	v := {
		"rule": "comparison_too_small",
		"field": "comparison.fraud",
		"msg": concat("", ["comparison.fraud ", shown(object.get(comparison, "fraud", null)), " labelled frauds in the window: the tier needs ", shown(object.get(limits, "min_comparison_fraud", null)), " to decide"]),
	}
}

deny contains v if {
	input.question == "promote"
	not input.tenant.auto_rollout == true
	v := {
		"rule": "auto_rollout_off",
		"field": "tenant.auto_rollout",
		"msg": "tenant.auto_rollout is off: the tenant admin approves the challenger",
	}
}
