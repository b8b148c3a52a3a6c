"""The isolated VPC both stacks use: private subnets only, no internet or NAT gateway."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ec2 as ec2
from constructs import Construct


def isolated_vpc(
    scope: Construct,
    construct_id: str,
    *,
    s3_gateway: bool = False,
    interface_endpoints: Sequence[tuple[str, ec2.InterfaceVpcEndpointAwsService]] = (),
) -> ec2.Vpc:
    """Two isolated subnets, plus the VPC endpoints that replace the internet for AWS APIs.

    CDK's restrict-default-security-group custom resource stays off: it would add a Lambda.
    """
    vpc = ec2.Vpc(
        scope,
        construct_id,
        max_azs=2,
        nat_gateways=0,
        restrict_default_security_group=False,
        subnet_configuration=[
            ec2.SubnetConfiguration(
                name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
            )
        ],
    )
    if s3_gateway:
        vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
    for endpoint_id, service in interface_endpoints:
        vpc.add_interface_endpoint(endpoint_id, service=service)
    return vpc
