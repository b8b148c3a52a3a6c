"""Problem responses (RFC 9457 ``application/problem+json``), the request-size guard and the NUL guard."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.errors import DomainError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, *, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://fraudrail.dev/problems/{status}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    headers = {"Retry-After": str(extra["retry_after_s"])} if "retry_after_s" in extra else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    from control_plane.openapi import install_problem_openapi

    # Every error below answers problem+json: the OpenAPI document says so on every operation.
    install_problem_openapi(app)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> Response:
        return problem(exc.status, exc.title, exc.detail, field=exc.field, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errors = []
        for err in exc.errors():
            loc = err.get("loc", ())
            errors.append(
                {
                    "field": _loc_to_field(loc),
                    "message": str(err.get("msg", "invalid")),
                    "type": str(err.get("type", "")),
                }
            )
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, "Invalid input", detail, field=first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return problem(exc.status_code, "HTTP error", str(exc.detail))

    # A database that cannot be reached (refused, dropped, restarting, pool exhausted) is an
    # outage, not a bug: 503 with Retry-After so clients retry, never a 500.
    for outage in DATABASE_OUTAGES:
        app.add_exception_handler(outage, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


DATABASE_OUTAGES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # the connection pool's wait ran out
)
DATABASE_RETRY_AFTER_S = 5


def database_unavailable() -> JSONResponse:
    return problem(
        503,
        "Service unavailable",
        "the database is unreachable right now; retry shortly",
        retry_after_s=DATABASE_RETRY_AFTER_S,
    )


async def _database_unavailable(_: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return database_unavailable()


NUL = "\x00"
NUL_MESSAGE = "must not contain NUL (U+0000) characters"
_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def nul_locations(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Where ``value`` (a decoded JSON document or a string) holds a NUL: in a string or a key.

    Iterative, so a deeply nested document cannot exhaust the stack."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, loc)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                yield where
        elif isinstance(node, dict):
            for key, item in reversed(node.items()):  # reversed onto the stack: found in document order
                stack += [(item, (*where, key)), (key, (*where, key))]
        elif isinstance(node, list):
            stack.extend((item, (*where, i)) for i, item in reversed(list(enumerate(node))))


def nul_error(locs: list[tuple[str | int, ...]]) -> RequestValidationError:
    """The 422 for inputs holding NUL: PostgreSQL text (and JSON) cannot store it."""
    return RequestValidationError(
        [{"type": "string_nul", "loc": loc, "msg": f"Value {NUL_MESSAGE}", "input": None} for loc in locs]
    )


def reject_nul_in_json(raw: bytes) -> None:
    """422 when a JSON body decodes to a string (or key) with NUL; invalid JSON is left to the parser."""
    if b"\\u0000" not in raw:  # the only way JSON can spell NUL (a raw 0x00 is invalid JSON)
        return
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return
    locs = list(dict.fromkeys(nul_locations(doc, ("body",))))  # a key and its value: named once
    if locs:
        raise nul_error(locs)


async def reject_nul_characters(request: Request) -> None:
    """App-wide dependency: no path, query, JSON or form input may contain NUL (422 naming the field).

    A NUL would otherwise reach the database, where PostgreSQL refuses it with an error (a 500).
    A body is checked only on routes that read one (FastAPI has parsed and cached it by now).
    """
    locs: list[tuple[str | int, ...]] = [
        ("path", name) for name, value in request.path_params.items() if NUL in str(value)
    ]
    locs += [("query", name) for name, value in request.query_params.multi_items() if NUL in name + value]
    reads_body = getattr(request.scope.get("route"), "body_field", None) is not None
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if reads_body and content_type in _FORM_TYPES:
        form = await request.form()
        locs += [("body", k) for k, v in form.multi_items() if NUL in k or (isinstance(v, str) and NUL in v)]
    if locs:
        raise nul_error(locs)
    if reads_body and (content_type in _JSON_TYPES or content_type.endswith("+json")):
        reject_nul_in_json(await request.body())


class BodySizeLimit:
    """Refuses bodies over a limit with 413, by header and by counting streamed bytes."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, upload_max_bytes: int, upload_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.upload_max_bytes if path.startswith(self.upload_paths) else self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await _reject(send, limit)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _reject(send, limit)


class _TooLarge(Exception):
    pass


async def _reject(send: Send, limit: int) -> None:
    import orjson

    body = orjson.dumps(
        {
            "type": "https://fraudrail.dev/problems/413",
            "title": "Payload too large",
            "status": 413,
            "detail": f"request body exceeds {limit} bytes",
            "field": "body",
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
