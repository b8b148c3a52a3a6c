"""Shared fixtures: small simulator runs (module-cached so the suite stays fast)."""

from __future__ import annotations

from functools import cache

import pandas as pd
import pytest

from fraud_model.simulator import simulate


@cache
def _simulated(n_customers: int, n_terminals: int, n_days: int, seed: int) -> pd.DataFrame:
    return simulate(n_customers, n_terminals, n_days, seed=seed)


def simulated(n_customers: int, n_terminals: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """A fresh copy of a cached simulator run."""
    return _simulated(n_customers, n_terminals, n_days, seed).copy()


@pytest.fixture(scope="session")
def small_stream() -> pd.DataFrame:
    """300 cards, 600 terminals, 60 days: the replay-equality stream."""
    return simulated(300, 600, 60, seed=7)


@pytest.fixture(scope="session")
def canonical_frame() -> pd.DataFrame:
    """A tiny valid frame in our schema."""
    return simulated(40, 80, 10, seed=1)
