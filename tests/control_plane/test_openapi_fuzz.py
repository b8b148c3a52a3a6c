"""Fuzz every operation of the OpenAPI document with deterministic malformed input.

What a stranger running a schema fuzzer against us must see: no input answers 5xx, and every 4xx
is ``application/problem+json`` with a ``detail`` (and a ``field`` on 422). Each operation is
called with every key whose scope it accepts (the keys that do not get 401/403 on a well-formed
request), with garbage path parameters, badly typed query parameters, malformed JSON bodies (one
bad property at a time, with ``$ref`` resolved), and garbage files on the multipart routes. The
console's HTML routes are only checked for 5xx. Every defect is collected; the test fails once,
listing them all.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from fastapi.testclient import TestClient
from starlette.routing import Match

from control_plane.container import Container
from control_plane.db import unit_of_work
from control_plane.http import PROBLEM
from control_plane.review import service as reviews
from control_plane.web.router import QUEUE_FIELDS
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.review.conftest import flagged
from tests.control_plane.scoring.conftest import register_model, sim_frame, trained_artifact  # noqa: F401

SKIPPED_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
# Ids of the right shape that name nothing.
MISSING = "0" * 32
ID_PREFIXES = {
    "tenant_id": "ten",
    "key_id": "key",
    "job_id": "job",
    "dataset_id": "ds",
    "model_id": "mv",
    "run_id": "job",
    "rollout_id": "ro",
    "review_id": "rev",
}
# Called with a tenant that does not exist, so a well-formed request cannot end the fuzzed tenant.
DESTRUCTIVE = {("DELETE", "/v1/tenants/{tenant_id}"), ("POST", "/v1/tenants/{tenant_id}/suspend")}
# Body properties that must be new on each request (a reused txn_id with another body, or a taken
# slug, is a 409 before anything else): each malformed body gets its own, so it reaches the handler.
UNIQUE_KEYS = {"txn_id", "slug"}
HUGE_INT = 10**30
LONG = "x" * 20_000

PATH_GARBAGE: list[tuple[str, str]] = [
    ("300 x", "x" * 300),
    ("dot-dot", "../../etc"),
    ("literal %00", "%00"),
    ("NUL byte", "\x00"),
    ("unicode", "ünï😀"),
    ("blank", " "),
    ("quotes", "' OR '1'='1"),
]
RAW_BODIES: list[tuple[str, bytes]] = [
    ("JSON null", b"null"),
    ("JSON array", b"[]"),
    ("JSON string", b'"str"'),
    ("JSON number", b"0"),
    ("empty object", b"{}"),
    ("empty body", b""),
    ("not JSON", b"not json"),
    ("truncated JSON", b'{"a": '),
    ("invalid UTF-8 in a string", b'{"name": "\xff\xfe"}'),
    ("binary garbage", b"\xff\xfe\x00\x01\x80"),
    ("NaN", b"NaN"),
    ("deep nesting", b"[" * 3000 + b"]" * 3000),
    ("deep nesting around a NUL", b'{"a": ' + b"[" * 3000 + b'"\\u0000"' + b"]" * 3000 + b"}"),
    ("NUL in a key", b'{"\\u0000": 1}'),
]
TRICKY_STRINGS = ["0000-00", "2024-13", "9999-99", "2024-00", "not-a-cursor", "~!@#$%^&*()", "ZZZZ"]


def _cursor(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


# Keyset cursors of the right shape (base64url JSON, as the API issues them) holding bad values.
CRAFTED_CURSORS: list[tuple[str, str, Any, Any]] = [
    ("NUL id", "score", 0.5, "rev_\x00"),
    ("NaN score", "score", "nan", "rev_x"),
    ("infinite score", "score", "inf", "rev_x"),
    ("huge amount", "amount", "1e999999", "rev_x"),
    ("sNaN amount", "amount", "sNaN", "rev_x"),
    ("amount as a list", "amount", [1], "rev_x"),
    ("age past year 9999 in UTC", "age", "9999-12-31T23:59:59-12:00", "rev_x"),
    ("age as a number", "age", 5, "rev_x"),
    ("id as a number", "score", 0.5, 5),
    ("20k id", "score", 0.5, LONG),
]


@dataclass(frozen=True)
class Case:
    what: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    content_type: str | None = "application/json"
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None


class Schemas:
    """Resolves ``$ref`` into ``components/schemas`` and makes well-formed and malformed values."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.components: dict[str, Any] = spec.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def branches(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        """The non-null alternatives of a schema (``anyOf``/``oneOf``), each resolved."""
        schema = self.resolve(schema)
        alts = schema.get("anyOf") or schema.get("oneOf")
        if not alts:
            return [schema]
        out: list[dict[str, Any]] = []
        for alt in alts:
            out += [b for b in self.branches(alt) if b.get("type") != "null"]
        return out

    def example(self, schema: dict[str, Any], name: str = "", *, full: bool = False) -> Any:
        """A well-formed value (best effort), so a request gets past validation to the handler;
        ``full`` sets the optional properties too."""
        s = self.branches(schema)[0] if self.branches(schema) else {}
        if "examples" in s:
            return s["examples"][0]
        if "enum" in s:
            return s["enum"][0]
        if "const" in s:
            return s["const"]
        kind = s.get("type")
        if kind == "object" or "properties" in s:
            props: dict[str, Any] = s.get("properties", {})
            names = list(props) if full else s.get("required", [])
            return {k: self.example(props[k], k, full=full) for k in names}
        if kind == "array":
            return [self.example(s.get("items", {}), name, full=full)] * int(s.get("minItems", 0))
        if kind == "integer":
            low = int(s.get("minimum", s.get("exclusiveMinimum", 0) + 1))
            return max(low, 1) if s.get("maximum", 2) >= 1 else low
        if kind == "number":
            return float(s.get("minimum", s.get("exclusiveMinimum", 0) + 1))
        if kind == "boolean":
            return False
        return self._string(s, name)

    @staticmethod
    def _string(s: dict[str, Any], name: str) -> str:
        fmt = s.get("format")
        if fmt == "date-time":
            return "2026-12-01T00:00:00Z" if name == "until" else "2026-11-01T09:00:00Z"
        if fmt == "email":
            return "ops@example.com"
        if fmt == "uri":
            return "https://hooks.slack.com/services/T/B/X"
        hints = {"slug": "fuzz-new", "tier": "standard", "region": "eu-west-1", "currency": "USD"}
        candidates = [hints.get(name, "fuzz"), "USD", "GB", "5411", "2026-11", "txn-1", "x"]
        pattern = s.get("pattern")
        low, high = int(s.get("minLength", 1)), int(s.get("maxLength", 10_000))
        for value in candidates:
            if low <= len(value) <= high and (pattern is None or re.search(pattern, value)):
                return value
        return "x" * low

    def bad_values(self, schema: dict[str, Any]) -> list[tuple[str, Any]]:
        """Wrong types, out-of-range numbers, very long strings, nested objects for one property."""
        out: list[tuple[str, Any]] = [
            ("null", None),
            ("true", True),
            ("empty list", []),
            ("nested object", {"nested": {"deep": [1]}}),
        ]
        kinds = {b.get("type", "string") for b in self.branches(schema)}
        if kinds & {"integer", "number"}:
            out += [
                ("number as string", "12"),
                ("word", "abc"),
                ("negative", -1),
                ("fraction", 1.5),
                ("huge int", HUGE_INT),
                ("1e308", 1e308),
                ("NaN", float("nan")),
                ("Infinity", float("inf")),
            ]
        if "string" in kinds or not kinds:
            out += [
                ("number", 12345),
                ("empty string", ""),
                ("20k string", LONG),
                ("NUL byte", "\x00"),
                ("lone surrogate", "\ud800"),
                ("unicode", "ünï😀"),
                ("blank", "   "),
                ("bad date-time", "2024-02-30T25:00:00Z"),
                ("date-time past year 9999 in UTC", "9999-12-31T23:59:59-12:00"),
                ("date-time before year 1 in UTC", "0001-01-01T00:00:00+14:00"),
                ("bad email/url", "javascript:alert(1)"),
            ]
        if "boolean" in kinds:
            out += [("word for a bool", "yes"), ("2 for a bool", 2)]
        if "array" in kinds:
            out += [("string for a list", "str"), ("list of null", [None]), ("list of objects", [{}])]
            out += [("list of long strings", [LONG]), ("list with a NUL string", ["\x00"])]
        if "object" in kinds:
            out += [("string for an object", "str"), ("number for an object", 1)]
        return out

    def query_values(self, schema: dict[str, Any]) -> list[tuple[str, str]]:
        """Malformed query strings for one parameter."""
        out: list[tuple[str, str]] = [("empty", ""), ("NUL byte", "\x00"), ("unicode", "ünï😀")]
        for b in self.branches(schema):
            kind = b.get("type", "string")
            if kind in ("integer", "number"):
                out += [("word", "abc"), ("negative", "-1"), ("zero", "0"), ("fraction", "1.5")]
                out += [("huge", str(HUGE_INT)), ("nan", "nan"), ("inf", "inf"), ("1e309", "1e309")]
            elif b.get("format") == "date-time":
                out += [("not a date", "yesterday"), ("30 February", "2024-02-30T00:00:00Z")]
                out += [("year 1", "0001-01-01T00:00:00Z"), ("naive", "2024-01-01T00:00:00")]
                out += [("year 9999 west", "9999-12-31T23:59:59-12:00")]
            elif "enum" in b:
                out += [("not in enum", "NOPE")]
            else:
                out += [("long", "x" * 2_000), ("quotes", "'\";--")]
                pattern = b.get("pattern")
                for value in TRICKY_STRINGS:
                    if pattern is None or re.search(pattern, value):
                        out.append((f"tricky {value!r}", value))
        return out


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _set_path(body: Any, path: tuple[str, ...], value: Any) -> Any:
    """A copy of ``body`` with the property at ``path`` set to ``value`` (parents made as needed)."""
    out = json.loads(json.dumps(body)) if isinstance(body, dict) else {}
    node = out
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
    return out


def _properties(
    schemas: Schemas, schema: dict[str, Any], prefix: tuple[str, ...] = (), depth: int = 0
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every property of an object schema, and of its object properties (two levels)."""
    for branch in schemas.branches(schema):
        for name, sub in branch.get("properties", {}).items():
            yield (*prefix, name), sub
            if depth < 1:
                yield from _properties(schemas, sub, (*prefix, name), depth + 1)


