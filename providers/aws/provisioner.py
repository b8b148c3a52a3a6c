"""Provisioner on CloudFormation: one stack per tenant, gated by ``fraudrail.infrastructure``.

``apply`` synthesizes the tenant's template, evaluates it with the infrastructure policy
(a denial is a :class:`PermanentProviderError` naming every violated rule, so the tenant goes to
FAILED without retries and no stack is created), then creates the stack, or leaves a
``CREATE_COMPLETE`` one alone, or updates one in another stable state, and polls
``DescribeStacks`` until it settles. A failed stack raises :class:`StackFailedError` with the
stack's status reason and its first failed resource event.

With a model host, the plan's second step is the tenant's model-hosting slot (the tier
template's ``resources.model_host_slot``: serverless, pooled or dedicated), so a promoted
version has somewhere to be deployed; ``destroy`` deletes what the host made (endpoint, configs,
models, slot record). With a tag inventory, ``list_resources`` also lists every live resource
tagged with the tenant, whatever the stack says (offboarding is empty only when that is empty).

The stack is named after the tenant id (``fraudrail-tenant-<tenant-slug>``, the name
``cdk.config.tenant_stack_name`` gives), so ``list_resources(tenant_id)`` finds it without
the tenant's other fields and a hand-run ``cdk deploy`` of the same tenant meets the same stack.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from providers.aws._util import (
    AwsError,
    error_code,
    error_message,
    provider_error,
    tenant_stack_name,
)
from providers.ports import ModelHost, PermanentProviderError, PlannedResource, ProviderError, TenantSpec

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

    from guardrails.policy import PolicyEngine
    from providers.aws.inventory import TaggedInventory
    from providers.aws.teardown import RetainedResources

log = logging.getLogger(__name__)

POLICY_PACKAGE = "fraudrail.infrastructure"
STACK_KIND = "stack"
SLOT_KIND = "model_slot"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]

_IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
_FAILED = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "IMPORT_ROLLBACK_COMPLETE",
    "IMPORT_ROLLBACK_FAILED",
}
_RESOURCE_FAILED = {"CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED"}
_PERMANENT_CODES = {"ValidationError", "InsufficientCapabilitiesException", "ValidationException"}

Synthesizer = Callable[[TenantSpec], Mapping[str, Any]]
Progress = Callable[[str, str], None]


class StackFailedError(ProviderError):
    """A stack ended in a failed or rolled-back state; the message says why."""


class CloudFormationProvisioner:
    def __init__(
        self,
        cfn_client: CloudFormationClient,
        policy_engine: PolicyEngine,
        synthesize: Synthesizer,
        *,
        allowed_instance_types_for: Callable[[str], list[str]],
        poll_s: float,
        timeout_s: float,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        model_host: ModelHost | None = None,
        inventory: TaggedInventory | None = None,
        deploy_transform: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
        retained: RetainedResources | None = None,
        service_role_arn: str | None = None,
    ) -> None:
        # CloudFormation acts with this role (RoleARN) on every stack call; None: the caller's.
        self._role: dict[str, Any] = {"RoleARN": service_role_arn} if service_role_arn else {}
        self._retained = retained
        self._deploy_transform = deploy_transform
        self._cfn = cfn_client
        self._host = model_host
        self._inventory = inventory
        self._policy = policy_engine
        self._synthesize = synthesize
        self._instance_types_for = allowed_instance_types_for
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._progress = progress
        self._clock = clock
        self._pause = threading.Event()

    @staticmethod
    def stack_name(tenant_id: str) -> str:
        return tenant_stack_name(tenant_id)

    def plan(self, spec: TenantSpec) -> list[PlannedResource]:
        plan = [PlannedResource(STACK_KIND, self.stack_name(spec.tenant_id))]
        if self._host is not None:
            slot = str(spec.template.get("resources", {}).get("model_host_slot", "pooled"))
            plan.append(PlannedResource(SLOT_KIND, slot))
        return plan

    # ------------------------------------------------------------------- apply

    def check_policy(self, spec: TenantSpec, template: Mapping[str, Any]) -> None:
        """Raise :class:`PermanentProviderError` listing every rule the template violates."""
        decision = self._policy.evaluate(
            POLICY_PACKAGE,
            {
                "template": dict(template),
                "tier": spec.tier,
                "region": spec.region,
                "allowed_regions": list(spec.template.get("allowed_regions", [])),
                "allowed_instance_types": list(self._instance_types_for(spec.tier)),
            },
        )
        if decision.allowed:
            return
        rules = sorted(decision.rules)
        details = "; ".join(
            f"{v.rule}{f' at {v.field}' if v.field else ''}: {v.message}"
            for v in sorted(decision.violations, key=lambda v: (v.rule, v.field or ""))
        )
        raise PermanentProviderError(
            f"policy {POLICY_PACKAGE} denied the stack of tenant {spec.tenant_id} "
            f"(rules: {', '.join(rules)}): {details}"
        )

    def apply(self, spec: TenantSpec, resource: PlannedResource) -> bool:
        if resource.kind == SLOT_KIND and self._host is not None:
            try:
                return self._host.ensure_slot(spec.tenant_id, resource.name)
            except ValueError as exc:  # an unknown slot kind in the tier template: no retry helps
                raise PermanentProviderError(str(exc)) from exc
        if resource.kind != STACK_KIND:
            raise ValueError(f"unknown resource kind {resource.kind!r}")
        name = resource.name
        template = self._synthesize(spec)
        self.check_policy(spec, template)  # the real template, even when an emulator gets less
        if self._deploy_transform is not None:
            template = self._deploy_transform(dict(template))
        body = json.dumps(template, separators=(",", ":"), sort_keys=True)
        stack = self._describe(name)
        if stack is not None and str(stack["StackStatus"]).endswith(_IN_PROGRESS_SUFFIX):
            stack = self._wait(name, stack_id=str(stack["StackId"]), allow_failed=True)
        status = None if stack is None else str(stack["StackStatus"])
        if status in {"CREATE_COMPLETE", "IMPORT_COMPLETE"}:
            return False
        if status in {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"}:
            # A stack whose creation failed cannot be updated: delete it and create it again.
            assert stack is not None
            log.info("stack %s is %s: deleting it before creating it again", name, status)
            self._delete_and_wait(name, str(stack["StackId"]))
            status = None
        if status is None:
            stack_id = self._create(spec, name, body)
            self._wait(name, stack_id=stack_id, last="CREATE_IN_PROGRESS")
            return True
        self._update(name, body)
        return False

    def _tags(self, spec: TenantSpec) -> list[Any]:
        return [
            {"Key": "tenant_id", "Value": spec.tenant_id},
            {"Key": "tier", "Value": spec.tier},
            {"Key": "managed-by", "Value": "fraudrail-control-plane"},
        ]

    def _create(self, spec: TenantSpec, name: str, body: str) -> str:
        try:
            response = self._cfn.create_stack(
                StackName=name,
                TemplateBody=body,
                Capabilities=CAPABILITIES,  # type: ignore[arg-type]
                Tags=self._tags(spec),
                OnFailure="ROLLBACK",
                **self._role,
            )
        except AwsError as exc:
            if error_code(exc) == "AlreadyExistsException":
                stack = self._describe(name)
                if stack is None:
                    raise provider_error(f"create stack {name}", exc) from exc
                return str(stack["StackId"])
            raise self._rejected("create", name, exc) from exc
        self._report(name, "CREATE_IN_PROGRESS")
        return str(response["StackId"])

    def _update(self, name: str, body: str) -> None:
        try:
            response = self._cfn.update_stack(
                StackName=name,
                TemplateBody=body,
                Capabilities=CAPABILITIES,  # type: ignore[arg-type]
                **self._role,
            )
        except AwsError as exc:
            if "no updates are to be performed" in error_message(exc).lower():
                return
            raise self._rejected("update", name, exc) from exc
        self._wait(name, stack_id=str(response["StackId"]))

    @staticmethod
    def _rejected(action: str, name: str, exc: BaseException) -> Exception:
        message = f"CloudFormation rejected the {action} of stack {name}: {error_message(exc)}"
        if error_code(exc) in _PERMANENT_CODES:
            return PermanentProviderError(message)
        return provider_error(f"{action} stack {name}", exc)

    # --------------------------------------------------------------- watching

    def _describe(self, name_or_id: str) -> dict[str, Any] | None:
        try:
            stacks = self._cfn.describe_stacks(StackName=name_or_id).get("Stacks", [])
        except AwsError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
                return None
            raise provider_error(f"describe stack {name_or_id}", exc) from exc
        if not stacks or stacks[0].get("StackStatus") == "DELETE_COMPLETE":
            return None
        return dict(stacks[0])

    def _report(self, name: str, status: str) -> None:
        log.info("stack %s: %s", name, status)
        if self._progress is not None:
            try:
                self._progress(name, status)
            except Exception:
                log.exception("progress callback failed")

    def _wait(
        self, name: str, *, stack_id: str, allow_failed: bool = False, last: str = ""
    ) -> dict[str, Any] | None:
        """Poll until the stack leaves *_IN_PROGRESS; raise on a failed state unless allowed."""
        deadline = self._clock() + self._timeout_s
        while True:
            stack = self._describe(stack_id)
            if stack is None:
                return None
            status = str(stack["StackStatus"])
            if status != last:
                self._report(name, status)
                last = status
            if not status.endswith(_IN_PROGRESS_SUFFIX):
                if status in _FAILED and not allow_failed:
                    raise StackFailedError(self._failure(name, stack_id, stack))
                return stack
            if self._clock() > deadline:
                raise ProviderError(f"stack {name} still {status} after {self._timeout_s:.0f}s")
            self._pause.wait(self._poll_s)

    def _failure(self, name: str, stack_id: str, stack: Mapping[str, Any]) -> str:
        parts = [f"stack {name} is {stack['StackStatus']}"]
        if stack.get("StackStatusReason"):
            parts.append(str(stack["StackStatusReason"]))
        first = self._first_failed_event(stack_id)
        if first:
            parts.append(f"first failure: {first}")
        return "; ".join(parts)

    def _first_failed_event(self, stack_id: str) -> str | None:
        try:
            events: list[Any] = []
            for page in self._cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id):
                events.extend(page.get("StackEvents", []))
        except AwsError as exc:
            log.warning("could not read the events of %s: %s", stack_id, exc)
            return None
        failed = [e for e in events if e.get("ResourceStatus") in _RESOURCE_FAILED]
        if not failed:
            return None
        # Events come newest first; the earliest failure is the cause, later ones are cancellations.
        event = min(failed, key=lambda e: e.get("Timestamp") or 0)
        return (
            f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}) {event.get('ResourceStatus')}: "
            f"{event.get('ResourceStatusReason') or 'no reason given'}"
        )

    # ----------------------------------------------------------------- destroy

    def _delete_and_wait(self, name: str, stack_id: str) -> None:
        try:
            self._cfn.delete_stack(StackName=stack_id, **self._role)
        except AwsError as exc:
            raise provider_error(f"delete stack {name}", exc) from exc
        self._report(name, "DELETE_IN_PROGRESS")
        stack = self._wait(name, stack_id=stack_id, allow_failed=True, last="DELETE_IN_PROGRESS")
        if stack is not None and stack.get("StackStatus") != "DELETE_COMPLETE":
            raise StackFailedError(self._failure(name, stack_id, stack))

    def destroy(self, spec: TenantSpec) -> list[str]:
        removed = []
        if self._host is not None and self._host.delete_tenant(spec.tenant_id):
            removed.append(f"{SLOT_KIND}:{spec.tenant_id}")  # before the stack: its endpoint uses the role
        name = self.stack_name(spec.tenant_id)
        stack = self._describe(name)
        if stack is not None:
            keep = self._retained.of(self._summaries(str(stack["StackId"]))) if self._retained else []
            self._delete_and_wait(name, str(stack["StackId"]))
            removed.append(f"{STACK_KIND}:{name}")
            if self._retained is not None:  # the silo bucket and key outlive the stack on purpose
                removed.extend(self._retained.remove(keep))
        return removed

    def _summaries(self, stack_id: str) -> list[dict[str, Any]]:
        try:
            return [
                dict(res)
                for page in self._cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id)
                for res in page.get("StackResourceSummaries", [])
            ]
        except AwsError as exc:
            raise provider_error(f"list resources of {stack_id}", exc) from exc

    def list_resources(self, tenant_id: str) -> list[str]:
        found = self._stack_resources(tenant_id)
        if self._host is not None:
            found.extend(f"{SLOT_KIND}:{slot.kind}" for slot in self._host.slots(tenant_id))
        if self._inventory is not None:
            found.extend(f"tagged:{item}" for item in self._inventory.tagged(tenant_id))
        return found

    def _stack_resources(self, tenant_id: str) -> list[str]:
        name = self.stack_name(tenant_id)
        stack = self._describe(name)
        if stack is None:
            return []
        found = [f"{STACK_KIND}:{name}"]
        try:
            for page in self._cfn.get_paginator("list_stack_resources").paginate(
                StackName=str(stack["StackId"])
            ):
                for res in page.get("StackResourceSummaries", []):
                    if res.get("ResourceStatus") == "DELETE_COMPLETE":
                        continue
                    physical = res.get("PhysicalResourceId") or res.get("LogicalResourceId")
                    found.append(f"{res.get('ResourceType')}:{physical}")
        except AwsError as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
                return []
            raise provider_error(f"list resources of {name}", exc) from exc
        return found
