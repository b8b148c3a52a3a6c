# Tenant onboarding guardrails.
#
# input: {"tenant": {"name", "slug", "tier", "region",
#                    "budget": {"amount": "<decimal string>", "currency"},
#                    "contacts": {"slack_webhook_url", "teams_webhook_url", "email"},
#                    "encryption"?: {"at_rest": bool, "kms_key_alias"?: string}}}
# data.fraudrail_data: the tier templates keyed by tier name (tenant_templates/*.json).
#
# Every denial is {"rule", "field", "msg"}; "field" is the dotted input path without "input.".
# Rules check presence and type before calling built-ins, so a malformed tenant yields
# violations rather than an evaluation error (the engines run with strict built-in errors).
#
# Messages are built with concat() and caller values pass through shown(): regopy 1.5 writes
# computed strings into its JSON output without escaping them, and quotes the results of some
# built-ins (concat, lower, json.marshal) when they are passed to sprintf.
package fraudrail.onboarding

import rego.v1

tiers := data.fraudrail_data

tenant := object.get(input, "tenant", null)

template := tiers[tenant.tier]

# Always defined (empty without data), so "tier_unknown" still fires when data is missing.
known_tiers := {name | some name; tiers[name]}

decimal_pattern := `^-?[0-9]+(\.[0-9]+)?$`

slug_pattern := `^[a-z][a-z0-9-]{2,39}$`

# https://host[:port][/path]; no userinfo, so "https://good@evil" is refused.
https_pattern := `^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?$`

# Plain http only towards a local test receiver.
local_http_pattern := `^http://(127\.0\.0\.1|localhost)(:[0-9]+)?(/[^\s]*)?$`

# Customer-managed KMS keys: aliases the customer owns, never AWS-managed "alias/aws/...".
kms_alias_pattern := `^alias/[A-Za-z0-9/_-]{1,250}$`

# Tiers whose tenants must bring their own KMS key (the silo tier).
customer_kms_tiers := {"premium"}

webhook_fields := ["slack_webhook_url", "teams_webhook_url"]

# A short, printable-ASCII rendering of a caller-supplied value for messages.
shown(x) := substring(regex.replace(sprintf("%v", [x]), `[^A-Za-z0-9 ._:/@+=,()-]`, "?"), 0, 80)

is_decimal(s) if {
	is_string(s)
	regex.match(decimal_pattern, s)
}

non_empty_string(s) if {
	is_string(s)
	trim_space(s) != ""
}

budget := b if {
	b := tenant.budget
	is_object(b)
} else := {}

contacts := c if {
	c := tenant.contacts
	is_object(c)
} else := {}

encryption := e if {
	e := tenant.encryption
	is_object(e)
}

# --- shape -----------------------------------------------------------------------------------

deny contains v if {
	not is_object(tenant)
	v := {"rule": "tenant_missing", "field": "tenant", "msg": "tenant must be an object"}
}

deny contains v if {
	is_object(tenant)
	not non_empty_string(tenant.name)
	v := {"rule": "name_required", "field": "tenant.name", "msg": "tenant.name must be a non-empty string"}
}

# --- tier and region -------------------------------------------------------------------------

deny contains v if {
	is_object(tenant)
	not template
	v := {
		"rule": "tier_unknown",
		"field": "tenant.tier",
		"msg": concat("", [
			"tenant.tier ", shown(object.get(tenant, "tier", null)),
			" is not a known tier (known: ", concat(", ", sort(known_tiers)), ")",
		]),
	}
}

deny contains v if {
	is_object(template)
	not tenant.region in template.allowed_regions
	v := {
		"rule": "region_not_allowed",
		"field": "tenant.region",
		"msg": concat("", [
			"tenant.region ", shown(object.get(tenant, "region", null)),
			" is not allowed for tier ", tenant.tier,
			" (allowed: ", concat(", ", template.allowed_regions), ")",
		]),
	}
}

# --- budget ----------------------------------------------------------------------------------

deny contains v if {
	is_object(tenant)
	not is_decimal(budget.amount)
	v := {
		"rule": "budget_amount_invalid",
		"field": "tenant.budget.amount",
		"msg": concat("", [
			"tenant.budget.amount must be a decimal string such as 250.00, got ",
			shown(object.get(budget, "amount", null)),
		]),
	}
}

deny contains v if {
	is_decimal(budget.amount)
	to_number(budget.amount) <= 0
	v := {
		"rule": "budget_not_positive",
		"field": "tenant.budget.amount",
		"msg": concat("", ["tenant.budget.amount must be greater than 0, got ", budget.amount]),
	}
}

