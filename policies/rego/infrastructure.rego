# Guardrails on a synthesized CloudFormation template (a tenant stack, or the platform stack).
#
# input: {
#   "template": <CloudFormation JSON>,
#   "tier": "trial" | "standard" | "premium" | "platform",
#   "region": "<region>",
#   "allowed_regions": [...],
#   "allowed_instance_types": [...]
# }
# Each violation: {"rule": <id>, "field": <"LogicalId.Properties.Path"> or null, "msg": <text>}.
#
# Rule ids: region-not-allowed, s3-encryption, s3-public-access-block, sagemaker-endpoint-kms,
# sagemaker-instance-type, required-tags, tag-tier-mismatch, iam-wildcard-action,
# iam-wildcard-resource; and, for the control plane's compute in the platform stack (they apply
# to any template with these resources): waf-on-load-balancer, database-encrypted,
# database-private, open-ingress.
#
# Every check is a function of the input document (`violations(doc)`), and `deny` applies it to
# `input`. Tests call `violations(doc)` directly: rego-cpp (regopy 1.5) fails on
# `deny with input as ...` once the rules use helper functions. Inside comprehensions the
# code binds `x := coll[k]` instead of `some k, x in coll`, which rego-cpp does not parse there.
package fraudrail.infrastructure

import rego.v1

default allow := false

allow if count(violations(input)) == 0

deny contains v if some v in violations(input)

violations(doc) := (((((region_violations(doc) | s3_violations(doc)) | sagemaker_violations(doc)) | tag_violations(doc)) | iam_violations(doc)) | platform_violations(doc))

required_tags := ["tenant_id", "tier", "cost-center"]

public_access_flags := ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"]

# Documented exceptions (docs/infrastructure.md): actions for which AWS accepts only
# Resource "*". A statement may use Resource "*" only if every one of its actions is here.
resource_wildcard_actions := {
	"ecr:GetAuthorizationToken",
	"cloudwatch:PutMetricData",
	"ec2:CreateNetworkInterface",
	"ec2:DeleteNetworkInterface",
	"ec2:DescribeNetworkInterfaces",
	"ec2:DescribeVpcs",
	"ec2:DescribeSubnets",
	"ec2:DescribeSecurityGroups",
	"ec2:DescribeDhcpOptions",
	"ec2:DescribeRouteTables",
	"ec2:DescribeVpcEndpoints",
	"ec2:DescribeAvailabilityZones",
	"kms:CreateKey",
	"xray:PutTraceSegments",
	"xray:PutTelemetryRecords",
}

identity_policy_types := {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}

inline_policy_types := {"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"}

resources_of(doc) := object.get(object.get(doc, "template", {}), "Resources", {})

properties(resource) := object.get(resource, "Properties", {})

as_array(value) := value if is_array(value)

as_array(value) := [value] if not is_array(value)

# ---------------------------------------------------------------- region

region_violations(doc) := {v |
	allowed := object.get(doc, "allowed_regions", [])
	not doc.region in allowed
	v := {
		"rule": "region-not-allowed",
		"field": null,
		"msg": sprintf("region %v is not allowed for tier %v (allowed: %v)", [doc.region, doc.tier, allowed]),
	}
}

# ---------------------------------------------------------------- S3

s3_violations(doc) := s3_encryption(doc) | s3_public_access(doc)

s3_encryption(doc) := {v |
	resource := resources_of(doc)[id]
	resource.Type == "AWS::S3::Bucket"
	not properties(resource).BucketEncryption
	v := {
		"rule": "s3-encryption",
		"field": sprintf("%s.Properties.BucketEncryption", [id]),
		"msg": sprintf("bucket %s has no default encryption", [id]),
	}
}

s3_public_access(doc) := {v |
	resource := resources_of(doc)[id]
	resource.Type == "AWS::S3::Bucket"
	block := object.get(properties(resource), "PublicAccessBlockConfiguration", {})
	some flag in public_access_flags
	object.get(block, flag, false) != true
	v := {
		"rule": "s3-public-access-block",
		"field": sprintf("%s.Properties.PublicAccessBlockConfiguration.%s", [id, flag]),
		"msg": sprintf("bucket %s must set %s to true", [id, flag]),
	}
}

# ---------------------------------------------------------------- SageMaker

sagemaker_violations(doc) := endpoint_kms(doc) | instance_types(doc)

