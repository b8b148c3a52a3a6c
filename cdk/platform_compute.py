"""The control plane's own compute in the platform stack: Fargate services, load balancer, WAF, database.

Traffic path: internet -> AWS WAF (per-IP rate limit, AWS common rule set) -> Application Load
Balancer in the public subnets (HTTPS 443 with the certificate from context; HTTP 80 only
redirects) -> the API service (`fraudrail serve --no-worker`, port 8000) in the private subnets.
The worker (`fraudrail worker`) is its own service from the same image. Both reach PostgreSQL
(RDS, isolated subnets, the only ingress is from the services' security group), the existing
Redis (features and the event bus) and AWS APIs through the NAT gateway and gateway endpoints.

Settings reach the containers as ``FRAUDRAIL_*`` environment variables built from the stack's own
resources, and credentials as ECS secrets (Secrets Manager, encrypted with the platform key): the
database and Redis URLs are secrets whose value CloudFormation composes from dynamic references,
so no password is ever in the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.platform_data import (
    DB_INSTANCE_ID,
    DB_LOG_GROUP,
    control_plane_database,
    generated_secret,
    redis_url_secret,
    task_statements,
)
from cdk.platform_edge import HEALTH_PATH, api_load_balancer, api_web_acl, certificate_arn
from cdk.tenant_stack_role import pass_tenant_stack_role, tenant_stack_role

if TYPE_CHECKING:
    from cdk.platform_stack import PlatformStack

CTX_CERTIFICATE_ARN = "fraudrail:certificateArn"
CTX_CONTROL_PLANE_REPOSITORY = "fraudrail:controlPlaneImageRepository"
CTX_CONTROL_PLANE_TAG = "fraudrail:controlPlaneImageTag"
CTX_API_TASKS = "fraudrail:apiTasks"  # "min-max", e.g. "2-10"
CTX_WORKER_TASKS = "fraudrail:workerTasks"
CTX_DB_INSTANCE_CLASS = "fraudrail:dbInstanceClass"
CTX_WAF_RATE_LIMIT = "fraudrail:wafRateLimit"
CTX_REQUESTS_PER_TARGET = "fraudrail:requestsPerTarget"

API_PORT = 8000
LOG_PREFIX = "/fraudrail/control-plane"


@dataclass(frozen=True)
class ComputeSettings:
    """Context-driven sizing; every value has a default so ``make synth`` needs no context."""

    certificate_arn: str | None = None
    repository: str = "fraudrail"
    tag: str = "latest"
    api_tasks: tuple[int, int] = (2, 10)
    worker_tasks: tuple[int, int] = (1, 4)
    db_instance_class: str = "t4g.medium"
    # Requests per client IP per 5 minutes. A tenant's backend sends all its fraud checks from a
    # few addresses, so this is a flood stop (≈333 req/s per IP); tenant quotas are the app's job.
    waf_rate_limit: int = 100_000
    # ALB requests per task per minute before scaling out (≈25 req/s, far below a task's ceiling).
    requests_per_target: int = 1_500

    @classmethod
    def from_node(cls, scope: Construct) -> ComputeSettings:
        def get(key: str) -> Any:
            return scope.node.try_get_context(key)

        def tasks(key: str, default: tuple[int, int]) -> tuple[int, int]:
            raw = get(key)
            if not raw:
                return default
            low, _, high = str(raw).partition("-")
            return int(low), int(high or low)

        d = cls()
        return cls(
            certificate_arn=get(CTX_CERTIFICATE_ARN) or None,
            repository=str(get(CTX_CONTROL_PLANE_REPOSITORY) or d.repository),
            tag=str(get(CTX_CONTROL_PLANE_TAG) or d.tag),
            api_tasks=tasks(CTX_API_TASKS, d.api_tasks),
            worker_tasks=tasks(CTX_WORKER_TASKS, d.worker_tasks),
            db_instance_class=str(get(CTX_DB_INSTANCE_CLASS) or d.db_instance_class),
            waf_rate_limit=int(get(CTX_WAF_RATE_LIMIT) or d.waf_rate_limit),
            requests_per_target=int(get(CTX_REQUESTS_PER_TARGET) or d.requests_per_target),
        )


def platform_vpc(scope: Construct, construct_id: str) -> ec2.Vpc:
    """Isolated subnets (cache, database; listed first so they keep their CIDRs), public subnets
    (load balancer, NAT) and private subnets with egress (services: webhooks and AWS APIs)."""
    vpc = ec2.Vpc(
        scope,
        construct_id,
        max_azs=2,
        nat_gateways=1,
        restrict_default_security_group=False,
        subnet_configuration=[
            ec2.SubnetConfiguration(
                name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
            ),
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
            ec2.SubnetConfiguration(
                name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24
            ),
        ],
    )
    # Free gateway endpoints keep S3 and DynamoDB traffic off the NAT gateway.
    vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
    vpc.add_gateway_endpoint("DynamoDbEndpoint", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
    return vpc


class ControlPlaneCompute(Construct):
    """ECS on Fargate (API + worker), ALB + WAF and RDS PostgreSQL, wired to the platform's resources."""

    def __init__(self, scope: PlatformStack, construct_id: str, *, platform: PlatformStack) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.settings = ComputeSettings.from_node(self)
        self.platform = platform
        vpc = platform.vpc
        self._allow_logs_to_use_key(stack)

        self.alb_security_group = ec2.SecurityGroup(
            self, "LoadBalancerSecurityGroup", vpc=vpc, description="Fraudrail API load balancer"
        )
        for port in (443, 80):  # 80 only answers a redirect to 443
            self.alb_security_group.add_ingress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(port), f"HTTP(S) {port}"
            )
        self.service_security_group = ec2.SecurityGroup(
            self, "ServiceSecurityGroup", vpc=vpc, description="Fraudrail API and worker tasks"
        )
        self.service_security_group.add_ingress_rule(
            self.alb_security_group, ec2.Port.tcp(API_PORT), "API from the load balancer only"
        )

        self.database_logs = self._log_group("DatabaseLogs", DB_LOG_GROUP)
        self.database = control_plane_database(
            self,
            vpc=vpc,
            key=platform.key,
            clients=self.service_security_group,
            instance_class=self.settings.db_instance_class,
            log_group=self.database_logs,
        )
        self.redis_url_secret = redis_url_secret(self, platform)
        self.card_hash_secret = generated_secret(self, "CardHashKey", "FRAUDRAIL_CARD_HASH_KEY", platform.key)
        self.metrics_token_secret = generated_secret(
            self, "MetricsToken", "FRAUDRAIL_METRICS_TOKEN", platform.key
        )
        secrets = {
            "FRAUDRAIL_DATABASE_URL": ecs.Secret.from_secrets_manager(self.database.url_secret),
            "FRAUDRAIL_REDIS_URL": ecs.Secret.from_secrets_manager(self.redis_url_secret),
            "FRAUDRAIL_CARD_HASH_KEY": ecs.Secret.from_secrets_manager(self.card_hash_secret),
            "FRAUDRAIL_METRICS_TOKEN": ecs.Secret.from_secrets_manager(self.metrics_token_secret),
        }
        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Fraudrail control plane tasks: the AWS adapters' calls (docs/aws.md)",
        )
        for statement in task_statements(stack, platform, self.sagemaker_role.role_arn):
            self.task_role.add_to_policy(statement)
        self.tenant_stack_role = tenant_stack_role(self, "TenantStackRole")
        self.task_role.add_to_policy(pass_tenant_stack_role(self.tenant_stack_role.role_arn))
        image = ecs.ContainerImage.from_ecr_repository(
            ecr.Repository.from_repository_name(self, "Repository", self.settings.repository),
            self.settings.tag,
        )
        environment = self._environment(stack)
        self.api_log_group = self._log_group("ApiLogs", f"{LOG_PREFIX}/api")
        self.worker_log_group = self._log_group("WorkerLogs", f"{LOG_PREFIX}/worker")
        self.api_service = self._service(
            "Api", image, ["serve", "--no-worker"], environment, secrets, self.api_log_group, 1024, 2048
        )
        # The worker synthesizes tenant stacks (jsii + node): more memory than the API.
        self.worker_service = self._service(
            "Worker", image, ["worker"], environment, secrets, self.worker_log_group, 1024, 4096
        )
        self.load_balancer, self.target_group = api_load_balancer(
            self,
            vpc=vpc,
            security_group=self.alb_security_group,
            service=self.api_service,
            port=API_PORT,
            certificate=certificate_arn(self, self.settings.certificate_arn, CTX_CERTIFICATE_ARN),
        )
        self.web_acl = api_web_acl(self, self.load_balancer, self.settings.waf_rate_limit)
        self._autoscaling()
        self._outputs(stack)

    # ------------------------------------------------------------------ database and secrets
    def _environment(self, stack: Stack) -> dict[str, str]:
        p = self.platform
        return {
            "FRAUDRAIL_ENV": "production",
            "FRAUDRAIL_PROVIDER": "aws",
            "FRAUDRAIL_CACHE_BACKEND": "redis",
            # Redis, not SNS: SNS cannot reach tasks in private subnets (docs/aws.md).
            "FRAUDRAIL_BUS_BACKEND": "redis",
            "FRAUDRAIL_AWS_REGION": stack.region,
            "FRAUDRAIL_AWS_BUCKET": p.bucket.bucket_name,
            "FRAUDRAIL_AWS_FLAGGED_TABLE": p.flagged_table.table_name,
            "FRAUDRAIL_AWS_ROLLBACK_TABLE": p.rollback_table.table_name,
            "FRAUDRAIL_AWS_ALARM_TOPIC_ARN": p.alarm_topic.topic_arn,
            "FRAUDRAIL_AWS_POOLED_ENDPOINT": p.pooled_endpoint.attr_endpoint_name,
            "FRAUDRAIL_AWS_KMS_KEY_ID": p.key.key_arn,
            "FRAUDRAIL_AWS_ENDPOINT_KMS_KEY_ID": p.key.key_arn,
            "FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN": self.sagemaker_role.role_arn,
            "FRAUDRAIL_AWS_INFERENCE_IMAGE_URI": self.inference_image_uri,
            "FRAUDRAIL_AWS_CFN_ROLE_ARN": self.tenant_stack_role.role_arn,
            "FRAUDRAIL_AWS_METRICS_NAMESPACE": p.names.metrics_namespace,
            "FRAUDRAIL_HOST": "0.0.0.0",  # noqa: S104 - inside the task; the security group admits the ALB only
            "FRAUDRAIL_PORT": str(API_PORT),
        }

    @property
    def sagemaker_role(self) -> iam.IRole:
        """The pooled endpoint's model role doubles as the per-version models' execution role: both
        read ``tenants/*`` of the platform bucket and pull the inference image."""
        role: iam.IRole = self.platform.node.find_child("PooledModelRole")
        return role

    @property
    def inference_image_uri(self) -> str:
        stack, names = Stack.of(self), self.platform.names
        registry = f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}"
        return f"{registry}/{names.image_repository}:{names.image_tag}"

    def _log_group(self, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=self.platform.key,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _allow_logs_to_use_key(self, stack: Stack) -> None:
        self.platform.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowControlPlaneLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": [
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{LOG_PREFIX}/*",
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/rds/instance/{DB_INSTANCE_ID}/*",
                        ]
                    }
                },
            )
        )

    def _service(
        self,
        name: str,
        image: ecs.ContainerImage,
        command: list[str],
        environment: dict[str, str],
        secrets: dict[str, ecs.Secret],
        log_group: logs.LogGroup,
        cpu: int,
        memory: int,
    ) -> ecs.FargateService:
        task = ecs.FargateTaskDefinition(
            self, f"{name}Task", cpu=cpu, memory_limit_mib=memory, task_role=self.task_role
        )
        is_api = name == "Api"
        task.add_container(
            name.lower(),
            image=image,
            command=command,
            environment=environment,
            secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name.lower(), log_group=log_group),
            port_mappings=[ecs.PortMapping(container_port=API_PORT)] if is_api else None,
            # The API's own check mirrors the load balancer's; the worker serves no HTTP.
            health_check=ecs.HealthCheck(
                command=[
                    "CMD",
                    "python",
                    "-c",
                    "import urllib.request; urllib.request.urlopen("
                    f"'http://127.0.0.1:{API_PORT}{HEALTH_PATH}', timeout=4)",
                ],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(60),
            )
            if is_api
            else None,
        )
        low, _ = self.settings.api_tasks if is_api else self.settings.worker_tasks
        return ecs.FargateService(
            self,
            f"{name}Service",
            cluster=self.cluster,
            task_definition=task,
            desired_count=low,
            security_groups=[self.service_security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=Duration.seconds(120) if is_api else None,
        )

    # ------------------------------------------------------------------ edge
    def _autoscaling(self) -> None:
        low, high = self.settings.api_tasks
        api = self.api_service.auto_scale_task_count(min_capacity=low, max_capacity=high)
        api.scale_on_request_count(
            "RequestsPerTarget",
            requests_per_target=self.settings.requests_per_target,
            target_group=self.target_group,
        )
        api.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        low, high = self.settings.worker_tasks
        worker = self.worker_service.auto_scale_task_count(min_capacity=low, max_capacity=high)
        worker.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)

    def _outputs(self, stack: Stack) -> None:
        outputs = {
            "ApiUrl": Fn.join("", ["https://", self.load_balancer.load_balancer_dns_name]),
            "LoadBalancerDnsName": self.load_balancer.load_balancer_dns_name,
            "WebAclArn": self.web_acl.attr_arn,
            "ClusterName": self.cluster.cluster_name,
            "ApiServiceName": self.api_service.service_name,
            "WorkerServiceName": self.worker_service.service_name,
            "ApiTaskDefinitionArn": self.api_service.task_definition.task_definition_arn,
            "ServiceSecurityGroupId": self.service_security_group.security_group_id,
            "ServiceSubnetIds": Fn.join(",", [s.subnet_id for s in self.platform.vpc.private_subnets]),
            "ApiLogGroupName": self.api_log_group.log_group_name,
            "WorkerLogGroupName": self.worker_log_group.log_group_name,
            "DatabaseEndpoint": self.database.instance.db_instance_endpoint_address,
            "DatabaseSecretArn": self.database.credentials.secret_arn,
            "DatabaseUrlSecretArn": self.database.url_secret.secret_arn,
            "RedisUrlSecretArn": self.redis_url_secret.secret_arn,
            "MetricsTokenSecretArn": self.metrics_token_secret.secret_arn,
            "ControlPlaneImage": f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}/"
            f"{self.settings.repository}:{self.settings.tag}",
            "InferenceImageUri": self.inference_image_uri,
            "SageMakerRoleArn": self.sagemaker_role.role_arn,
            "TaskRoleArn": self.task_role.role_arn,
            "TenantStackRoleArn": self.tenant_stack_role.role_arn,
        }
        for output_id, value in outputs.items():
            output = CfnOutput(self, output_id, value=value)
            output.override_logical_id(output_id)  # stable, readable keys in describe-stacks
