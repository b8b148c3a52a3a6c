# Model rollout guardrails: may this candidate start (or continue) rolling out to this tenant?
#
# input: {"tenant": {"status", "budget_status": "ok|warning|frozen", "error_budget_frozen": bool},
#         "candidate": {"stage", "gate_passed": bool, "integrity_verified": bool},
#         "rollout": {"strategy", "emergency": bool},
#         "cost": {"estimated_monthly": "<decimal string>", "budget_headroom": "<decimal string>"}}
#
# Fail closed: a missing or mistyped field denies (every check is written as "not <good>").
# Status words compare case-insensitively (ACTIVE / active). Messages are built with concat()
# and caller values pass through shown(); see onboarding.rego for the regopy reasons.
package fraudrail.deployment

import rego.v1

decimal_pattern := `^-?[0-9]+(\.[0-9]+)?$`

budget_statuses := {"ok", "warning", "frozen"}

shown(x) := substring(regex.replace(sprintf("%v", [x]), `[^A-Za-z0-9 ._:/@+=,()-]`, "?"), 0, 80)

upper_or_empty(s) := upper(s) if {
	is_string(s)
} else := ""

lower_or_empty(s) := lower(s) if {
	is_string(s)
} else := ""

is_decimal(s) if {
	is_string(s)
	regex.match(decimal_pattern, s)
}

emergency if input.rollout.emergency == true

# --- candidate -------------------------------------------------------------------------------

deny contains v if {
	not upper_or_empty(input.candidate.stage) == "APPROVED"
	v := {
		"rule": "candidate_not_approved",
		"field": "candidate.stage",
		"msg": concat("", ["candidate.stage must be APPROVED, got ", shown(object.get(object.get(input, "candidate", {}), "stage", null))]),
	}
}

deny contains v if {
	not input.candidate.gate_passed == true
	v := {
		"rule": "gate_not_passed",
		"field": "candidate.gate_passed",
		"msg": "candidate.gate_passed must be true: the candidate has not passed the evaluation gate of its tier",
	}
}

deny contains v if {
	not input.candidate.integrity_verified == true
	v := {
		"rule": "integrity_not_verified",
		"field": "candidate.integrity_verified",
		"msg": "candidate.integrity_verified must be true: the model artifact digest was not verified",
	}
}

# --- tenant ----------------------------------------------------------------------------------

deny contains v if {
	not upper_or_empty(input.tenant.status) == "ACTIVE"
	v := {
		"rule": "tenant_not_active",
		"field": "tenant.status",
		"msg": concat("", ["tenant.status must be ACTIVE, got ", shown(object.get(object.get(input, "tenant", {}), "status", null))]),
	}
}

deny contains v if {
	not lower_or_empty(input.tenant.budget_status) in budget_statuses
	v := {
		"rule": "budget_status_invalid",
		"field": "tenant.budget_status",
		"msg": concat("", ["tenant.budget_status must be one of ok, warning, frozen, got ", shown(object.get(object.get(input, "tenant", {}), "budget_status", null))]),
	}
}

deny contains v if {
	lower_or_empty(input.tenant.budget_status) == "frozen"
	v := {
		"rule": "budget_frozen",
		"field": "tenant.budget_status",
		"msg": "tenant.budget_status is frozen: actual spend reached 100% of the monthly budget",
	}
}

# An exhausted error budget freezes rollouts, except an emergency rollout (usually the fix).
deny contains v if {
	not input.tenant.error_budget_frozen == false
	not emergency
	v := {
		"rule": "error_budget_frozen",
		"field": "tenant.error_budget_frozen",
		"msg": concat("", [
			"tenant.error_budget_frozen must be false, got ",
			shown(object.get(object.get(input, "tenant", {}), "error_budget_frozen", null)),
			": rollouts wait for the SLO error budget to recover unless rollout.emergency is true",
		]),
	}
}

# --- cost ------------------------------------------------------------------------------------

deny contains v if {
	some name in ["estimated_monthly", "budget_headroom"]
	not is_decimal(input.cost[name])
	v := {
		"rule": "cost_invalid",
		"field": concat(".", ["cost", name]),
		"msg": concat("", [
			"cost.", name, " must be a decimal string such as 120.50, got ",
			shown(object.get(object.get(input, "cost", {}), name, null)),
		]),
	}
}

deny contains v if {
	is_decimal(input.cost.estimated_monthly)
	is_decimal(input.cost.budget_headroom)
	to_number(input.cost.estimated_monthly) > to_number(input.cost.budget_headroom)
	v := {
		"rule": "cost_over_headroom",
		"field": "cost.estimated_monthly",
		"msg": concat("", [
			"cost.estimated_monthly ", input.cost.estimated_monthly,
			" exceeds cost.budget_headroom ", input.cost.budget_headroom,
		]),
	}
}