deny contains v if {
	is_decimal(budget.amount)
	to_number(budget.amount) > to_number(template.budget_cap.amount)
	v := {
		"rule": "budget_over_cap",
		"field": "tenant.budget.amount",
		"msg": concat("", [
			"tenant.budget.amount ", budget.amount, " exceeds the ", tenant.tier,
			" tier cap of ", template.budget_cap.amount, " ", template.budget_cap.currency,
		]),
	}
}

deny contains v if {
	is_object(template)
	not budget.currency == template.budget_cap.currency
	v := {
		"rule": "budget_currency_mismatch",
		"field": "tenant.budget.currency",
		"msg": concat("", [
			"tenant.budget.currency ", shown(object.get(budget, "currency", null)),
			" must be ", template.budget_cap.currency,
			", the currency of the ", tenant.tier, " tier cap",
		]),
	}
}

# --- slug ------------------------------------------------------------------------------------

valid_slug(s) if {
	is_string(s)
	regex.match(slug_pattern, s)
	not endswith(s, "-")
}

deny contains v if {
	is_object(tenant)
	not valid_slug(tenant.slug)
	v := {
		"rule": "slug_invalid",
		"field": "tenant.slug",
		"msg": concat("", [
			"tenant.slug ", shown(object.get(tenant, "slug", null)),
			" must be 3-40 characters of a-z, 0-9 and -, start with a letter and not end with -",
		]),
	}
}

# --- notification contacts -------------------------------------------------------------------

has_webhook if {
	some name in webhook_fields
	non_empty_string(contacts[name])
}

deny contains v if {
	template.requires_notification_contact == true
	not has_webhook
	v := {
		"rule": "notification_contact_required",
		"field": "tenant.contacts",
		"msg": concat("", [
			"tier ", tenant.tier,
			" requires tenant.contacts.slack_webhook_url or tenant.contacts.teams_webhook_url",
		]),
	}
}

acceptable_webhook(url) if regex.match(https_pattern, url)

acceptable_webhook(url) if regex.match(local_http_pattern, url)

deny contains v if {
	some name in webhook_fields
	url := contacts[name]
	url != null
	not is_string(url)
	v := {
		"rule": "webhook_url_invalid",
		"field": concat(".", ["tenant.contacts", name]),
		"msg": concat("", ["tenant.contacts.", name, " must be a URL string or null"]),
	}
}

deny contains v if {
	some name in webhook_fields
	url := contacts[name]
	non_empty_string(url)
	not acceptable_webhook(url)
	v := {
		"rule": "webhook_url_insecure",
		"field": concat(".", ["tenant.contacts", name]),
		"msg": concat("", [
			"tenant.contacts.", name,
			" must be an https:// URL (http:// only for 127.0.0.1 or localhost), got ", shown(url),
		]),
	}
}

# --- encryption ------------------------------------------------------------------------------
# Absent encryption means the platform default: at-rest encryption with a platform key.
# When present, at_rest must be true (a missing at_rest means the default, true).

deny contains v if {
	is_object(tenant)
	enc := object.get(tenant, "encryption", null)
	enc != null
	not is_object(enc)
	v := {
		"rule": "encryption_invalid",
		"field": "tenant.encryption",
		"msg": "tenant.encryption must be an object with at_rest (boolean) and optional kms_key_alias",
	}
}

deny contains v if {
	enc := encryption
	not object.get(enc, "at_rest", true) == true
	v := {
		"rule": "encryption_at_rest_disabled",
		"field": "tenant.encryption.at_rest",
		"msg": concat("", ["tenant.encryption.at_rest must be true for every tier, got ", shown(enc.at_rest)]),
	}
}

valid_kms_alias(a) if {
	is_string(a)
	regex.match(kms_alias_pattern, a)
	not startswith(a, "alias/aws/")
}

deny contains v if {
	tenant.tier in customer_kms_tiers
	not encryption.kms_key_alias
	v := {
		"rule": "kms_key_required",
		"field": "tenant.encryption.kms_key_alias",
		"msg": concat("", [
			"tier ", tenant.tier,
			" requires tenant.encryption.kms_key_alias, a customer-managed KMS key alias (alias/...)",
		]),
	}
}

deny contains v if {
	alias := encryption.kms_key_alias
	not valid_kms_alias(alias)
	v := {
		"rule": "kms_key_alias_invalid",
		"field": "tenant.encryption.kms_key_alias",
		"msg": concat("", [
			"tenant.encryption.kms_key_alias must look like alias/<name> and not be AWS-managed ",
			"(alias/aws/...), got ", shown(alias),
		]),
	}
}
