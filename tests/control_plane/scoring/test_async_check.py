"""The async check (the HTTP hot path) answers bit for bit as the sync one, on both caches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pandas as pd

from control_plane.bootstrap.state import State
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.scoring.service import FraudChecker
from providers.local.feature_cache import MemoryFeatureCache
from providers.ports import FeatureCache
from providers.redis_cache import RedisFeatureCache
from tests.control_plane.scoring.conftest import LiveFn, sim_requests

TIMING = "server_time_ms"


def _requests(frame: pd.DataFrame, n: int) -> list[FraudCheckRequest]:
    """Simulated transactions on 3 cards and 2 terminals, so each check reads the states the
    previous ones wrote (velocity and terminal-risk features move)."""
    rows = sim_requests(frame, n)
    return [
        FraudCheckRequest.model_validate(
            {**r, "txn_id": f"as_{i}", "card_token": f"card_{i % 3}", "terminal_id": f"term_{i % 2}"}
        )
        for i, r in enumerate(rows)
    ]


def _untimed(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in a.items() if k != TIMING} for a in answers]


def _sync(checker: FraudChecker, tenant_id: str, reqs: list[FraudCheckRequest]) -> list[dict[str, Any]]:
    return [checker.check(tenant_id, r) for r in reqs]


def _async(checker: FraudChecker, tenant_id: str, reqs: list[FraudCheckRequest]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        try:
            return [(await checker.acheck(tenant_id, r)).answer for r in reqs]
        finally:
            await checker.cache.aclose()

    return asyncio.run(run())


def test_async_and_sync_checks_answer_alike_on_both_caches(
    container: State, live_tenant: LiveFn, sim_frame: pd.DataFrame, redis_url: str
) -> None:
    t = live_tenant()
    checker = container.scoring.checker
    reqs = _requests(sim_frame, 24)
    caches: list[Callable[[], FeatureCache]] = [
        MemoryFeatureCache,
        lambda: RedisFeatureCache(redis_url, timeout_ms=200),
    ]
    try:
        runs = []
        for make in caches:
            for run in (_sync, _async):
                checker.cache = cache = make()
                cache.purge_tenant(t["id"])  # every run starts from empty card and terminal history
                runs.append(_untimed(run(checker, t["id"], reqs)))
        first = runs[0]
        assert all(r == first for r in runs[1:])
        assert all(a["degraded"] is False for a in first)
        assert len({a["score"] for a in first}) > 3  # the states the checks wrote moved the scores
        # The async path replays what it stored, as the sync one does.
        replayed = _async(checker, t["id"], reqs[:3])
        assert all(a["replayed"] is True for a in replayed)
        assert _untimed([{k: v for k, v in a.items() if k != "replayed"} for a in replayed]) == first[:3]
    finally:
        RedisFeatureCache(redis_url).client.flushdb()
