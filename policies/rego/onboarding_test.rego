# Tests for fraudrail.onboarding; run with `python -m guardrails.rego_testing policies/rego`.
#
# regopy 1.5 crashes on `with input as {...}` (even through a variable); override input.tenant.
# The tier data is mocked (a subset of tenant_templates/) by replacing the rule
# onboarding.tiers: regopy 1.5 ignores `with data.fraudrail_data as ...` (a base document).
package fraudrail.onboarding_test

import rego.v1

import data.fraudrail.onboarding

mock_tiers := {
	"trial": {
		"tier": "trial",
		"allowed_regions": ["eu-west-1", "us-east-1"],
		"budget_cap": {"amount": "500", "currency": "USD"},
		"requires_notification_contact": false,
	},
	"premium": {
		"tier": "premium",
		"allowed_regions": ["eu-west-1", "us-east-1", "ap-southeast-2"],
		"budget_cap": {"amount": "100000", "currency": "USD"},
		"requires_notification_contact": true,
	},
}

trial := {
	"name": "Acme Payments",
	"slug": "acme-pay",
	"tier": "trial",
	"region": "eu-west-1",
	"budget": {"amount": "250.00", "currency": "USD"},
	"contacts": {"slack_webhook_url": null, "teams_webhook_url": null, "email": "ops@acme.test"},
}

premium := {
	"name": "Globex",
	"slug": "globex",
	"tier": "premium",
	"region": "ap-southeast-2",
	"budget": {"amount": "50000", "currency": "USD"},
	"contacts": {"slack_webhook_url": "https://hooks.slack.com/services/T0/B0/x", "teams_webhook_url": null},
	"encryption": {"at_rest": true, "kms_key_alias": "alias/globex-fraud"},
}

denials(t) := ds if {
	ds := onboarding.deny with input.tenant as t with data.fraudrail.onboarding.tiers as mock_tiers
}

rules(t) := {v.rule | some v in denials(t)}

with_field(t, key, value) := object.union(t, {key: value})

with_contacts(t, c) := object.union(t, {"contacts": object.union(t.contacts, c)})

with_budget(t, b) := object.union(t, {"budget": object.union(t.budget, b)})

# --- allowed ---------------------------------------------------------------------------------

test_valid_trial_tenant_is_allowed if {
	rules(trial) == set()
}

test_valid_premium_tenant_is_allowed if {
	rules(premium) == set()
}

test_budget_at_the_cap_is_allowed if {
	rules(with_budget(trial, {"amount": "500.00"})) == set()
}

test_local_http_webhook_is_allowed if {
	rules(with_contacts(trial, {"slack_webhook_url": "http://127.0.0.1:8099/hook"})) == set()
	rules(with_contacts(trial, {"teams_webhook_url": "http://localhost/hook"})) == set()
}

test_every_violation_names_rule_field_and_message if {
	ds := denials({"tier": "trial"})
	count(ds) > 0
	every v in ds {
		is_string(v.rule)
		is_string(v.field)
		startswith(v.field, "tenant.")
		contains(v.msg, v.field)
	}
}

# --- shape -----------------------------------------------------------------------------------

test_missing_tenant_is_denied if {
	ds := onboarding.deny with input.other as {} with data.fraudrail.onboarding.tiers as mock_tiers
	{v.rule | some v in ds} == {"tenant_missing"}
}

test_empty_name_is_denied if {
	rules(with_field(trial, "name", "  ")) == {"name_required"}
}

# --- tier and region -------------------------------------------------------------------------

test_unknown_tier_is_denied if {
	rules(with_field(trial, "tier", "gold")) == {"tier_unknown"}
	some v in denials(with_field(trial, "tier", "gold"))
	contains(v.msg, "gold")
	contains(v.msg, "premium, trial")
}

test_unknown_tier_is_denied_without_data if {
	# regopy 1.5 mishandles `with ... as <rule>`: bind values to locals first.
	t := trial
	no_tiers := {}
	ds := onboarding.deny with input.tenant as t with data.fraudrail.onboarding.tiers as no_tiers
	"tier_unknown" in {v.rule | some v in ds}
}

test_region_not_allowed_for_tier if {
	t := with_field(trial, "region", "ap-southeast-2")
	rules(t) == {"region_not_allowed"}
	some v in denials(t)
	v.field == "tenant.region"
	contains(v.msg, "ap-southeast-2")
	contains(v.msg, "eu-west-1, us-east-1")
}

# --- budget ----------------------------------------------------------------------------------

test_budget_over_cap_names_the_cap if {
	t := with_budget(trial, {"amount": "500.01"})
	rules(t) == {"budget_over_cap"}
	some v in denials(t)
	v.field == "tenant.budget.amount"
	contains(v.msg, "500.01")
	contains(v.msg, "cap of 500 USD")
}

