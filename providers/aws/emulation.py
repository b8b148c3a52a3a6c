"""What ``FRAUDRAIL_AWS_EMULATION=moto`` changes, declared in one place (never on real AWS).

moto's server lacks parts the AWS provider needs. With the setting on, and only then:

* tenant templates go through ``cdk.emulation.moto_compatible_template`` before CreateStack
  (moto's CloudFormation cannot create the WAF, ElastiCache, Studio domain, alarms, budgets...);
* SageMaker ``UpdateEndpoint`` (HTTP 500 on moto) is answered by :func:`install_update_endpoint_standin`:
  the endpoint is deleted and created again with the new config under the same name, which is
  what AWS does in effect; the request the host sends is still the real one (a Stubber test
  checks its shape);
* SageMaker training / transform containers run as local processes (``job_emulation``);
* ``DeleteStack``: moto deletes a VPC before its route tables and endpoints, fails with
  ``DependencyViolation`` and forgets the stack; :class:`DeleteStackStandIn` finishes in
  CloudFormation's order (endpoints, route tables, subnets, security groups, then the VPC).

:func:`require_emulator` refuses the setting when the endpoint could be AWS itself.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

log = logging.getLogger(__name__)

EmulationMode = Literal["off", "moto"]

_UPDATE = "sagemaker.UpdateEndpoint"


def require_emulator(mode: str, endpoint_url: str | None, *, env: str) -> None:
    """Raise ``ValueError`` naming the settings when ``mode`` is on against what may be AWS."""
    if mode == "off":
        return
    if mode != "moto":
        raise ValueError(f"FRAUDRAIL_AWS_EMULATION={mode!r}: expected 'off' or 'moto'")
    if env == "production":
        raise ValueError(
            "FRAUDRAIL_AWS_EMULATION=moto is refused with FRAUDRAIL_ENV=production: it deploys "
            "templates stripped of the WAF, cache, alarms and budgets"
        )
    if not endpoint_url:
        raise ValueError(
            "FRAUDRAIL_AWS_EMULATION=moto needs FRAUDRAIL_AWS_ENDPOINT_URL (moto's server): without "
            "it the clients talk to AWS itself"
        )
    host = (urlsplit(endpoint_url).hostname or "").lower()
    if not _emulator_host(host):
        raise ValueError(
            f"FRAUDRAIL_AWS_EMULATION=moto refuses FRAUDRAIL_AWS_ENDPOINT_URL={endpoint_url!r}: "
            "an emulator is reached on loopback, a private address or a single-label host name "
            "(e.g. a compose service 'moto'), never on a public or AWS host"
        )


def _emulator_host(host: str) -> bool:
    if not host or "amazonaws" in host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a container / compose service name
    return address.is_loopback or address.is_private


class UpdateEndpointStandIn:
    """Answers ``UpdateEndpoint`` on moto by recreating the endpoint on the new config."""

    def __init__(self, sagemaker: SageMakerClient) -> None:
        self._sm = sagemaker
        self.requests: list[dict[str, Any]] = []
        self._busy = False

    def install(self) -> UpdateEndpointStandIn:
        events = self._sm.meta.events
        events.register(f"before-parameter-build.{_UPDATE}", self._capture)
        events.register(f"before-call.{_UPDATE}", self._answer)  # type: ignore[arg-type]
        log.warning("AWS emulation: UpdateEndpoint is emulated (delete + create) for moto")
        return self

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self._busy:
            return None
        request = self.requests[-1]
        name, config = str(request["EndpointName"]), str(request["EndpointConfigName"])
        self._busy = True
        try:
            arn = self._sm.describe_endpoint(EndpointName=name)["EndpointArn"]
            tags = self._sm.list_tags(ResourceArn=arn).get("Tags", [])
            self._sm.delete_endpoint(EndpointName=name)
            self._sm.create_endpoint(EndpointName=name, EndpointConfigName=config, Tags=tags)
        finally:
            self._busy = False
        return AWSResponse(f"emulated://{_UPDATE}", 200, HTTPHeaders(), None), {"EndpointArn": arn}


def install_update_endpoint_standin(sagemaker: SageMakerClient) -> UpdateEndpointStandIn:
    return UpdateEndpointStandIn(sagemaker).install()


_DELETE = "cloudformation.DeleteStack"
_NETWORK_ORDER = (
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::VPC",
)


class DeleteStackStandIn:
    """Finishes a stack deletion that moto abandoned on ``DependencyViolation``."""

    def __init__(self, cloudformation: Any, ec2: Any) -> None:
        self._cfn = cloudformation
        self._ec2 = ec2
        self._busy = False
        self._names: list[str] = []
        self.finished: list[str] = []  # stacks whose network this stand-in deleted

    def install(self) -> DeleteStackStandIn:
        self._cfn.meta.events.register(f"before-parameter-build.{_DELETE}", self._capture)
        self._cfn.meta.events.register(f"before-call.{_DELETE}", self._answer)
        log.warning("AWS emulation: DeleteStack finishes network deletion in order for moto")
        return self

    def _capture(self, params: dict[str, Any], **_: Any) -> None:
        if not self._busy:
            self._names.append(str(params["StackName"]))

    def _answer(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self._busy:
            return None
        name = self._names.pop()
        self._busy = True
        try:
            try:
                pages = self._cfn.get_paginator("list_stack_resources").paginate(StackName=name)
                resources = [r for page in pages for r in page.get("StackResourceSummaries", [])]
            except ClientError:
                return None  # no such stack: moto answers as AWS does
            try:
                self._cfn.delete_stack(StackName=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "DependencyViolation":
                    raise
                log.warning("AWS emulation: moto left the network of %s; deleting it in order", name)
                self._delete_network(resources)
                self.finished.append(name)
        finally:
            self._busy = False
        return AWSResponse(f"emulated://{_DELETE}", 200, HTTPHeaders(), None), {}

    def _delete_network(self, resources: list[dict[str, Any]]) -> None:
        ids = {
            kind: [str(r["PhysicalResourceId"]) for r in resources if r["ResourceType"] == kind]
            for kind in _NETWORK_ORDER
        }
        if ids["AWS::EC2::VPCEndpoint"]:
            self._ec2.delete_vpc_endpoints(VpcEndpointIds=ids["AWS::EC2::VPCEndpoint"])
        for table in ids["AWS::EC2::RouteTable"]:
            self._quietly(self._disassociate, table)
            self._quietly(lambda t: self._ec2.delete_route_table(RouteTableId=t), table)
        for subnet in ids["AWS::EC2::Subnet"]:
            self._quietly(lambda s: self._ec2.delete_subnet(SubnetId=s), subnet)
        for group in ids["AWS::EC2::SecurityGroup"]:
            self._quietly(lambda g: self._ec2.delete_security_group(GroupId=g), group)
        for vpc in ids["AWS::EC2::VPC"]:
            self._quietly(lambda v: self._ec2.delete_vpc(VpcId=v), vpc)

    def _disassociate(self, table: str) -> None:
        for described in self._ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"]:
            for association in described.get("Associations", []):
                if not association.get("Main"):
                    self._ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])

    @staticmethod
    def _quietly(action: Callable[[str], Any], resource_id: str) -> None:
        try:
            action(resource_id)
        except ClientError as exc:  # already gone: moto deleted part of the stack
            if "NotFound" not in str(exc.response.get("Error", {}).get("Code", "")):
                raise


def install_delete_stack_standin(cloudformation: Any, ec2: Any) -> DeleteStackStandIn:
    return DeleteStackStandIn(cloudformation, ec2).install()
