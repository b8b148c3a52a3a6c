"""OpenAPI conformance: every answer's status code and content type is declared for its operation.

Drives each operation of the served document with a few requests — valid where no body or path id
is needed, unauthenticated, with a key of the wrong scope, with a bad body, with an unknown id —
and fails on any status or content type the document does not declare for that operation (the
checks schemathesis calls status_code_conformance and content_type_conformance).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.control_plane.conftest import OnboardFn, auth

METHODS = ("get", "put", "post", "delete", "patch")


def _url(path: str, op: dict[str, Any], tenant_id: str) -> str:
    for param in op.get("parameters", []):
        if param.get("in") == "path":
            value = tenant_id if param["name"] == "tenant_id" else "zz_unknown_1"
            path = path.replace("{" + param["name"] + "}", value)
    return path


def _undeclared(op: dict[str, Any], resp: Any) -> str | None:
    declared = op.get("responses", {})
    answer = declared.get(str(resp.status_code)) or declared.get("default")
    if answer is None:
        return f"status {resp.status_code} not declared (declared: {sorted(declared)})"
    ctype = resp.headers.get("content-type", "").split(";")[0].strip()
    content = answer.get("content", {})
    if resp.content and ctype not in content:
        return f"status {resp.status_code} content type {ctype!r} not declared ({sorted(content)})"
    return None


def test_every_answer_is_declared_in_the_openapi_document(
    client: TestClient, admin_key: str, onboard: OnboardFn
) -> None:
    tenant = onboard("conform", scopes=("app", "analyst"))
    spec = client.get("/openapi.json").json()
    assert "Problem" in spec["components"]["schemas"]
    failures: list[str] = []
    driven = 0
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            assert op.get("description"), f"{method.upper()} {path} has no description"
            url = _url(path, op, tenant["id"])
            has_body = "requestBody" in op
            attempts: list[tuple[str, dict[str, str], dict[str, Any]]] = [
                ("no key", {}, {}),
                ("invalid key", auth("frk_0000000000000000.nope"), {}),
                ("wrong scope (analyst)", auth(tenant["analyst"]), {}),
                ("wrong scope (app)", auth(tenant["app"]), {}),
                ("platform admin", auth(admin_key), {"json": {}} if has_body else {}),
                ("tenant admin", auth(tenant["admin"]), {"json": {}} if has_body else {}),
            ]
            if has_body:
                attempts.append(("not JSON", auth(tenant["admin"]), {"content": b"{nope"}))
            for label, headers, kwargs in attempts:
                resp = client.request(method.upper(), url, headers=headers, **kwargs)
                driven += 1
                problem = _undeclared(op, resp)
                if problem:
                    failures.append(f"{method.upper()} {path} [{label}]: {problem}")
                if resp.status_code >= 400 and resp.content:
                    ctype = resp.headers.get("content-type", "")
                    if not ctype.startswith("application/problem+json") and path.startswith("/v1"):
                        failures.append(f"{method.upper()} {path} [{label}]: error as {ctype}")
    assert driven > 200
    assert not failures, "\n".join(failures)