test_zero_budget_is_denied if {
	rules(with_budget(trial, {"amount": "0"})) == {"budget_not_positive"}
}

test_negative_budget_is_denied if {
	rules(with_budget(trial, {"amount": "-10.5"})) == {"budget_not_positive"}
}

test_non_decimal_budget_is_denied if {
	rules(with_budget(trial, {"amount": "1e3"})) == {"budget_amount_invalid"}
	rules(with_budget(trial, {"amount": 250})) == {"budget_amount_invalid"}
}

test_budget_currency_must_match_the_cap if {
	t := with_budget(trial, {"currency": "EUR"})
	rules(t) == {"budget_currency_mismatch"}
	some v in denials(t)
	v.field == "tenant.budget.currency"
	contains(v.msg, "must be USD")
}

# --- slug ------------------------------------------------------------------------------------

test_valid_slugs_are_allowed if {
	every slug in ["abc", "a-1", "acme-payments-2024", "a234567890123456789012345678901234567890"] {
		rules(with_field(trial, "slug", slug)) == set()
	}
}

test_invalid_slugs_are_denied if {
	bad := [
		"Acme", "ab", "1acme", "-acme", "acme_pay", "acme-", "acme pay",
		"a2345678901234567890123456789012345678901", 42, null,
	]
	every slug in bad {
		rules(with_field(trial, "slug", slug)) == {"slug_invalid"}
	}
}

# --- notification contacts -------------------------------------------------------------------

test_premium_requires_a_webhook if {
	t := with_contacts(premium, {"slack_webhook_url": null, "teams_webhook_url": ""})
	rules(t) == {"notification_contact_required"}
	some v in denials(t)
	v.field == "tenant.contacts"
}

test_premium_accepts_a_teams_webhook if {
	t := with_contacts(premium, {"slack_webhook_url": null, "teams_webhook_url": "https://acme.webhook.office.com/x"})
	rules(t) == set()
}

test_premium_email_alone_is_not_enough if {
	t := object.union(premium, {"contacts": {"email": "ops@globex.test"}})
	rules(t) == {"notification_contact_required"}
}

test_trial_needs_no_webhook if {
	rules(object.remove(trial, ["contacts"])) == set()
}

test_plain_http_webhook_is_denied if {
	t := with_contacts(trial, {"slack_webhook_url": "http://hooks.example.com/x"})
	rules(t) == {"webhook_url_insecure"}
	some v in denials(t)
	v.field == "tenant.contacts.slack_webhook_url"
}

test_local_lookalike_hosts_are_denied if {
	every url in ["http://localhost.evil.test/x", "http://127.0.0.1@evil.test/x", "http://127.0.0.2/x"] {
		rules(with_contacts(trial, {"teams_webhook_url": url})) == {"webhook_url_insecure"}
	}
}

test_https_with_userinfo_is_denied if {
	rules(with_contacts(trial, {"slack_webhook_url": "https://hooks.slack.com@evil.test/x"})) == {"webhook_url_insecure"}
}

test_non_string_webhook_is_denied if {
	t := with_contacts(trial, {"teams_webhook_url": 7})
	rules(t) == {"webhook_url_invalid"}
}

# --- encryption ------------------------------------------------------------------------------

test_absent_encryption_is_allowed_below_premium if {
	rules(trial) == set()
}

test_at_rest_disabled_is_denied_for_every_tier if {
	rules(object.union(trial, {"encryption": {"at_rest": false}})) == {"encryption_at_rest_disabled"}
	t := object.union(premium, {"encryption": {"at_rest": false, "kms_key_alias": "alias/globex-fraud"}})
	rules(t) == {"encryption_at_rest_disabled"}
}

test_premium_requires_a_customer_kms_key if {
	rules(object.remove(premium, ["encryption"])) == {"kms_key_required"}
	rules(object.union(premium, {"encryption": {"at_rest": true}})) == {"kms_key_required"}
}

test_aws_managed_or_malformed_kms_alias_is_denied if {
	every alias in ["alias/aws/s3", "arn:aws:kms:eu-west-1:1:key/x", "alias/", ""] {
		t := object.union(premium, {"encryption": {"at_rest": true, "kms_key_alias": alias}})
		rules(t) == {"kms_key_alias_invalid"}
	}
}

test_encryption_must_be_an_object if {
	"encryption_invalid" in rules(object.union(trial, {"encryption": "on"}))
}

# --- engine hygiene --------------------------------------------------------------------------

test_messages_echo_only_safe_characters if {
	t := with_field(trial, "slug", "Bad Slug<x>{y}")
	some v in denials(t)
	v.rule == "slug_invalid"
	contains(v.msg, "Bad Slug?x??y?")
}
