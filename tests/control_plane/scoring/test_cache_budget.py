"""The cache's timeout counts Redis's lateness, not the event loop's: a loop hogged by CPU-bound
work does not by itself degrade the checks of a healthy Redis, and a Redis that never answers still
degrades them however busy the loop is. Asserted on the answers' ``degraded`` flag and on
``fraudrail_degraded_total``, on both event loops the server may run (asyncio's and uvloop's)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pandas as pd
import pytest
import uvloop

from control_plane.bootstrap.state import State
from control_plane.scoring.idempotency import FEATURE_CACHE
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.scoring.service import FraudChecker
from providers.redis_cache import RedisFeatureCache
from tests.control_plane.scoring.conftest import LiveFn, sim_requests

# A budget the shared Redis of a loaded test machine keeps; the hog holds the loop 2 budgets a step.
BUDGET_MS = 100
HOG_STEP_S = 2 * BUDGET_MS / 1000
CONCURRENT = 16

Answers = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # the opening checks', the hogged ones
Runner = Callable[[Coroutine[Any, Any, Answers]], Answers]
RUNNERS: dict[str, Runner] = {"asyncio": asyncio.run, "uvloop": uvloop.run}


def _requests(frame: pd.DataFrame, prefix: str) -> list[FraudCheckRequest]:
    return [
        FraudCheckRequest.model_validate({**r, "txn_id": f"{prefix}_{i}", "card_token": f"card_{i % 4}"})
        for i, r in enumerate(sim_requests(frame, CONCURRENT))
    ]


async def _checks_beside_a_hog(
    checker: FraudChecker, tenant_id: str, reqs: list[FraudCheckRequest]
) -> Answers:
    """Every check at once, while another task holds the loop for 2 budgets at a time (CPU-bound,
    as scoring is) until they are all answered. The cache's connections are opened first, by as
    many checks on an idle loop, as a serving process's are by its first requests."""
    opening = await asyncio.gather(*(checker.acheck(tenant_id, _renamed(r, "open")) for r in reqs))
    done = asyncio.Event()

    async def hog() -> None:
        while not done.is_set():
            end = time.perf_counter() + HOG_STEP_S
            while time.perf_counter() < end:
                pass
            await asyncio.sleep(0)

    hogging = asyncio.create_task(hog())
    await asyncio.sleep(0)  # the hog's first step runs before any check is sent
    try:
        checked = await asyncio.gather(*(checker.acheck(tenant_id, r) for r in reqs))
    finally:
        done.set()
        await hogging
        await checker.cache.aclose()
    return [c.answer for c in opening], [c.answer for c in checked]


def _renamed(req: FraudCheckRequest, prefix: str) -> FraudCheckRequest:
    return req.model_copy(update={"txn_id": f"{prefix}_{req.txn_id}"})


@pytest.fixture
def flushed(redis_url: str) -> Iterator[None]:
    yield
    RedisFeatureCache(redis_url).client.flushdb()


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_a_busy_loop_alone_does_not_degrade_a_healthy_redis(
    loop: str, container: State, live_tenant: LiveFn, sim_frame: pd.DataFrame, redis_url: str, flushed: None
) -> None:
    t = live_tenant()
    checker = container.scoring.checker
    checker.cache = RedisFeatureCache(redis_url, timeout_ms=BUDGET_MS)
    metrics = container.providers.metrics

    reqs = _requests(sim_frame, f"busy_{loop}")
    opening, answers = RUNNERS[loop](_checks_beside_a_hog(checker, t["id"], reqs))

    assert len(answers) == CONCURRENT
    assert [a for a in opening + answers if a["degraded"]] == []
    assert metrics.counter("fraudrail_degraded_total", tenant=t["id"], input=FEATURE_CACHE) == 0
    # The answers were stored with the new states: the same transactions replay.
    _, again = RUNNERS[loop](_checks_beside_a_hog(checker, t["id"], reqs))
    assert all(a.get("replayed") is True for a in again)


@pytest.mark.parametrize("loop", sorted(RUNNERS))
def test_a_silent_redis_degrades_checks_even_on_a_busy_loop(
    loop: str, container: State, live_tenant: LiveFn, sim_frame: pd.DataFrame
) -> None:
    t = live_tenant()
    black_hole = socket.create_server(("127.0.0.1", 0), backlog=64)  # accepts, never answers
    checker = container.scoring.checker
    checker.cache = RedisFeatureCache(
        f"redis://127.0.0.1:{black_hole.getsockname()[1]}/0", timeout_ms=BUDGET_MS
    )
    metrics = container.providers.metrics
    try:
        opening, answers = RUNNERS[loop](
            _checks_beside_a_hog(checker, t["id"], _requests(sim_frame, f"mute_{loop}"))
        )
    finally:
        black_hole.close()

    assert all(a["degraded_inputs"] == [FEATURE_CACHE] for a in opening + answers)
    assert metrics.counter("fraudrail_degraded_total", tenant=t["id"], input=FEATURE_CACHE) == 2 * CONCURRENT
