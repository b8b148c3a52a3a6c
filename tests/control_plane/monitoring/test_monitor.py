"""The in-memory side: a failed flush loses nothing, bounds count what they drop, failures never
reach the check."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from control_plane.bootstrap.state import State
from control_plane.monitoring.monitor import DriftMonitor
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, epoch_day
from tests.control_plane.monitoring.conftest import score
from tests.control_plane.scoring.conftest import sim_requests


@pytest.mark.parametrize("failing", ["_load_profiles", "_write_txns"])
def test_a_failed_flush_keeps_the_batch_for_the_next(
    client: TestClient,
    container: State,
    monitored: dict[str, Any],
    sim_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    """The database goes away while the flush reads the versions' profiles, or while it writes:
    nothing observed is lost, and checks answered meanwhile are written with it."""
    monitor = container.monitor
    requests = sim_requests(sim_frame, 15)
    score(client, monitored, requests[:10])

    def down(self: DriftMonitor, *args: Any) -> None:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(DriftMonitor, failing, down)
        with pytest.raises(RuntimeError):
            monitor.flush()
    score(client, monitored, requests[10:])
    monitor.flush()
    assert monitor.dropped == 0
    with container.factory() as session:
        assert session.scalar(select(func.count()).select_from(ScoredTransaction)) == 15
        assert session.scalar(select(func.sum(DriftBucket.volume))) == 15
        # Each row carries its day, the card history's index key.
        assert all(r.day == epoch_day(r.ts) for r in session.scalars(select(ScoredTransaction)))


def test_bounds_drop_and_count(
    client: TestClient, container: State, monitored: dict[str, Any], sim_frame: pd.DataFrame
) -> None:
    container.monitor.max_observations = 5
    score(client, monitored, sim_requests(sim_frame, 8))
    assert container.monitor.dropped == 3 * 2  # neither the observation nor the transaction kept
    container.monitor.flush()
    with container.factory() as session:
        assert session.scalar(select(func.sum(DriftBucket.volume))) == 5


def test_a_failing_monitor_never_fails_a_check(
    client: TestClient,
    container: State,
    monitored: dict[str, Any],
    sim_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any) -> None:
        raise RuntimeError("monitoring bug")

    monkeypatch.setattr(container.monitor, "observe", broken)
    answers = score(client, monitored, sim_requests(sim_frame, 3))
    assert len(answers) == 3 and all(a["model_version"] == monitored["model"] for a in answers)
