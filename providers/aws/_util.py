"""Small helpers shared by the AWS adapters (error codes, names AWS accepts)."""

from __future__ import annotations

import hashlib
import re

from botocore.exceptions import BotoCoreError, ClientError

from providers.ports import ProviderError

AwsError = (ClientError, BotoCoreError)
"""What a boto3 call raises when AWS (or the network to it) fails."""

_UNSAFE = re.compile(r"[^a-z0-9-]+")
_UNSAFE_KEEP_CASE = re.compile(r"[^A-Za-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


_HTML = re.compile(r"<\s*(!doctype|html|head|body|title)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title>([^<]{1,120})</title>", re.IGNORECASE)


def error_message(exc: BaseException) -> str:
    """The error's message, never an HTML page: a proxy's or emulator's error page is summarised
    (it would otherwise reach operators' Slack / Teams messages verbatim)."""
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    else:
        message, status = str(exc), None
    if _HTML.search(message):
        title = _TITLE.search(message)
        summary = f" ({title.group(1).strip()})" if title else ""
        return f"the service answered HTTP {status or 'error'} with an HTML page{summary}, not an AWS error"
    return message


def provider_error(what: str, exc: BaseException) -> ProviderError:
    code = error_code(exc)
    return ProviderError(f"{what}: {code + ': ' if code else ''}{error_message(exc)}")


def short_hash(value: str, n: int = 10) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def sagemaker_slug(tenant_id: str) -> str:
    """A tenant id as SageMaker and CloudFormation names accept it (``ten_ab`` -> ``ten-ab``).

    Kept equal to ``cdk.config.sagemaker_slug`` (a test checks it) without importing the
    CDK package into the control plane.
    """
    slug = _UNSAFE.sub("-", tenant_id.lower()).strip("-")
    if not slug:
        raise ValueError(f"tenant id {tenant_id!r} has no usable characters")
    return slug


def bounded_name(name: str, limit: int, *, keep_case: bool = False) -> str:
    """``name`` made safe for SageMaker / CloudFormation and cut to ``limit`` with a hash suffix."""
    pattern = _UNSAFE_KEEP_CASE if keep_case else _UNSAFE
    safe = _DASHES.sub("-", pattern.sub("-", name if keep_case else name.lower())).strip("-")
    if not safe:
        raise ValueError(f"{name!r} has no usable characters")
    if safe == name and len(safe) <= limit:
        return safe
    # Sanitised or too long: a hash of the original keeps different inputs apart.
    return f"{safe[: limit - 9].rstrip('-')}-{short_hash(name, 8)}"


def tenant_stack_name(tenant_id: str) -> str:
    """The tenant's CloudFormation stack (``cdk.config.tenant_stack_name``)."""
    return f"fraudrail-tenant-{sagemaker_slug(tenant_id)}"


def tenant_endpoint_name(tenant_id: str) -> str:
    """The tenant's own SageMaker endpoint (``cdk.config.tenant_endpoint_name``)."""
    name = f"fraudrail-{sagemaker_slug(tenant_id)}"
    if len(name) > 63:
        raise ValueError(f"endpoint name {name!r} is longer than SageMaker's 63 characters")
    return name
