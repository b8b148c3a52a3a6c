"""The OpenAPI fuzz suite's driver: walks every operation of the OpenAPI document (and the
console's HTML routes) with every key whose scope it accepts, and collects each defect."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from fastapi.testclient import TestClient
from starlette.routing import Match

from control_plane.http import PROBLEM
from control_plane.web.queue_form import QUEUE_FIELDS
from tests.control_plane.conftest import auth
from tests.control_plane.fuzz_inputs import (
    CRAFTED_CURSORS,
    DESTRUCTIVE,
    HUGE_INT,
    ID_PREFIXES,
    MISSING,
    PATH_GARBAGE,
    RAW_BODIES,
    SKIPPED_PATHS,
    UNIQUE_KEYS,
    UPLOADS,
    VALID_CSV,
    Case,
    Schemas,
    crafted_cursor,
    csv_upload,
    encode_json,
    object_properties,
    path_segment,
    set_path,
)


@dataclass
class Operation:
    method: str
    path: str
    op: dict[str, Any]
    base: Case
    scopes: list[str]


class Fuzzer:
    def __init__(self, client: TestClient, keys: dict[str, str], real_ids: dict[str, str]) -> None:
        self.client = client
        self.keys = keys
        self.real_ids = real_ids
        self.spec = client.app.openapi()  # type: ignore[attr-defined]
        self.schemas = Schemas(self.spec)
        self.failures: list[str] = []
        self.sent = 0
        self.succeeded = 0  # answers below 400: the walk got past validation and auth

    # -- sending and checking --

    def send(self, method: str, case: Case, token: str | None) -> Any:
        headers = auth(token) if token else {}
        if case.content is not None and case.content_type:
            headers["content-type"] = case.content_type
        self.sent += 1
        return self.client.request(
            method,
            case.url,
            params=case.params or None,
            content=case.content,
            files=case.files,
            data=case.data,
            headers=headers,
            follow_redirects=False,
        )

    def _matches_a_route(self, method: str, url: str) -> bool:
        path = unquote(unquote(url.split("?", 1)[0]))
        scope = {"type": "http", "path": path, "method": method, "root_path": ""}
        routes = self.client.app.routes  # type: ignore[attr-defined]
        return any(r.matches(scope)[0] is Match.FULL for r in routes)

    def check(self, method: str, case: Case, scope: str, resp: Any, *, html: bool = False) -> None:
        status = resp.status_code
        self.succeeded += status < 400
        problem = ""
        if status >= 500:
            problem = "server error"
        elif 400 <= status < 500 and not html:
            if status == 405 or (status == 404 and not self._matches_a_route(method, case.url)):
                return  # Starlette's answer for a path or method that no route has
            ctype = resp.headers.get("content-type", "")
            if not ctype.startswith(PROBLEM):
                problem = f"4xx with content-type {ctype!r}"
            else:
                try:
                    body = resp.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict) or not body.get("detail"):
                    problem = "problem without detail"
                elif status == 422 and not body.get("field"):
                    problem = "422 without field"
        if problem:
            excerpt = resp.text[:240].replace("\n", " ")
            self.failures.append(
                f"{method} {case.url[:120]} [{scope}] {case.what}: {status} {problem} — {excerpt}"
            )

    # -- building requests --

    def fill(self, method: str, template: str, overrides: dict[str, str] | None = None) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if overrides and name in overrides:
                return path_segment(overrides[name])
            real = self.real_ids.get(name)
            if real and (method, template) not in DESTRUCTIVE:
                return real
            return f"{ID_PREFIXES.get(name, 'x')}_{MISSING}"

        return re.sub(r"{(\w+)}", value, template)

    @staticmethod
    def request_body(op: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        for media, spec in op.get("requestBody", {}).get("content", {}).items():
            return media, spec.get("schema", {})
        return None, None

    def well_formed(self, method: str, path: str, op: dict[str, Any]) -> list[Case]:
        """Candidate well-formed requests: required properties only, then every property set."""
        media, schema = self.request_body(op)
        url = self.fill(method, path)
        if media == "multipart/form-data":
            return [
                Case(
                    "well-formed",
                    url,
                    files=csv_upload("x.csv", VALID_CSV),
                    data={"name": "fuzz"},
                    content_type=None,
                )
            ]
        if media == "application/json" and schema is not None:
            bodies = [self.schemas.example(schema), self.schemas.example(schema, full=True)]
            return [Case("well-formed", url, content=encode_json(b)) for b in bodies]
        return [Case("well-formed", url, content_type=None)]

    def prepare(self, method: str, path: str, op: dict[str, Any]) -> Operation:
        """The keys that do not get 401/403 on a well-formed request (else the platform admin's),
        and the first candidate request that some key gets past validation with."""
        candidates = self.well_formed(method, path, op)
        base, accepted = candidates[0], []
        for candidate in candidates:
            statuses: dict[str, int] = {}
            for scope, token in self.keys.items():
                resp = self.send(method, candidate, token)
                self.check(method, candidate, scope, resp)
                statuses[scope] = resp.status_code
            base = candidate
            accepted = [s for s, code in statuses.items() if code not in (401, 403)]
            if any(code not in (401, 403, 422) for code in statuses.values()):
                break
        no_key = self.send(method, base, None)
        self.check(method, base, "no key", no_key)
        return Operation(method, path, op, base, accepted or ["platform-admin"])

    def cases(self, o: Operation) -> Iterator[Case]:
        base, params = o.base, o.op.get("parameters", [])
        for p in params:
            if p["in"] != "path":
                continue
            name = p["name"]
            missing = ("missing id of the right prefix", f"{ID_PREFIXES.get(name, 'x')}_{MISSING}")
            for what, value in [*PATH_GARBAGE, missing]:
                url = self.fill(o.method, o.path, {name: value})
                yield Case(
                    f"path {name}={what}", url, [], base.content, base.content_type, base.files, base.data
                )
        for p in params:
            if p["in"] != "query":
                continue
            name = p["name"]
            for what, value in self.schemas.query_values(p.get("schema", {})):
                yield Case(
                    f"query {name}={what}",
                    base.url,
                    [(name, value)],
                    base.content,
                    base.content_type,
                    base.files,
                    base.data,
                )
            yield Case(
                f"query {name} repeated",
                base.url,
                [(name, "1"), (name, "abc")],
                base.content,
                base.content_type,
                base.files,
                base.data,
            )
            yield Case(
                f"query {name}=invalid UTF-8",
                f"{base.url}?{name}=%FF%FE",
                [],
                base.content,
                base.content_type,
                base.files,
                base.data,
            )
        names = {p["name"] for p in params if p["in"] == "query"}
        if {"cursor", "sort"} <= names:
            for what, sort, value, item_id in CRAFTED_CURSORS:
                token = crafted_cursor({"k": sort, "o": "desc", "v": value, "i": item_id})
                yield Case(
                    f"query cursor={what}", base.url, [("sort", sort), ("order", "desc"), ("cursor", token)]
                )
        media, schema = self.request_body(o.op)
        if media is None:
            yield Case("an unexpected JSON body with a NUL", base.url, content=b'{"a": "\\u0000"}')
        if media == "multipart/form-data":
            for what, files, extra in UPLOADS:
                yield Case(
                    f"upload: {what}",
                    base.url,
                    files=files,
                    data={"name": "fuzz", **extra},
                    content_type=None,
                )
            yield Case("upload: JSON instead of multipart", base.url, content=b'{"name": "fuzz"}')
        elif media is not None and schema is not None:
            for what, raw in RAW_BODIES:
                yield Case(f"body {what}", base.url, content=raw)
            valid = json.loads(base.content or b"{}")
            yield Case("body as text/plain", base.url, content=base.content, content_type="text/plain")
            yield Case(
                "body + unknown field",
                base.url,
                content=encode_json(set_path(valid, ("unknown_field",), {"x": 1})),
            )
            for n, (prop, sub) in enumerate(object_properties(self.schemas, schema)):
                for i, (what, bad) in enumerate(self.schemas.bad_values(sub)):
                    body = set_path(valid, prop, bad)
                    for key in UNIQUE_KEYS & set(body) - {prop[0]}:
                        body[key] = f"fuzz-{n}-{i}"
                    yield Case(f"body {'.'.join(prop)}={what}", base.url, content=encode_json(body))

    def run_api(self) -> int:
        operations = 0
        for path, ops in self.spec["paths"].items():
            if path in SKIPPED_PATHS:
                continue
            for method_lc, op in ops.items():
                operations += 1
                o = self.prepare(method_lc.upper(), path, op)
                for case in self.cases(o):
                    for scope in o.scopes:
                        self.check(o.method, case, scope, self.send(o.method, case, self.keys[scope]))
        return operations

    def run_console(self) -> None:
        """The console's HTML pages and forms (and the API docs): never a 5xx."""
        for url in sorted(SKIPPED_PATHS):
            self.check(
                "GET", Case("docs", url), "no key", self.send("GET", Case("docs", url), None), html=True
            )
        page = self.client.get("/console/sign-in")
        csrf_match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf_match, page.text[:300]
        signed_in = self.client.post(
            "/console/sign-in",
            data={"token": self.keys["analyst"], "csrf": csrf_match.group(1)},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text[:300]
        queue = self.client.get("/console/queue")
        csrf = re.search(r'name="csrf" value="([^"]+)"', queue.text)
        token = csrf.group(1) if csrf else ""
        queue_fields = [*QUEUE_FIELDS, "cursor", "decided"]
        values = [
            ("empty", ""),
            ("word", "abc"),
            ("NUL", "\x00"),
            ("huge", str(HUGE_INT)),
            ("nan", "nan"),
            ("negative", "-1"),
            ("long", "x" * 2_000),
            ("date 30 Feb", "2024-02-30"),
            ("year 1", "0001-01-01"),
            ("year 9999", "9999-12-31"),
            ("unicode", "ünï😀"),
        ]
        cases: list[tuple[str, Case]] = []
        for name in queue_fields:
            for what, value in values:
                cases.append(("GET", Case(f"console query {name}={what}", "/console/queue", [(name, value)])))
        for what, value in [*PATH_GARBAGE, ("real review", self.real_ids["review_id"])]:
            rid = path_segment(value)
            cases.append(("GET", Case(f"console review id {what}", f"/console/reviews/{rid}")))
            form = {"csrf": token}
            cases.append(
                (
                    "POST",
                    Case(
                        f"console claim {what}", f"/console/reviews/{rid}/claim", data=form, content_type=None
                    ),
                )
            )
            for verdict in ("fraud", "nope", "x" * 100):
                data = {"csrf": token, "verdict": verdict, "note": "\x00ünï"}
                cases.append(
                    (
                        "POST",
                        Case(
                            f"console verdict {verdict[:8]} {what}",
                            f"/console/reviews/{rid}/verdict",
                            data=data,
                            content_type=None,
                        ),
                    )
                )
            cases.append(("GET", Case(f"console static {what}", f"/console/static/{rid}")))
        cases.append(
            (
                "POST",
                Case(
                    "console sign-in garbage",
                    "/console/sign-in",
                    data={"token": "\x00" * 300, "csrf": "x"},
                    content_type=None,
                ),
            )
        )
        cases.append(("POST", Case("console sign-in JSON", "/console/sign-in", content=b"{]")))
        for method, case in cases:
            self.check(method, case, "analyst console", self.send(method, case, None), html=True)
        out = Case("console sign-out", "/console/sign-out", data={"csrf": token}, content_type=None)
        self.check("POST", out, "analyst console", self.send("POST", out, None), html=True)
