"""Shared fixtures: small simulator runs, cached for the session so the suite stays fast."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from fraud_model.simulator import simulate

Simulated = Callable[..., pd.DataFrame]


@cache
def _simulated(n_customers: int, n_terminals: int, n_days: int, seed: int) -> pd.DataFrame:
    return simulate(n_customers, n_terminals, n_days, seed=seed)


@pytest.fixture(scope="session")
def sim() -> Simulated:
    """``sim(n_customers, n_terminals, n_days, seed=0)``: a fresh copy of a cached simulator run."""

    def make(n_customers: int, n_terminals: int, n_days: int, seed: int = 0) -> pd.DataFrame:
        return _simulated(n_customers, n_terminals, n_days, seed).copy()

    return make


@pytest.fixture(scope="session")
def small_stream(sim: Simulated) -> pd.DataFrame:
    """300 cards, 600 terminals, 60 days: the replay-equality stream."""
    return sim(300, 600, 60, seed=7)


@pytest.fixture(scope="session")
def canonical_frame(sim: Simulated) -> pd.DataFrame:
    """A tiny valid frame in our schema."""
    return sim(40, 80, 10, seed=1)


def _handbook_dir() -> Path:
    """FRAUDRAIL_HANDBOOK_DIR, else ``../shared/data/handbook`` beside the clone, else the lab's copy."""
    if os.environ.get("FRAUDRAIL_HANDBOOK_DIR"):
        return Path(os.environ["FRAUDRAIL_HANDBOOK_DIR"])
    beside = Path(__file__).resolve().parents[3] / "shared" / "data" / "handbook"
    lab = Path("/work/shared/data/handbook")
    return beside if beside.is_dir() or not lab.is_dir() else lab


HANDBOOK_DIR = _handbook_dir()


@pytest.fixture(scope="session")
def handbook_dir() -> Path:
    """The handbook's reference data; a test that needs it fails (never skips) when it is absent."""
    present = any(HANDBOOK_DIR.glob("simulated_raw_*.parquet")) and any(
        HANDBOOK_DIR.glob("simulated_transformed_*.parquet")
    )
    if not present:
        pytest.fail(
            f"handbook data not found in {HANDBOOK_DIR}: set FRAUDRAIL_HANDBOOK_DIR "
            "(or deselect these tests with -m 'not handbook')"
        )
    return HANDBOOK_DIR
