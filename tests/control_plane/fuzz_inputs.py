"""The OpenAPI fuzz suite's inputs: garbage path segments, raw bodies, tricky strings, crafted
cursors, malformed uploads, and the schema walker that makes well-formed and malformed values."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

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


def crafted_cursor(doc: dict[str, Any]) -> str:
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
            return "https://127.0.0.1:9/services/T/B/X"
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


def encode_json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def set_path(body: Any, path: tuple[str, ...], value: Any) -> Any:
    """A copy of ``body`` with the property at ``path`` set to ``value`` (parents made as needed)."""
    out = json.loads(json.dumps(body)) if isinstance(body, dict) else {}
    node = out
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value
    return out


def object_properties(
    schemas: Schemas, schema: dict[str, Any], prefix: tuple[str, ...] = (), depth: int = 0
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every property of an object schema, and of its object properties (two levels)."""
    for branch in schemas.branches(schema):
        for name, sub in branch.get("properties", {}).items():
            yield (*prefix, name), sub
            if depth < 1:
                yield from object_properties(schemas, sub, (*prefix, name), depth + 1)


CSV_HEADER = b"txn_id,card_token,terminal_id,ts,amount,currency,is_fraud\n"
VALID_CSV = (
    CSV_HEADER
    + b"t1,c1,term1,2026-11-01T09:00:00Z,10.00,USD,0\nt2,c2,term2,2026-11-01T09:05:00Z,99.50,USD,1\n"
)
Files = dict[str, tuple[str, bytes, str]]


def csv_upload(name: str, data: bytes) -> Files:
    return {"file": (name, data, "text/csv")}


UPLOADS: list[tuple[str, Files | None, dict[str, str]]] = [
    ("garbage .csv file", csv_upload("x.csv", b"\x00\xff garbage\n1,2,3\n\x80"), {}),
    ("garbage .parquet file", {"file": ("x.parquet", b"PAR1 not parquet PAR1", "application/x-parquet")}, {}),
    ("empty file", csv_upload("x.csv", b""), {}),
    ("CSV header only", csv_upload("x.csv", CSV_HEADER), {}),
    (
        "CSV with bad values",
        csv_upload("x.csv", CSV_HEADER + b"t1,c1,term1,not-a-date,abc,usd,maybe\n,,,,,,\n"),
        {},
    ),
    (
        "CSV with extreme values",
        csv_upload(
            "x.csv", CSV_HEADER + b"t1,c1,term1,99999-01-01T00:00:00Z,1e400,USD,2\nt1,c1,term1,0,-5,USD,-1\n"
        ),
        {},
    ),
    (
        "CSV with NUL values",
        csv_upload("x.csv", VALID_CSV.replace(b"c1,", b"c\x001,").replace(b"term2", b"\x00")),
        {},
    ),
    ("ragged CSV", csv_upload("x.csv", b'a,b\n1,2,3,4\n"unterminated\n'), {}),
    ("file without suffix", csv_upload("noext", VALID_CSV), {}),
    ("path traversal file name", csv_upload("../../../etc/passwd.csv", VALID_CSV), {}),
    ("format exe", csv_upload("x.csv", VALID_CSV), {"format": "exe"}),
    ("format traversal", csv_upload("x.csv", VALID_CSV), {"format": "../../x"}),
    ("labeled maybe", csv_upload("x.csv", VALID_CSV), {"labeled": "maybe"}),
    ("20k name", csv_upload("x.csv", VALID_CSV), {"name": LONG}),
    ("NUL name", csv_upload("x.csv", VALID_CSV), {"name": "fuzz\x00"}),
    ("unicode name", csv_upload("x.csv", VALID_CSV), {"name": "ünï😀"}),
    ("no file", None, {}),
]


def path_segment(value: str) -> str:
    """A path segment that reaches the app as ``value``, as one percent-encoding would on a real
    server (Starlette's test client decodes the path twice, so it is encoded twice)."""
    return quote(quote(value, safe=""), safe="")
