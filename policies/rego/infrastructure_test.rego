package fraudrail.infrastructure_test

import rego.v1

import data.fraudrail.infrastructure

tags := [
	{"Key": "cost-center", "Value": "fraudrail"},
	{"Key": "tenant_id", "Value": "ten_demo"},
	{"Key": "tier", "Value": "premium"},
]

bucket := {
	"Type": "AWS::S3::Bucket",
	"Properties": {
		"BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
		"PublicAccessBlockConfiguration": {
			"BlockPublicAcls": true,
			"BlockPublicPolicy": true,
			"IgnorePublicAcls": true,
			"RestrictPublicBuckets": true,
		},
		"Tags": tags,
	},
}

endpoint_config := {
	"Type": "AWS::SageMaker::EndpointConfig",
	"Properties": {
		"KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
		"ProductionVariants": [
			{"VariantName": "stable", "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1},
			{"VariantName": "canary", "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 0},
		],
		"Tags": tags,
	},
}

serverless_config := {
	"Type": "AWS::SageMaker::EndpointConfig",
	"Properties": {
		"KmsKeyId": "alias/fraudrail-platform",
		"ProductionVariants": [{"VariantName": "serverless", "ServerlessConfig": {"MaxConcurrency": 5, "MemorySizeInMB": 2048}}],
		"Tags": tags,
	},
}

policy := {
	"Type": "AWS::IAM::Policy",
	"Properties": {
		"PolicyName": "ModelRolePolicy",
		"Roles": [{"Ref": "Role"}],
		"PolicyDocument": {
			"Version": "2012-10-17",
			"Statement": [
				{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/models/*"},
				{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
				{"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
			],
		},
	},
}

budget := {
	"Type": "AWS::Budgets::Budget",
	"Properties": {"Budget": {"BudgetType": "COST"}, "ResourceTags": tags},
}

parameter := {
	"Type": "AWS::SSM::Parameter",
	"Properties": {"Type": "String", "Value": "x", "Tags": {"tenant_id": "ten_demo", "tier": "premium", "cost-center": "fraudrail"}},
}

compliant := {"Resources": {
	"Bucket": bucket,
	"EndpointConfig": endpoint_config,
	"ServerlessConfig": serverless_config,
	"Policy": policy,
	"Budget": budget,
	"Parameter": parameter,
}}

base_input := {
	"template": compliant,
	"tier": "premium",
	"region": "eu-west-1",
	"allowed_regions": ["eu-west-1", "us-east-1"],
	"allowed_instance_types": ["ml.m5.xlarge"],
}

# Changes are made by remove-then-union, never by overlapping unions: OPA's object.union merges
# nested objects while rego-cpp's replaces them, and this way both agree. Keys are literals:
# rego-cpp mangles object keys that come from variables ({id: x}).
with_resources(removed, extra) := object.union(object.remove(base_input, ["template"]), {"template": {"Resources": object.union(object.remove(compliant.Resources, removed), extra)}})

with_bucket(props) := with_resources(["Bucket"], {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": props}})

with_endpoint_config(props) := with_resources(["EndpointConfig"], {"EndpointConfig": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": props}})

with_serverless_config(props) := with_resources(["ServerlessConfig"], {"ServerlessConfig": {"Type": "AWS::SageMaker::EndpointConfig", "Properties": props}})

with_policy_document(document) := with_resources(["Policy"], {"Policy": {"Type": "AWS::IAM::Policy", "Properties": object.union(object.remove(policy.Properties, ["PolicyDocument"]), {"PolicyDocument": document})}})

rules(denied) := {v.rule | some v in denied}

fields(denied) := {v.field | some v in denied}

# The tests call `violations(doc)`: rego-cpp (regopy 1.5) fails on `deny with input as ...`.
test_compliant_template_is_allowed if {
	count(infrastructure.violations(base_input)) == 0
}

test_region_outside_the_tier_is_denied if {
	denied := infrastructure.violations(object.union(object.remove(base_input, ["region"]), {"region": "ap-south-1"}))
	rules(denied) == {"region-not-allowed"}
	fields(denied) == {null}
}

test_bucket_without_encryption_is_denied if {
	denied := infrastructure.violations(with_bucket(object.remove(bucket.Properties, ["BucketEncryption"])))
	rules(denied) == {"s3-encryption"}
	fields(denied) == {"Bucket.Properties.BucketEncryption"}
}

test_public_bucket_reports_each_flag if {
	open_block := {"BlockPublicAcls": false, "BlockPublicPolicy": true, "IgnorePublicAcls": true}
	props := object.union(object.remove(bucket.Properties, ["PublicAccessBlockConfiguration"]), {"PublicAccessBlockConfiguration": open_block})
	denied := infrastructure.violations(with_bucket(props))
	rules(denied) == {"s3-public-access-block"}
	fields(denied) == {
		"Bucket.Properties.PublicAccessBlockConfiguration.BlockPublicAcls",
		"Bucket.Properties.PublicAccessBlockConfiguration.RestrictPublicBuckets",
	}
}

test_bucket_without_public_access_block_reports_all_four if {
	denied := infrastructure.violations(with_bucket(object.remove(bucket.Properties, ["PublicAccessBlockConfiguration"])))
	rules(denied) == {"s3-public-access-block"}
	count(denied) == 4
}

test_endpoint_config_without_kms_is_denied if {
	denied := infrastructure.violations(with_endpoint_config(object.remove(endpoint_config.Properties, ["KmsKeyId"])))
	rules(denied) == {"sagemaker-endpoint-kms"}
	fields(denied) == {"EndpointConfig.Properties.KmsKeyId"}
}

test_serverless_config_without_kms_is_denied_too if {
	denied := infrastructure.violations(with_serverless_config(object.remove(serverless_config.Properties, ["KmsKeyId"])))
	rules(denied) == {"sagemaker-endpoint-kms"}
}

test_disallowed_instance_type_is_denied if {
	variants := [
		{"VariantName": "stable", "InstanceType": "ml.m5.xlarge"},
		{"VariantName": "canary", "InstanceType": "ml.p4d.24xlarge"},
	]
	props := object.union(object.remove(endpoint_config.Properties, ["ProductionVariants"]), {"ProductionVariants": variants})
	denied := infrastructure.violations(with_endpoint_config(props))
	rules(denied) == {"sagemaker-instance-type"}
	fields(denied) == {"EndpointConfig.Properties.ProductionVariants[1].InstanceType"}
}

test_missing_tag_is_denied if {
	two_tags := [{"Key": "tenant_id", "Value": "ten_demo"}, {"Key": "tier", "Value": "premium"}]
	denied := infrastructure.violations(with_bucket(object.union(object.remove(bucket.Properties, ["Tags"]), {"Tags": two_tags})))
	rules(denied) == {"required-tags"}
	fields(denied) == {"Bucket.Properties.Tags"}
}

test_missing_tag_in_map_form_is_denied if {
	props := object.union(object.remove(parameter.Properties, ["Tags"]), {"Tags": {"tenant_id": "ten_demo", "tier": "premium"}})
	i := with_resources(["Parameter"], {"Parameter": {"Type": "AWS::SSM::Parameter", "Properties": props}})
	denied := infrastructure.violations(i)
	rules(denied) == {"required-tags"}
	fields(denied) == {"Parameter.Properties.Tags"}
}

test_missing_budget_resource_tag_is_denied if {
	props := object.union(object.remove(budget.Properties, ["ResourceTags"]), {"ResourceTags": [{"Key": "tier", "Value": "premium"}]})
	i := with_resources(["Budget"], {"Budget": {"Type": "AWS::Budgets::Budget", "Properties": props}})
	denied := infrastructure.violations(i)
	rules(denied) == {"required-tags"}
	fields(denied) == {"Budget.Properties.ResourceTags"}
}

test_tier_tag_must_match_the_tier if {
	denied := infrastructure.violations(object.union(object.remove(base_input, ["tier"]), {"tier": "standard"}))
	rules(denied) == {"tag-tier-mismatch"}
}

test_wildcard_action_is_denied if {
	document := {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "*"], "Resource": "arn:aws:s3:::bucket/*"}]}
	denied := infrastructure.violations(with_policy_document(document))
	rules(denied) == {"iam-wildcard-action"}
	fields(denied) == {"Policy.Properties.PolicyDocument.Statement[0].Action"}
}

test_service_wildcard_action_is_denied if {
	document := {"Statement": {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:eu-west-1:1:table/t"}}
	denied := infrastructure.violations(with_policy_document(document))
	rules(denied) == {"iam-wildcard-action"}
}

test_not_action_is_denied if {
	document := {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::bucket"}]}
	denied := infrastructure.violations(with_policy_document(document))
	rules(denied) == {"iam-wildcard-action"}
	fields(denied) == {"Policy.Properties.PolicyDocument.Statement[0].NotAction"}
}

test_wildcard_resource_is_denied_outside_the_exceptions if {
	document := {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}
	denied := infrastructure.violations(with_policy_document(document))
	rules(denied) == {"iam-wildcard-resource"}
	fields(denied) == {"Policy.Properties.PolicyDocument.Statement[0].Resource"}
}

test_exception_mixed_with_other_actions_is_denied if {
	document := {"Statement": [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"], "Resource": "*"}]}
	denied := infrastructure.violations(with_policy_document(document))
	rules(denied) == {"iam-wildcard-resource"}
	count(denied) == 1
}

test_deny_statements_are_not_checked if {
	document := {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
	count(infrastructure.violations(with_policy_document(document))) == 0
}

test_inline_role_policy_is_checked if {
	role := {
		"Type": "AWS::IAM::Role",
		"Properties": {
			"AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "sagemaker.amazonaws.com"}}]},
			"Policies": [{"PolicyName": "inline", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}}],
			"Tags": tags,
		},
	}
	denied := infrastructure.violations(with_resources([], {"Role": role}))
	rules(denied) == {"iam-wildcard-action", "iam-wildcard-resource"}
	fields(denied) == {
		"Role.Properties.Policies[0].PolicyDocument.Statement[0].Action",
		"Role.Properties.Policies[0].PolicyDocument.Statement[0].Resource",
	}
}

# ---------------------------------------------------------------- platform compute

alb_group := {
	"Type": "AWS::EC2::SecurityGroup",
	"Properties": {
		"GroupDescription": "load balancer",
		"SecurityGroupIngress": [
			{"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443},
			{"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80},
		],
	},
}

service_group := {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "tasks"}}

load_balancer := {
	"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
	"Properties": {"Scheme": "internet-facing", "Type": "application", "SecurityGroups": [{"Fn::GetAtt": ["AlbGroup", "GroupId"]}]},
}

waf_association := {
	"Type": "AWS::WAFv2::WebACLAssociation",
	"Properties": {"ResourceArn": {"Ref": "LoadBalancer"}, "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]}},
}

database := {
	"Type": "AWS::RDS::DBInstance",
	"Properties": {"StorageEncrypted": true, "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}, "PubliclyAccessible": false},
}

service_ingress := {
	"Type": "AWS::EC2::SecurityGroupIngress",
	"Properties": {
		"GroupId": {"Fn::GetAtt": ["ServiceGroup", "GroupId"]},
		"SourceSecurityGroupId": {"Fn::GetAtt": ["AlbGroup", "GroupId"]},
		"IpProtocol": "tcp",
		"FromPort": 8000,
		"ToPort": 8000,
	},
}

platform_compute := {
	"AlbGroup": alb_group,
	"ServiceGroup": service_group,
	"LoadBalancer": load_balancer,
	"WafAssociation": waf_association,
	"Database": database,
	"ServiceIngress": service_ingress,
}

with_platform(removed, extra) := with_resources([], object.union(object.remove(platform_compute, removed), extra))

test_platform_compute_is_allowed if {
	count(infrastructure.violations(with_platform([], {}))) == 0
}

test_load_balancer_without_waf_is_denied if {
	denied := infrastructure.violations(with_platform(["WafAssociation"], {}))
	rules(denied) == {"waf-on-load-balancer"}
	fields(denied) == {"LoadBalancer"}
}

test_internal_load_balancer_needs_no_waf if {
	props := object.union(object.remove(load_balancer.Properties, ["Scheme"]), {"Scheme": "internal"})
	internal := {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": props}
	count(infrastructure.violations(with_platform(["WafAssociation", "LoadBalancer"], {"LoadBalancer": internal}))) == 0
}

test_unencrypted_database_is_denied if {
	plain := {"Type": "AWS::RDS::DBInstance", "Properties": {"StorageEncrypted": false, "PubliclyAccessible": false}}
	denied := infrastructure.violations(with_platform(["Database"], {"Database": plain}))
	rules(denied) == {"database-encrypted"}
	fields(denied) == {"Database.Properties.StorageEncrypted", "Database.Properties.KmsKeyId"}
}

test_public_database_is_denied if {
	props := object.union(object.remove(database.Properties, ["PubliclyAccessible"]), {"PubliclyAccessible": true})
	denied := infrastructure.violations(with_platform(["Database"], {"Database": {"Type": "AWS::RDS::DBInstance", "Properties": props}}))
	rules(denied) == {"database-private"}
	fields(denied) == {"Database.Properties.PubliclyAccessible"}
}

test_world_ingress_on_another_port_of_the_load_balancer_is_denied if {
	ssh := {"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
	group := {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "lb", "SecurityGroupIngress": array.concat(alb_group.Properties.SecurityGroupIngress, [ssh])}}
	denied := infrastructure.violations(with_platform(["AlbGroup"], {"AlbGroup": group}))
	rules(denied) == {"open-ingress"}
	fields(denied) == {"AlbGroup.Properties.SecurityGroupIngress[2]"}
}

test_world_ingress_on_443_of_a_group_without_load_balancer_is_denied if {
	open := {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "tasks", "SecurityGroupIngress": [{"CidrIpv6": "::/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}]}}
	denied := infrastructure.violations(with_platform(["ServiceGroup"], {"ServiceGroup": open}))
	rules(denied) == {"open-ingress"}
	fields(denied) == {"ServiceGroup.Properties.SecurityGroupIngress[0]"}
}

test_standalone_world_ingress_is_denied if {
	props := object.union(object.remove(service_ingress.Properties, ["SourceSecurityGroupId"]), {"CidrIp": "0.0.0.0/0"})
	denied := infrastructure.violations(with_platform(["ServiceIngress"], {"ServiceIngress": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": props}}))
	rules(denied) == {"open-ingress"}
	fields(denied) == {"ServiceIngress.Properties"}
}

test_world_ingress_on_a_port_range_is_denied_even_on_the_load_balancer if {
	wide := {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "lb", "SecurityGroupIngress": [{"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 443}]}}
	denied := infrastructure.violations(with_platform(["AlbGroup"], {"AlbGroup": wide}))
	rules(denied) == {"open-ingress"}
}
