"""The HTTP side of the container: SageMaker's single-model and multi-model contracts on Starlette.

Errors are JSON ``{"error": "..."}`` with the status SageMaker expects: 404 for a model that is
not loaded, 409 for a second load of a name, 507 when a model cannot fit, 4xx naming the field
for a bad request. Loading and scoring run in the thread pool so ``/ping`` keeps answering while
a large batch is scored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inference import payload
from inference.artifacts import LoadedModel, ModelLoadError
from inference.registry import ModelRegistry

log = logging.getLogger(__name__)

# SageMaker caps a real-time request at 6 MB (serverless at 4 MB); anything bigger is a mistake.
MAX_BODY_BYTES = 6 * 1024 * 1024
PAGE_SIZE = 100
TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise payload.PayloadError(f"body of {declared} bytes is above {MAX_BODY_BYTES}", 413)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise payload.PayloadError(f"body of {len(body)} bytes is above {MAX_BODY_BYTES}", 413)
    return body


def _within(path: Path, roots: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def create_app(
    registry: ModelRegistry,
    *,
    default_model: LoadedModel | None = None,
    models_roots: Sequence[Path] = (Path("/opt/ml/models"),),
) -> Starlette:
    """The ASGI app; ``default_model`` answers ``/invocations``, ``registry`` the ``/models`` routes."""
    roots = [Path(r).resolve() for r in models_roots]

    async def score(request: Request, model: LoadedModel) -> Response:
        try:
            fmt = payload.response_format(request.headers.get("accept"))
            body = await _body(request)
            rows, top_k = payload.parse(body, request.headers.get("content-type"), model.scorer.feature_names)
            if top_k is None:
                top_k = payload.top_k_from_attributes(request.headers.get(CUSTOM_ATTRIBUTES_HEADER))
            if fmt == payload.CSV:
                top_k = 0  # a CSV answer carries scores only: skip the SHAP work
        except payload.PayloadError as exc:
            return _error(str(exc), exc.status)
        predictions = await run_in_threadpool(payload.predict, model.scorer, rows, top_k)
        content, media = payload.render(predictions, fmt, model=model.name, sha256=model.sha256)
        return Response(content, media_type=media)

    async def ping(request: Request) -> Response:
        del request
        return JSONResponse(
            {
                "status": "ok",
                "model": default_model.name if default_model else None,
                "loaded_models": len(registry.names()),
            }
        )

    async def invocations(request: Request) -> Response:
        if default_model is None:
            return _error(
                "this container has no model in its model directory: load one with POST /models "
                "and call POST /models/{name}/invoke",
                404,
            )
        return await score(request, default_model)

    async def load(request: Request) -> Response:
        try:
            data: Any = json.loads(await _body(request))
        except payload.PayloadError as exc:
            return _error(str(exc), exc.status)
        except ValueError:
            return _error("body must be JSON {'model_name': ..., 'url': ...}", 400)
        if not isinstance(data, dict):
            return _error("body must be a JSON object {'model_name': ..., 'url': ...}", 400)
        name, url, digest = data.get("model_name"), data.get("url"), data.get("sha256")
        problems = [
            field
            for field, value in (("model_name", name), ("url", url))
            if not isinstance(value, str) or not value.strip() or len(value) > 1024
        ]
        if digest is not None and not isinstance(digest, str):
            problems.append("sha256")
        if problems:
            return _error(f"invalid or missing fields {problems}: non-empty strings required", 400)
        assert isinstance(name, str) and isinstance(url, str)
        if not _within(Path(url), roots):
            return _error(f"url {url!r} is outside the model roots {[str(r) for r in roots]}", 403)
        try:
            model = await run_in_threadpool(registry.load, name, url, expected_sha256=digest)
        except ModelLoadError as exc:
            log.warning("refused to load %s from %s: %s", name, url, exc)
            return _error(str(exc), exc.status)
        return JSONResponse({"status": "loaded", **model.describe()})

    async def list_models(request: Request) -> Response:
        token = request.query_params.get("next_page_token", "0") or "0"
        if not token.isdigit():
            return _error(f"next_page_token {token!r} is not one this container issued", 400)
        names = sorted(registry.names())
        start = int(token)
        page = [registry.peek(n) for n in names[start : start + PAGE_SIZE]]
        body: dict[str, Any] = {"models": [m.describe() for m in page if m is not None]}
        if start + PAGE_SIZE < len(names):
            body["nextPageToken"] = str(start + PAGE_SIZE)
        return JSONResponse(body)

    async def get_model(request: Request) -> Response:
        name = request.path_params["name"]
        model = registry.peek(name)
        if model is None:
            return _error(f"model {name!r} is not loaded", 404)
        return JSONResponse(model.describe())

    async def unload(request: Request) -> Response:
        name = request.path_params["name"]
        if not registry.unload(name):
            return _error(f"model {name!r} is not loaded", 404)
        return JSONResponse({"status": "unloaded", "modelName": name})

    async def invoke(request: Request) -> Response:
        name = request.path_params["name"]
        model = registry.get(name)
        if model is None:
            return _error(f"model {name!r} is not loaded", 404)
        return await score(request, model)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/models", load, methods=["POST"]),
        Route("/models", list_models, methods=["GET"]),
        # Before the plain {name:path} routes: model names are opaque and may contain slashes.
        Route("/models/{name:path}/invoke", invoke, methods=["POST"]),
        Route("/models/{name:path}", get_model, methods=["GET"]),
        Route("/models/{name:path}", unload, methods=["DELETE"]),
    ]
    return Starlette(routes=routes)
