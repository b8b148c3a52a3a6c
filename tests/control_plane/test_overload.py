"""A serving process holds a bounded number of requests; past it, 503 with Retry-After at once."""

from __future__ import annotations

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from control_plane.app import create_app
from control_plane.bootstrap.state import State
from control_plane.overload import BoundedInFlight
from control_plane.settings import AppSettings


def _slow_app(entered: list[anyio.Event], release: anyio.Event) -> Starlette:
    async def slow(request: Request) -> PlainTextResponse:
        entered.pop(0).set()
        await release.wait()
        return PlainTextResponse("done")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/v1/fraud-check", slow, methods=["POST"]), Route("/healthz", health)])


def test_requests_past_the_bound_are_refused_and_the_rest_are_answered() -> None:
    anyio.run(_past_the_bound)


async def _past_the_bound() -> None:
    limit = 3
    entered = [anyio.Event() for _ in range(limit)]
    waits = list(entered)
    release = anyio.Event()
    guarded = BoundedInFlight(_slow_app(entered, release), max_in_flight=limit)
    transport = httpx.ASGITransport(app=guarded)
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def send() -> None:
            answers.append(await client.post("/v1/fraud-check", json={}))

        async with anyio.create_task_group() as tg:
            for _ in range(limit):
                tg.start_soon(send)
            for event in waits:  # every held request is inside the app
                await event.wait()
            assert guarded.in_flight == limit
            refused = await client.post("/v1/fraud-check", json={})
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["status"] == 503
            # Health is never refused: an overloaded process is busy, not dead.
            assert (await client.get("/healthz")).status_code == 200
            release.set()
        assert [a.status_code for a in answers] == [200] * limit
        assert guarded.in_flight == 0 and guarded.refused == 1
        # Capacity is back once the held requests are answered.
        entered.append(anyio.Event())
        entered[-1].set()
        assert (await client.post("/v1/fraud-check", json={})).status_code == 200


def test_the_app_installs_the_bound_from_settings(settings: AppSettings, container: State) -> None:
    app = create_app(settings.model_copy(update={"max_in_flight_requests": 7}), container)
    bounds = [m for m in app.user_middleware if m.cls is BoundedInFlight]
    assert len(bounds) == 1 and bounds[0].kwargs["max_in_flight"] == 7
    assert app.user_middleware[0].cls is BoundedInFlight  # outermost