# KmsKeyId is required on every endpoint config, serverless ones included: AWS accepts it there
# (it encrypts the pulled image). Nitro instance types with local NVMe storage (e.g. ml.m5d.*)
# reject KmsKeyId; keep them out of the tiers' allowed_instance_types.
endpoint_kms(doc) := {v |
	resource := resources_of(doc)[id]
	resource.Type == "AWS::SageMaker::EndpointConfig"
	not properties(resource).KmsKeyId
	v := {
		"rule": "sagemaker-endpoint-kms",
		"field": sprintf("%s.Properties.KmsKeyId", [id]),
		"msg": sprintf("endpoint config %s has no KmsKeyId", [id]),
	}
}

instance_types(doc) := {v |
	resource := resources_of(doc)[id]
	resource.Type == "AWS::SageMaker::EndpointConfig"
	variant := object.get(properties(resource), "ProductionVariants", [])[i]
	instance_type := variant.InstanceType
	not instance_type in object.get(doc, "allowed_instance_types", [])
	v := {
		"rule": "sagemaker-instance-type",
		"field": sprintf("%s.Properties.ProductionVariants[%d].InstanceType", [id, i]),
		"msg": sprintf("instance type %v is not allowed for tier %v", [instance_type, doc.tier]),
	}
}

# ---------------------------------------------------------------- tags

tag_keys(tags) := {tag.Key | some tag in tags} if is_array(tags)

tag_keys(tags) := {key | tags[key]} if is_object(tags)

tag_value(tags, key) := [tag.Value | some tag in tags; tag.Key == key][0] if is_array(tags)

tag_value(tags, key) := tags[key] if is_object(tags)

# Budgets carry their tags in ResourceTags; everything else in Tags.
tag_property(resource) := ["Tags", properties(resource).Tags] if properties(resource).Tags

tag_property(resource) := ["ResourceTags", properties(resource).ResourceTags] if {
	not properties(resource).Tags
	properties(resource).ResourceTags
}

tag_violations(doc) := missing_tags(doc) | tier_tag_mismatch(doc)

missing_tags(doc) := {v |
	resource := resources_of(doc)[id]
	[name, tags] := tag_property(resource)
	some key in required_tags
	not key in tag_keys(tags)
	v := {
		"rule": "required-tags",
		"field": sprintf("%s.Properties.%s", [id, name]),
		"msg": sprintf("%s (%s) lacks the %s tag", [id, resource.Type, key]),
	}
}

tier_tag_mismatch(doc) := {v |
	resource := resources_of(doc)[id]
	[name, tags] := tag_property(resource)
	"tier" in tag_keys(tags)
	value := tag_value(tags, "tier")
	value != doc.tier
	v := {
		"rule": "tag-tier-mismatch",
		"field": sprintf("%s.Properties.%s", [id, name]),
		"msg": sprintf("%s is tagged tier=%v but the template is for tier %v", [id, value, doc.tier]),
	}
}

# ---------------------------------------------------------------- IAM

# [logical id, path of the document, document] for every identity policy, inline ones included.
policy_documents(doc) := identity_documents(doc) | inline_documents(doc)

identity_documents(doc) := {[id, sprintf("%s.Properties.PolicyDocument", [id]), document] |
	resource := resources_of(doc)[id]
	resource.Type in identity_policy_types
	document := properties(resource).PolicyDocument
}

inline_documents(doc) := {[id, sprintf("%s.Properties.Policies[%d].PolicyDocument", [id, i]), document] |
	resource := resources_of(doc)[id]
	resource.Type in inline_policy_types
	policy := object.get(properties(resource), "Policies", [])[i]
	document := policy.PolicyDocument
}

# [logical id, path of the statement, statement] for every Allow statement.
allow_statements(doc) := {[entry[0], sprintf("%s.Statement[%d]", [entry[1], i]), statement] |
	some entry in policy_documents(doc)
	statement := as_array(object.get(entry[2], "Statement", []))[i]
	object.get(statement, "Effect", "Allow") == "Allow"
}

wildcard_action(action) if action == "*"

wildcard_action(action) if {
	is_string(action)
	endswith(action, ":*")
}

iam_violations(doc) := (wildcard_actions(doc) | not_actions(doc)) | wildcard_resources(doc)

wildcard_actions(doc) := {v |
	some entry in allow_statements(doc)
	some action in as_array(object.get(entry[2], "Action", []))
	wildcard_action(action)
	v := {
		"rule": "iam-wildcard-action",
		"field": sprintf("%s.Action", [entry[1]]),
		"msg": sprintf("%s allows the wildcard action %v", [entry[0], action]),
	}
}

not_actions(doc) := {v |
	some entry in allow_statements(doc)
	entry[2].NotAction
	v := {
		"rule": "iam-wildcard-action",
		"field": sprintf("%s.NotAction", [entry[1]]),
		"msg": sprintf("%s allows everything but a list of actions (NotAction)", [entry[0]]),
	}
}

