"""The OpenAPI document as the API really answers: every error is ``application/problem+json``.

FastAPI documents only what a route declares, plus a 422 in its own body shape; the app answers
every error through ``control_plane.http.problem``. This post-processes the generated document in
one place (no per-route ``responses=``): a ``Problem`` schema, and on every operation the error
answers it can give — 400, 401, 403, 404, 409, 413, 422, 429, 500, 503 by what the operation is
(authenticated, has path parameters, takes a body) — each as problem+json. Operations without a
description get one. ``tests/control_plane/test_openapi_conformance.py`` drives each operation and
fails on any status code or content type the document does not declare.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An error, as RFC 9457 problem details. Extra members depend on the error.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem"},
        "title": {"type": "string", "description": "A short summary of the kind of problem"},
        "status": {"type": "integer", "description": "The HTTP status code"},
        "detail": {"type": "string", "description": "What went wrong in this request, readable"},
        "field": {"type": "string", "description": "The input the problem is about (a dotted path)"},
        "errors": {
            "type": "array",
            "description": "Every invalid input (422)",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string", "description": "The input (a dotted path)"},
                    "message": {"type": "string", "description": "Why it is invalid"},
                    "type": {"type": "string", "description": "The kind of validation error"},
                },
            },
        },
        "retry_after_s": {"type": "integer", "description": "Seconds to wait (also in Retry-After)"},
        "violations": {
            "type": "array",
            "description": "Every policy rule the request broke (policy denials)",
            "items": {"type": "object"},
        },
    },
    "additionalProperties": True,
}

ERROR_ANSWERS = {
    400: "Bad request (a malformed value the schema cannot express)",
    401: "No API key, or an invalid or revoked one",
    403: "The key's scope does not allow this, or the tenant's state (suspended, budget frozen) forbids it",
    404: "Not found; another tenant's resources answer 404 too",
    409: "Conflicts with the current state (an illegal transition, a reused id)",
    413: "The body is larger than the limit",
    422: "Invalid input: the problem names each field",
    429: "Rate limited or over quota: wait Retry-After seconds (RateLimit-* headers)",
    500: "An unexpected error (logged)",
    503: "A dependency is unavailable (database, policy engine, model, spool): retry after Retry-After",
}
METHODS = ("get", "put", "post", "delete", "patch")


def error_codes(path: str, method: str, op: dict[str, Any]) -> list[int]:
    """The error answers an operation can give, from what it is."""
    codes = {500}
    params = op.get("parameters", [])
    if path.startswith("/v1/") or path.startswith("/console"):
        codes |= {400, 401, 403, 404, 409, 429, 503}
    if "requestBody" in op:
        codes |= {413, 422}
    if params:
        codes.add(422)  # a malformed path or query parameter
    return sorted(codes)


def _describe(op: dict[str, Any], path: str, method: str) -> None:
    if not op.get("description"):
        summary = op.get("summary") or re.sub(r"[_-]+", " ", str(op.get("operationId", ""))).strip()
        op["description"] = f"{summary or method.upper() + ' ' + path}."


def conform(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the Problem schema and the real error answers on every operation (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses: dict[str, Any] = op.setdefault("responses", {})
            for code in error_codes(path, method, op):
                declared = responses.get(str(code), {})
                responses[str(code)] = {
                    "description": declared.get("description") or ERROR_ANSWERS[code],
                    "content": {PROBLEM_TYPE: {"schema": PROBLEM_REF}},
                }
            for status, answer in responses.items():  # errors a route declared itself
                if status[0] in "45" and PROBLEM_TYPE not in answer.get("content", {}):
                    answer["content"] = {PROBLEM_TYPE: {"schema": PROBLEM_REF}}
            _describe(op, path, method)
    text = repr(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}'" not in text:
            components.pop(unused, None)
    return schema


def install_problem_openapi(app: FastAPI) -> None:
    """Serve the conformed document at the app's openapi_url (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = conform(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
