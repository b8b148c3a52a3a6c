# Tests for fraudrail.deployment; run with `python -m guardrails.rego_testing policies/rego`.
#
# regopy 1.5 crashes on `with input as {...}`; override input one top-level key at a time.
package fraudrail.deployment_test

import rego.v1

import data.fraudrail.deployment

good_tenant := {"status": "ACTIVE", "budget_status": "ok", "error_budget_frozen": false}

good_candidate := {"stage": "APPROVED", "gate_passed": true, "integrity_verified": true}

good_rollout := {"strategy": "canary", "emergency": false}

good_cost := {"estimated_monthly": "120.50", "budget_headroom": "800.00"}

denials(t, c, r, k) := ds if {
	ds := deployment.deny with input.tenant as t
		with input.candidate as c
		with input.rollout as r
		with input.cost as k
}

rules(t, c, r, k) := {v.rule | some v in denials(t, c, r, k)}

test_all_good_is_allowed if {
	rules(good_tenant, good_candidate, good_rollout, good_cost) == set()
}

test_status_words_are_case_insensitive if {
	t := object.union(good_tenant, {"status": "active", "budget_status": "OK"})
	c := object.union(good_candidate, {"stage": "approved"})
	rules(t, c, good_rollout, good_cost) == set()
}

test_every_violation_names_rule_field_and_message if {
	ds := denials({}, {}, {}, {})
	count(ds) > 0
	every v in ds {
		is_string(v.rule)
		is_string(v.field)
		startswith(v.msg, v.field)
	}
}

test_empty_input_denies_every_check if {
	rules({}, {}, {}, {}) == {
		"candidate_not_approved", "gate_not_passed", "integrity_not_verified",
		"tenant_not_active", "budget_status_invalid", "error_budget_frozen", "cost_invalid",
	}
}

test_candidate_not_approved if {
	c := object.union(good_candidate, {"stage": "SHADOW"})
	rules(good_tenant, c, good_rollout, good_cost) == {"candidate_not_approved"}
	some v in denials(good_tenant, c, good_rollout, good_cost)
	v.field == "candidate.stage"
	contains(v.msg, "SHADOW")
}

test_gate_not_passed if {
	c := object.union(good_candidate, {"gate_passed": false})
	rules(good_tenant, c, good_rollout, good_cost) == {"gate_not_passed"}
}

test_gate_passed_must_be_boolean_true if {
	c := object.union(good_candidate, {"gate_passed": "true"})
	rules(good_tenant, c, good_rollout, good_cost) == {"gate_not_passed"}
}

test_integrity_not_verified if {
	c := object.union(good_candidate, {"integrity_verified": false})
	rules(good_tenant, c, good_rollout, good_cost) == {"integrity_not_verified"}
}

test_integrity_missing_is_denied if {
	c := object.remove(good_candidate, ["integrity_verified"])
	rules(good_tenant, c, good_rollout, good_cost) == {"integrity_not_verified"}
}

test_tenant_not_active if {
	t := object.union(good_tenant, {"status": "SUSPENDED"})
	rules(t, good_candidate, good_rollout, good_cost) == {"tenant_not_active"}
}

test_budget_frozen if {
	t := object.union(good_tenant, {"budget_status": "frozen"})
	rules(t, good_candidate, good_rollout, good_cost) == {"budget_frozen"}
}

test_budget_warning_is_allowed if {
	t := object.union(good_tenant, {"budget_status": "warning"})
	rules(t, good_candidate, good_rollout, good_cost) == set()
}

test_budget_status_unknown_is_denied if {
	t := object.union(good_tenant, {"budget_status": "fine"})
	rules(t, good_candidate, good_rollout, good_cost) == {"budget_status_invalid"}
}

test_error_budget_frozen if {
	t := object.union(good_tenant, {"error_budget_frozen": true})
	rules(t, good_candidate, good_rollout, good_cost) == {"error_budget_frozen"}
}

test_error_budget_frozen_allows_emergency if {
	t := object.union(good_tenant, {"error_budget_frozen": true})
	r := object.union(good_rollout, {"emergency": true})
	rules(t, good_candidate, r, good_cost) == set()
}

test_emergency_does_not_bypass_other_checks if {
	t := object.union(good_tenant, {"error_budget_frozen": true, "budget_status": "frozen"})
	r := object.union(good_rollout, {"emergency": true})
	rules(t, good_candidate, r, good_cost) == {"budget_frozen"}
}

test_error_budget_flag_missing_is_denied if {
	t := object.remove(good_tenant, ["error_budget_frozen"])
	rules(t, good_candidate, good_rollout, good_cost) == {"error_budget_frozen"}
}

test_cost_over_headroom_names_both_figures if {
	k := {"estimated_monthly": "1200.50", "budget_headroom": "800.00"}
	rules(good_tenant, good_candidate, good_rollout, k) == {"cost_over_headroom"}
	some v in denials(good_tenant, good_candidate, good_rollout, k)
	v.field == "cost.estimated_monthly"
	contains(v.msg, "1200.50")
	contains(v.msg, "800.00")
}

test_cost_equal_to_headroom_is_allowed if {
	k := {"estimated_monthly": "800", "budget_headroom": "800.00"}
	rules(good_tenant, good_candidate, good_rollout, k) == set()
}

test_negative_headroom_denies_any_cost if {
	k := {"estimated_monthly": "0.01", "budget_headroom": "-5"}
	rules(good_tenant, good_candidate, good_rollout, k) == {"cost_over_headroom"}
}

test_cost_must_be_decimal_strings if {
	k := {"estimated_monthly": 120.5, "budget_headroom": "lots"}
	rules(good_tenant, good_candidate, good_rollout, k) == {"cost_invalid"}
	fields := {v.field | some v in denials(good_tenant, good_candidate, good_rollout, k)}
	fields == {"cost.estimated_monthly", "cost.budget_headroom"}
}
