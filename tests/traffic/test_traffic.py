"""traffic.set_weights (write, read back, verify) and handle_alarm (stable first, recorded once)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from providers.local.metrics import InMemoryMetrics
from providers.local.model_host import LocalModelHost
from providers.local.object_store import LocalObjectStore
from providers.local.rollback_log import FileRollbackLog
from providers.ports import HostedModel, ProviderError, RollbackRecord
from traffic import AlarmDeps, InvalidAlarm, RolloutAlarm, WeightChangeFailed, handle_alarm, set_weights

TENANT, STABLE, CANARY = "ten_acme", "mv_stable", "mv_canary"


class CountingHost(LocalModelHost):
    """The local host, counting writes; ``serve_instead`` makes it serve other weights than set."""

    def __init__(self, root: Path) -> None:
        super().__init__(LocalObjectStore(root))
        self.writes: list[dict[str, int]] = []
        self.serve_instead: dict[str, int] | None = None

    def set_weights(self, tenant_id: str, weights: Mapping[str, int]) -> None:
        self.writes.append(dict(weights))
        super().set_weights(tenant_id, self.serve_instead or weights)


@pytest.fixture
def host(tmp_path: Path) -> CountingHost:
    h = CountingHost(tmp_path / "objects")
    h.ensure_slot(TENANT, "pooled")
    for version in (STABLE, CANARY):
        h.deploy(HostedModel(TENANT, version, f"tenants/{TENANT}/models/{version}.bin", "0" * 64))
    return h


def alarm(**overrides: object) -> dict[str, object]:
    return {
        "type": "rollout.alarm",
        "tenant_id": TENANT,
        "rollout_id": "ro_1",
        "stable_version": STABLE,
        "canary_version": CANARY,
        "reason": "canary analysis failed: error_burn_rate observed 30 against threshold 14.4",
        "evidence": {"metric": "error_burn_rate", "threshold": 14.4, "observed": 30.0},
        **overrides,
    }


def test_set_weights_writes_reads_back_and_reports_the_canary_share(host: CountingHost) -> None:
    metrics = InMemoryMetrics()
    weights = set_weights(host, TENANT, {STABLE: 9_000, CANARY: 1_000}, canary=CANARY, metrics=metrics)
    assert weights == {STABLE: 9_000, CANARY: 1_000} == host.weights(TENANT)
    assert host.writes == [{STABLE: 9_000, CANARY: 1_000}]
    assert "fraudrail_canary_weight" in metrics.render_prometheus()
    assert 'fraudrail_canary_weight{tenant="ten_acme"} 0.1' in metrics.render_prometheus()


def test_weights_already_served_are_not_written_again(host: CountingHost) -> None:
    set_weights(host, TENANT, {STABLE: 10_000, CANARY: 0})
    set_weights(host, TENANT, {STABLE: 10_000})  # a version at 0 bp and an absent one serve the same
    assert host.writes == [{STABLE: 10_000, CANARY: 0}]


def test_a_host_that_serves_other_weights_fails_the_change(host: CountingHost) -> None:
    host.serve_instead = {STABLE: 5_000, CANARY: 5_000}
    with pytest.raises(WeightChangeFailed) as failed:
        set_weights(host, TENANT, {STABLE: 10_000, CANARY: 0})
    assert failed.value.observed == {STABLE: 5_000, CANARY: 5_000}
    assert failed.value.wanted == {STABLE: 10_000, CANARY: 0}
    assert isinstance(failed.value, ProviderError)  # a job retries it; the Lambda raises it


def test_a_refused_change_and_bad_weights_fail(host: CountingHost) -> None:
    with pytest.raises(WeightChangeFailed, match="not deployed"):
        set_weights(host, TENANT, {STABLE: 9_000, "mv_unknown": 1_000})
    with pytest.raises(WeightChangeFailed, match="sum to 10000"):
        set_weights(host, TENANT, {STABLE: 9_000})
    assert host.writes == [{STABLE: 9_000, "mv_unknown": 1_000}]


def test_handle_alarm_moves_traffic_then_records_once_and_counts_once(
    host: CountingHost, tmp_path: Path
) -> None:
    set_weights(host, TENANT, {STABLE: 5_000, CANARY: 5_000})
    metrics = InMemoryMetrics()
    deps = AlarmDeps(host, FileRollbackLog(tmp_path / "rollback.jsonl"), metrics)

    first = handle_alarm(alarm(), deps)
    again = handle_alarm(alarm(), deps)  # a redelivery, or the Lambda and the control plane both

    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    assert (first.first, again.first) == (True, False)
    assert first.weights == {STABLE: 10_000, CANARY: 0}
    [record] = deps.rollback_log.list(TENANT)
    assert record.rollback_id == "rb_ro_1" and record.evidence["rollout_id"] == "ro_1"
    assert record.weights_after == {STABLE: 10_000, CANARY: 0}
    text = metrics.render_prometheus()
    assert 'fraudrail_rollbacks_total{reason="error_burn_rate",tenant="ten_acme"} 1.0' in text
    assert 'fraudrail_canary_weight{tenant="ten_acme"} 0.0' in text


def test_handle_alarm_records_nothing_when_the_weights_did_not_move(
    host: CountingHost, tmp_path: Path
) -> None:
    host.serve_instead = {STABLE: 5_000, CANARY: 5_000}
    deps = AlarmDeps(host, FileRollbackLog(tmp_path / "rollback.jsonl"))
    with pytest.raises(WeightChangeFailed):
        handle_alarm(alarm(), deps)
    assert deps.rollback_log.list(TENANT) == []


def test_a_failing_rollback_log_raises_after_the_weights_moved(host: CountingHost) -> None:
    class DiskFull:
        def append(self, record: RollbackRecord) -> bool:
            raise OSError("No space left on device")

        def list(self, tenant_id: str, limit: int = 50) -> list[RollbackRecord]:
            return []

        def purge_tenant(self, tenant_id: str) -> int:
            return 0

    with pytest.raises(OSError, match="No space"):
        handle_alarm(alarm(), AlarmDeps(host, DiskFull()))
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}  # stable first, always


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"type": "rollout.promoted"}, "rollout.promoted"),
        ({"stable_version": ""}, "stable_version"),
        ({"canary_version": STABLE}, "same version"),
        ({"severity": "sev0"}, "sev0"),
        ({"evidence": ["x"]}, "evidence"),
    ],
)
def test_malformed_alarms_are_refused_by_name(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidAlarm, match=message):
        RolloutAlarm.from_message(alarm(**overrides))


def test_an_alarm_survives_its_message_form() -> None:
    parsed = RolloutAlarm.from_message(alarm(links={"Dashboard": "https://grafana.example/d"}))
    assert RolloutAlarm.from_message(parsed.to_message()) == parsed
    assert parsed.metric == "error_burn_rate"
    assert RolloutAlarm.from_message(alarm(evidence={"manual": True})).metric == "manual"
