"""Faults on the hot path: a dead or slow cache, a flagged store outage, tampered artifacts, LRU eviction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.scoring.spool import FlaggedSpool
from providers.local.model_host import LocalModelHost
from providers.ports import FlaggedRecord, FlaggedTransactionStore, ProviderError
from providers.redis_cache import RedisFeatureCache
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, register_model, txn


class DeadCache:
    """A cache whose every call fails like a timed-out ElastiCache node."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise ProviderError("redis: Timeout reading from socket")

        return fail


def test_dead_cache_degrades_instead_of_failing(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    t = live_tenant()
    container.scoring.checker.cache = DeadCache()  # type: ignore[assignment]
    resp = client.post("/v1/fraud-check", json=txn("tx_d"), headers=auth(t["app"]))
    assert resp.status_code == 200
    body = resp.json()
    assert body["degraded"] is True and body["degraded_inputs"] == ["feature_cache"]
    assert body["model_version"] == t["model"]
    assert (
        container.providers.metrics.counter("fraudrail_degraded_total", tenant=t["id"], input="feature_cache")
        == 1
    )


def test_unreachable_redis_answers_within_its_timeout(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    t = live_tenant()
    container.scoring.checker.cache = RedisFeatureCache("redis://127.0.0.1:1/0", timeout_ms=5)
    body = client.post("/v1/fraud-check", json=txn("tx_r"), headers=auth(t["app"])).json()
    assert body["degraded"] is True


class FlakyStore:
    """Wraps a store; while ``down`` every write fails (an outage); counts accepted writes."""

    def __init__(self, inner: FlaggedTransactionStore) -> None:
        self.inner = inner
        self.down = False
        self.accepted: list[str] = []

    def put(self, record: FlaggedRecord) -> bool:
        if self.down:
            raise ProviderError("flagged store unavailable")
        created = self.inner.put(record)
        if created:
            self.accepted.append(record.flagged_id)
        return created

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_store_outage_loses_nothing_and_duplicates_nothing(
    client: TestClient, live_tenant: LiveFn, container: State, tmp_path: Path
) -> None:
    t = live_tenant()
    flaky = FlakyStore(container.providers.flagged_store)
    container.scoring.drainer.sink.store = flaky  # type: ignore[attr-defined]
    config = {"review_threshold": "0.5", "suspicious_threshold": "0.8", "block_cards": ["card_bad"]}
    client.put("/v1/scoring-config", json=config, headers=auth(t["admin"]))
    spool, sink = container.scoring.spool, container.scoring.drainer.sink

    flaky.down = True
    for i in range(40):
        assert (
            client.post(
                "/v1/fraud-check", json=txn(f"tx_{i}", card_token="card_bad"), headers=auth(t["app"])
            ).json()["decision"]
            == "SUSPICIOUS"
        )
    with pytest.raises(ProviderError):
        spool.drain(sink)
    assert spool.pending() == 40 and flaky.inner.count(t["id"]) == 0

    flaky.down = False
    assert spool.drain(sink) == 40
    assert spool.pending() == 0
    assert flaky.inner.count(t["id"]) == 40 and len(set(flaky.accepted)) == 40

    # A crash before the offset was saved replays everything: the store takes none twice.
    for offset in spool.dir.glob("*.offset"):
        offset.write_text("0")
    spool.drain(sink)
    assert flaky.inner.count(t["id"]) == 40 and len(flaky.accepted) == 40


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    first = FlaggedSpool(tmp_path / "spool")
    for i in range(5):
        first.append({"tenant_id": "ten_a", "flagged_id": f"flg_{i}", "payload": {"i": i}})
    first.close()
    got: list[Mapping[str, Any]] = []
    second = FlaggedSpool(tmp_path / "spool")
    assert second.pending() == 5
    second.drain(got.append)
    assert [r["flagged_id"] for r in got] == [f"flg_{i}" for i in range(5)]
    assert second.pending() == 0


def test_a_poison_record_is_dead_lettered_while_an_outage_is_waited_out(tmp_path: Path) -> None:
    spool = FlaggedSpool(tmp_path / "spool", poison_attempts=3)
    for i in range(4):
        spool.append({"tenant_id": "ten_a", "flagged_id": f"flg_{i}", "payload": {"i": i}})
    delivered: list[str] = []
    outage = [True]

    def sink(record: Mapping[str, Any]) -> None:
        if outage[0]:
            raise ProviderError("dynamodb: endpoint unreachable")
        if record["flagged_id"] == "flg_1":
            raise ValueError("this record can never be stored")
        delivered.append(record["flagged_id"])

    for _ in range(10):  # however long the outage lasts, nothing is given up
        with pytest.raises(ProviderError):
            spool.drain(sink)
    assert spool.pending() == 4 and spool.dead_letters() == []

    outage[0] = False
    for _ in range(2):  # the poison record holds the line for its first attempts...
        with pytest.raises(ValueError):
            spool.drain(sink)
        assert delivered == ["flg_0"]
    assert spool.drain(sink) == 2  # ...then moves aside, and the records behind it go through
    assert delivered == ["flg_0", "flg_2", "flg_3"] and spool.pending() == 0
    dead = spool.dead_letters()
    assert [d["record"]["flagged_id"] for d in dead] == ["flg_1"] and "never be stored" in dead[0]["error"]

    assert spool.requeue_dead() == 1 and spool.dead_letters() == [] and spool.pending() == 1
    with pytest.raises(ValueError):
        spool.drain(sink)
    delivered_fixed: list[str] = []
    assert spool.drain(lambda r: delivered_fixed.append(r["flagged_id"])) == 1  # cause fixed: delivered
    assert delivered_fixed == ["flg_1"]


def test_a_review_queue_failure_keeps_the_flagged_transaction_until_it_is_queued(
    client: TestClient, live_tenant: LiveFn, container: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flagged store took the record but the review subscriber's database call failed: the
    record stays in the spool (it used to be logged and lost) and reaches the queue afterwards."""
    from sqlalchemy.exc import OperationalError

    from control_plane.review import service as review_service

    t = live_tenant()
    client.put(
        "/v1/scoring-config",
        json={"review_threshold": "0.5", "suspicious_threshold": "0.8", "block_cards": ["card_bad"]},
        headers=auth(t["admin"]),
    )
    spool, sink = container.scoring.spool, container.scoring.drainer.sink
    real_ingest = review_service.ingest
    down = [True]

    def ingest(*args: Any, **kwargs: Any) -> Any:
        if down[0]:
            raise OperationalError("INSERT INTO review_items", {}, Exception("server closed the connection"))
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(review_service, "ingest", ingest)
    container.scoring.drainer.stop()  # drained by hand below
    answer = client.post("/v1/fraud-check", json=txn("tx_rq", card_token="card_bad"), headers=auth(t["app"]))
    assert answer.json()["decision"] == "SUSPICIOUS"
    for _ in range(5):
        with pytest.raises(ProviderError):
            spool.drain(sink)
    assert spool.pending() == 1 and spool.dead_letters() == []
    assert container.providers.flagged_store.count(t["id"]) == 1  # stored once, not yet queued

    down[0] = False
    assert spool.drain(sink) == 1 and spool.pending() == 0
    queue = client.get("/v1/reviews", headers=auth(t["analyst"])).json()
    assert [item["txn_id"] for item in queue["items"]] == ["tx_rq"]
    assert container.providers.flagged_store.count(t["id"]) == 1


def test_lru_evicts_least_recent_and_reloads_on_use(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    host.capacity = 2
    tenants = [live_tenant(f"tenant-{i}") for i in range(3)]
    for t in tenants:
        assert (
            client.post("/v1/fraud-check", json=txn(f"tx_{t['id']}"), headers=auth(t["app"])).status_code
            == 200
        )
    assert len(host.loaded()) == 2 and host.evictions >= 1
    assert (tenants[0]["id"], tenants[0]["model"]) not in host.loaded()
    loads = host.loads
    client.post("/v1/fraud-check", json=txn("tx_again"), headers=auth(tenants[0]["app"]))
    assert host.loads == loads + 1 and (tenants[0]["id"], tenants[0]["model"]) in host.loaded()


def test_tampered_artifact_refuses_to_load(
    client: TestClient, live_tenant: LiveFn, container: State, trained_artifact: bytes
) -> None:
    t = live_tenant()
    host = container.providers.model_host
    assert isinstance(host, LocalModelHost)
    key = f"tenants/{t['id']}/models/{t['model']}.frm"
    container.providers.object_store.put(key, trained_artifact[:-8] + b"tampered")
    resp = client.post("/v1/fraud-check", json=txn("tx_t"), headers=auth(t["app"]))
    # Never served: the check answers from the tenant's rules, degraded (test_model_fallback.py).
    assert resp.status_code == 200 and resp.json()["degraded_inputs"] == ["production_model"]
    assert container.providers.metrics.counter("fraudrail_integrity_failures_total", tenant=t["id"]) == 1

    # Promotion re-verifies too: a tampered candidate is refused by the deployment policy.
    candidate = register_model(container, t["id"], trained_artifact)
    container.providers.object_store.put(f"tenants/{t['id']}/models/{candidate}.frm", b"not the model")
    refused = client.post(f"/v1/models/{candidate}/promote", headers=auth(t["admin"]))
    assert refused.status_code == 409 and refused.json()["title"] == "Deployment refused"
    assert any("integrity" in v["message"] for v in refused.json()["violations"])


def test_redis_hot_path_is_idempotent(
    client: TestClient, live_tenant: LiveFn, container: State, redis_url: str
) -> None:
    t = live_tenant()
    cache = RedisFeatureCache(redis_url, timeout_ms=50)
    container.scoring.checker.cache = cache
    try:
        first = client.post("/v1/fraud-check", json=txn("tx_redis"), headers=auth(t["app"])).json()
        again = client.post("/v1/fraud-check", json=txn("tx_redis"), headers=auth(t["app"])).json()
        assert first["degraded"] is False and again["replayed"] is True and again["score"] == first["score"]
        stored: Sequence[bytes | None] = cache.get_many(t["id"], ["idem:tx_redis"])
        assert stored[0] is not None and json.loads(stored[0])["r"]["decision"] == first["decision"]
        conflict = client.post("/v1/fraud-check", json=txn("tx_redis", amount="1.00"), headers=auth(t["app"]))
        assert conflict.status_code == 409
    finally:
        client.portal.call(cache.aclose)  # type: ignore[union-attr]  # the pool of the client's loop
        cache.client.flushdb()


def test_spool_cli_lists_dead_letters_and_requeues_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from control_plane.cli import app

    monkeypatch.setenv("FRAUDRAIL_HOME", str(tmp_path))
    spool = FlaggedSpool(tmp_path / "spool", poison_attempts=1)
    spool.append({"tenant_id": "ten_a", "flagged_id": "flg_9", "payload": {}})

    def broken(_: Mapping[str, Any]) -> None:
        raise KeyError("payload.score")

    assert spool.drain(broken) == 0 and spool.pending() == 0
    runner = CliRunner()
    status = runner.invoke(app, ["spool", "status"])
    assert status.exit_code == 0, status.output
    summary = json.loads(status.output.splitlines()[0])
    assert {k: summary[k] for k in ("pending", "dead_letters")} == {"pending": 0, "dead_letters": 1}
    assert summary["spool"] == str(tmp_path / "spool")
    assert "dead: ten_a flg_9: KeyError('payload.score')" in status.output
    replay = runner.invoke(app, ["spool", "replay-dead"])
    assert replay.exit_code == 0 and "requeued 1 record(s)" in replay.output
    got: list[str] = []
    assert spool.drain(lambda r: got.append(r["flagged_id"])) == 1 and got == ["flg_9"]
    assert spool.dead_letters() == []