CSV_HEADER = b"txn_id,card_token,terminal_id,ts,amount,currency,is_fraud\n"
VALID_CSV = (
    CSV_HEADER
    + b"t1,c1,term1,2026-11-01T09:00:00Z,10.00,USD,0\nt2,c2,term2,2026-11-01T09:05:00Z,99.50,USD,1\n"
)
Files = dict[str, tuple[str, bytes, str]]


def _csv(name: str, data: bytes) -> Files:
    return {"file": (name, data, "text/csv")}


UPLOADS: list[tuple[str, Files | None, dict[str, str]]] = [
    ("garbage .csv file", _csv("x.csv", b"\x00\xff garbage\n1,2,3\n\x80"), {}),
    ("garbage .parquet file", {"file": ("x.parquet", b"PAR1 not parquet PAR1", "application/x-parquet")}, {}),
    ("empty file", _csv("x.csv", b""), {}),
    ("CSV header only", _csv("x.csv", CSV_HEADER), {}),
    (
        "CSV with bad values",
        _csv("x.csv", CSV_HEADER + b"t1,c1,term1,not-a-date,abc,usd,maybe\n,,,,,,\n"),
        {},
    ),
    (
        "CSV with extreme values",
        _csv(
            "x.csv", CSV_HEADER + b"t1,c1,term1,99999-01-01T00:00:00Z,1e400,USD,2\nt1,c1,term1,0,-5,USD,-1\n"
        ),
        {},
    ),
    (
        "CSV with NUL values",
        _csv("x.csv", VALID_CSV.replace(b"c1,", b"c\x001,").replace(b"term2", b"\x00")),
        {},
    ),
    ("ragged CSV", _csv("x.csv", b'a,b\n1,2,3,4\n"unterminated\n'), {}),
    ("file without suffix", _csv("noext", VALID_CSV), {}),
    ("path traversal file name", _csv("../../../etc/passwd.csv", VALID_CSV), {}),
    ("format exe", _csv("x.csv", VALID_CSV), {"format": "exe"}),
    ("format traversal", _csv("x.csv", VALID_CSV), {"format": "../../x"}),
    ("labeled maybe", _csv("x.csv", VALID_CSV), {"labeled": "maybe"}),
    ("20k name", _csv("x.csv", VALID_CSV), {"name": LONG}),
    ("NUL name", _csv("x.csv", VALID_CSV), {"name": "fuzz\x00"}),
    ("unicode name", _csv("x.csv", VALID_CSV), {"name": "ünï😀"}),
    ("no file", None, {}),
]


