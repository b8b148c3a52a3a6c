"""Settings allow many server processes only on shared state, and say what is missing otherwise."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from control_plane.settings import AppSettings

PG = "postgresql+psycopg://app@127.0.0.1:5432/fraudrail"


def _settings(**values: object) -> AppSettings:
    return AppSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("bus", ["redis", "sns"])
def test_many_workers_on_postgres_redis_and_a_shared_bus(bus: str) -> None:
    s = _settings(workers=4, database_url=PG, cache_backend="redis", bus_backend=bus)
    assert s.workers == 4


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"cache_backend": "memory", "bus_backend": "redis"}, "FRAUDRAIL_CACHE_BACKEND=redis"),
        ({"cache_backend": "redis", "bus_backend": "memory"}, "FRAUDRAIL_BUS_BACKEND=redis or sns"),
        ({"cache_backend": "redis", "bus_backend": "redis", "database_url": None}, "PostgreSQL"),
    ],
)
def test_many_workers_on_per_process_state_are_refused(values: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        _settings(**{"workers": 2, "database_url": PG, **values})


def test_a_separate_worker_process_needs_shared_bus_cache_and_model_host() -> None:
    with pytest.raises(ValidationError) as refused:
        _settings(env="development", run_worker_in_process=False)
    message = str(refused.value)
    assert "job worker outside the server process" in message
    for needed in (
        "FRAUDRAIL_BUS_BACKEND=redis or sns",
        "FRAUDRAIL_CACHE_BACKEND=redis",
        "FRAUDRAIL_PROVIDER=aws",
    ):
        assert needed in message
    s = _settings(
        run_worker_in_process=False, provider="aws", cache_backend="redis", bus_backend="sns", database_url=PG
    )
    assert s.run_worker_in_process is False
