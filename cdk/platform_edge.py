"""The API's edge: an internet-facing Application Load Balancer behind AWS WAF.

HTTPS 443 with the certificate from context (or a template parameter), HTTP 80 only redirects.
WAF blocks per-client-IP floods (a rate-based rule) and common exploits (the AWS managed common
rule set) before they reach the API: the volumetric floods that the in-process limiter, which
counts per tenant after authentication, cannot absorb stop here.
"""

from __future__ import annotations

from aws_cdk import CfnParameter, CfnRule, CfnRuleAssertion, Duration, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

HEALTH_PATH = "/healthz"
CERTIFICATE_PARAMETER = "ApiCertificateArn"


def certificate_arn(scope: Construct, from_context: str | None, context_key: str) -> str:
    """The context's ARN, or a template parameter the operator fills at deploy time (never invented).

    The parameter defaults to empty and a template rule refuses the empty value, so CloudFormation
    stops before creating anything with a message saying what to pass; emulators, which ignore
    rules, deploy the listener without a certificate.
    """
    if from_context:
        return from_context
    stack = Stack.of(scope)
    parameter = CfnParameter(
        stack,
        CERTIFICATE_PARAMETER,
        type="String",
        default="",
        description=f"ACM certificate of the API's HTTPS listener (or synthesize with -c {context_key}=...)",
        allowed_pattern=r"^$|^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$",
    )
    CfnRule(
        stack,
        "ApiCertificateRequired",
        assertions=[
            CfnRuleAssertion(
                assert_=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, "")),
                assert_description=f"Pass {CERTIFICATE_PARAMETER}=<ACM certificate ARN>: HTTPS only",
            )
        ],
    )
    return parameter.value_as_string


def api_load_balancer(
    scope: Construct,
    *,
    vpc: ec2.IVpc,
    security_group: ec2.ISecurityGroup,
    service: ecs.FargateService,
    port: int,
    certificate: str,
) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup]:
    alb = elbv2.ApplicationLoadBalancer(
        scope,
        "LoadBalancer",
        vpc=vpc,
        internet_facing=True,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        security_group=security_group,
        drop_invalid_header_fields=True,
    )
    # open=False: the security group's own rules (443 and 80) are the whole ingress.
    https = alb.add_listener(
        "Https",
        port=443,
        protocol=elbv2.ApplicationProtocol.HTTPS,
        certificates=[elbv2.ListenerCertificate.from_arn(certificate)],
        ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        open=False,
    )
    alb.add_redirect(
        source_port=80,
        source_protocol=elbv2.ApplicationProtocol.HTTP,
        target_port=443,
        target_protocol=elbv2.ApplicationProtocol.HTTPS,
        open=False,
    )
    target_group = https.add_targets(
        "Api",
        port=port,
        protocol=elbv2.ApplicationProtocol.HTTP,
        targets=[service],
        deregistration_delay=Duration.seconds(30),
        health_check=elbv2.HealthCheck(
            path=HEALTH_PATH,
            healthy_http_codes="200",
            interval=Duration.seconds(15),
            timeout=Duration.seconds(5),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        ),
    )
    return alb, target_group


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def api_web_acl(
    scope: Construct, load_balancer: elbv2.ApplicationLoadBalancer, rate_limit: int
) -> wafv2.CfnWebACL:
    """A regional WebACL on the load balancer: per-IP rate limit, then the AWS common rule set."""
    acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility("fraudrail-api"),
        rules=[
            wafv2.CfnWebACL.RuleProperty(
                name="rate-limit-per-client-ip",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=_visibility("fraudrail-rate-limit"),
            ),
            wafv2.CfnWebACL.RuleProperty(
                name="aws-managed-common",
                priority=1,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name="AWSManagedRulesCommonRuleSet",
                        # Its 8 KB body limit would block dataset uploads; the API caps bodies itself.
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name="SizeRestrictions_BODY",
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                        ],
                    )
                ),
                visibility_config=_visibility("fraudrail-common-rules"),
            ),
        ],
    )
    wafv2.CfnWebACLAssociation(
        scope, "WebAclAssociation", resource_arn=load_balancer.load_balancer_arn, web_acl_arn=acl.attr_arn
    )
    return acl