def _segment(value: str) -> str:
    """A path segment that reaches the app as ``value``, as one percent-encoding would on a real
    server (Starlette's test client decodes the path twice, so it is encoded twice)."""
    return quote(quote(value, safe=""), safe="")


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
                return _segment(overrides[name])
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
                    files=_csv("x.csv", VALID_CSV),
                    data={"name": "fuzz"},
                    content_type=None,
                )
            ]
        if media == "application/json" and schema is not None:
            bodies = [self.schemas.example(schema), self.schemas.example(schema, full=True)]
            return [Case("well-formed", url, content=_encode_json(b)) for b in bodies]
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
                token = _cursor({"k": sort, "o": "desc", "v": value, "i": item_id})
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
                content=_encode_json(_set_path(valid, ("unknown_field",), {"x": 1})),
            )
            for n, (prop, sub) in enumerate(_properties(self.schemas, schema)):
                for i, (what, bad) in enumerate(self.schemas.bad_values(sub)):
                    body = _set_path(valid, prop, bad)
                    for key in UNIQUE_KEYS & set(body) - {prop[0]}:
                        body[key] = f"fuzz-{n}-{i}"
                    yield Case(f"body {'.'.join(prop)}={what}", base.url, content=_encode_json(body))

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
            rid = _segment(value)
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