wildcard_resources(doc) := {v |
	some entry in allow_statements(doc)
	"*" in as_array(object.get(entry[2], "Resource", []))
	some action in as_array(object.get(entry[2], "Action", []))
	not action in resource_wildcard_actions
	v := {
		"rule": "iam-wildcard-resource",
		"field": sprintf("%s.Resource", [entry[1]]),
		"msg": sprintf("%s allows %v on Resource \"*\"", [entry[0], action]),
	}
}

# ---------------------------------------------------------------- platform compute

load_balancer_type := "AWS::ElasticLoadBalancingV2::LoadBalancer"

database_types := {"AWS::RDS::DBInstance", "AWS::RDS::DBCluster"}

# The only ports the internet may reach, and only on a load balancer's security group.
public_ports := {80, 443}

platform_violations(doc) := ((waf_missing(doc) | database_unencrypted(doc)) | database_public(doc)) | open_ingress(doc)

internet_facing(resource) if {
	resource.Type == load_balancer_type
	object.get(properties(resource), "Scheme", "internet-facing") == "internet-facing"
	object.get(properties(resource), "Type", "application") == "application"
}

# Logical ids of the load balancers a WebACL association names ({"Ref": id}: an ALB's Ref is its ARN).
waf_protected(doc) := {lb |
	resource := resources_of(doc)[_]
	resource.Type == "AWS::WAFv2::WebACLAssociation"
	lb := properties(resource).ResourceArn.Ref
}

waf_missing(doc) := {v |
	resource := resources_of(doc)[id]
	internet_facing(resource)
	not id in waf_protected(doc)
	v := {
		"rule": "waf-on-load-balancer",
		"field": sprintf("%s", [id]),
		"msg": sprintf("internet-facing load balancer %s has no AWS WAF WebACL association", [id]),
	}
}

database_unencrypted(doc) := {v |
	resource := resources_of(doc)[id]
	resource.Type in database_types
	some prop in ["StorageEncrypted", "KmsKeyId"]
	not encrypted_with_key(properties(resource), prop)
	v := {
		"rule": "database-encrypted",
		"field": sprintf("%s.Properties.%s", [id, prop]),
		"msg": sprintf("database %s must set %s (encrypted with a customer key)", [id, prop]),
	}
}

encrypted_with_key(props, "StorageEncrypted") if props.StorageEncrypted == true

encrypted_with_key(props, "KmsKeyId") if props.KmsKeyId

database_public(doc) := {v |
	resource := resources_of(doc)[id]
	resource.Type in database_types
	object.get(properties(resource), "PubliclyAccessible", false) != false
	v := {
		"rule": "database-private",
		"field": sprintf("%s.Properties.PubliclyAccessible", [id]),
		"msg": sprintf("database %s must not be publicly accessible", [id]),
	}
}

# Logical ids of the security groups attached to a load balancer.
load_balancer_groups(doc) := {group |
	resource := resources_of(doc)[_]
	resource.Type == load_balancer_type
	ref := object.get(properties(resource), "SecurityGroups", [])[_]
	group := ref["Fn::GetAtt"][0]
}

open_to_world(rule) if rule.CidrIp == "0.0.0.0/0"

open_to_world(rule) if rule.CidrIpv6 == "::/0"

allowed_public(doc, group, rule) if {
	group in load_balancer_groups(doc)
	object.get(rule, "IpProtocol", "") == "tcp"
	rule.FromPort == rule.ToPort
	rule.FromPort in public_ports
}

# [field, group logical id (or null), rule] of every ingress rule, inline or standalone.
ingress_rules(doc) := inline_ingress(doc) | standalone_ingress(doc)

inline_ingress(doc) := {[sprintf("%s.Properties.SecurityGroupIngress[%d]", [id, i]), id, rule] |
	resource := resources_of(doc)[id]
	resource.Type == "AWS::EC2::SecurityGroup"
	rule := object.get(properties(resource), "SecurityGroupIngress", [])[i]
}

standalone_ingress(doc) := {[sprintf("%s.Properties", [id]), group, rule] |
	resource := resources_of(doc)[id]
	resource.Type == "AWS::EC2::SecurityGroupIngress"
	rule := properties(resource)
	group := object.get(object.get(rule, "GroupId", {}), "Fn::GetAtt", [null])[0]
}

open_ingress(doc) := {v |
	some entry in ingress_rules(doc)
	open_to_world(entry[2])
	not allowed_public(doc, entry[1], entry[2])
	v := {
		"rule": "open-ingress",
		"field": entry[0],
		"msg": sprintf("%v is open to the internet on %v-%v: only a load balancer's 80 and 443 may be", [entry[1], object.get(entry[2], "FromPort", "all"), object.get(entry[2], "ToPort", "all")]),
	}
}