def test_no_input_gets_a_5xx_and_every_4xx_is_a_problem(
    client: TestClient,
    container: Container,
    onboard: OnboardFn,
    admin_key: str,
    trained_artifact: bytes,  # noqa: F811
) -> None:
    t = onboard("fuzz-co", scopes=("app", "analyst", "sre"))
    admin = auth(t["admin"])
    # A PRODUCTION model (fraud checks are scored), an APPROVED one, and a rollout of a third.
    serving = register_model(container, t["id"], trained_artifact)
    assert client.post(f"/v1/models/{serving}/promote", headers=admin).status_code == 200
    approved = register_model(container, t["id"], trained_artifact)
    candidate = register_model(container, t["id"], trained_artifact)
    rollout = client.post("/v1/rollouts", json={"candidate_version": candidate}, headers=admin)
    assert rollout.status_code == 201, rollout.text
    # Thresholds at 0: every fraud check is flagged, so the flagged-record path runs as well.
    thresholds = {"review_threshold": "0", "suspicious_threshold": "0"}
    assert client.put("/v1/scoring-config", json=thresholds, headers=admin).status_code == 200
    spare = client.post(f"/v1/tenants/{t['id']}/keys", json={"scope": "sre", "name": "spare"}, headers=admin)
    assert spare.status_code == 201, spare.text
    with unit_of_work(container.factory) as session:
        review_id = reviews.ingest(session, t["id"], flagged(1)).id
    keys = {
        "platform-admin": admin_key,
        "tenant-admin": t["admin"],
        "app": t["app"],
        "analyst": t["analyst"],
        "sre": t["sre"],
    }
    real_ids = {
        "tenant_id": t["id"],
        "job_id": t["job_id"],
        "key_id": spare.json()["id"],
        "review_id": review_id,
        "model_id": approved,
        "rollout_id": rollout.json()["id"],
    }
    fuzzer = Fuzzer(client, keys, real_ids)

    operations = fuzzer.run_api()
    fuzzer.run_console()

    assert operations >= 50, f"only {operations} operations in the OpenAPI document: the walk found little"
    assert fuzzer.succeeded >= 300, (
        f"only {fuzzer.succeeded} answers below 400: the inputs never reach handlers"
    )
    assert not fuzzer.failures, (
        f"{len(fuzzer.failures)} defects in {fuzzer.sent} requests over {operations} operations:\n"
        + "\n".join(fuzzer.failures)
    )
