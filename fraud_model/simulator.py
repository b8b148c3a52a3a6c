"""The handbook's transaction generator (Le Borgne et al., chapter 3.2), vectorised with numpy.

Same generative story as the handbook, not the same random stream: its per-customer loops
seed the global numpy state; here one ``numpy.random.Generator`` draws whole arrays, so a
seed gives the same frame on every run and 365 days x 5,000 cards take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraud_model import schema as s

GRID_SIZE = 100.0
DAY_S = 86_400
TIME_MEAN_S = DAY_S / 2
TIME_STD_S = 20_000.0
SCENARIO1_AMOUNT = 220.0
SCENARIO2_TERMINALS_PER_DAY = 2
SCENARIO2_DAYS = 28
SCENARIO3_CUSTOMERS_PER_DAY = 3
SCENARIO3_DAYS = 14
SCENARIO3_MULTIPLIER = 5.0
_CHUNK_CELLS = 5_000_000


@dataclass(frozen=True)
class CustomerProfiles:
    x: np.ndarray
    y: np.ndarray
    mean_amount: np.ndarray
    std_amount: np.ndarray
    mean_nb_tx_per_day: np.ndarray


@dataclass(frozen=True)
class TerminalProfiles:
    x: np.ndarray
    y: np.ndarray


def customer_profiles(n_customers: int, rng: np.random.Generator) -> CustomerProfiles:
    """Location on the 100x100 grid, spending mean U(5,100) with std mean/2, U(0,4) txns a day."""
    x = rng.uniform(0, GRID_SIZE, n_customers)
    y = rng.uniform(0, GRID_SIZE, n_customers)
    mean_amount = rng.uniform(5, 100, n_customers)
    mean_nb = rng.uniform(0, 4, n_customers)
    return CustomerProfiles(x, y, mean_amount, mean_amount / 2, mean_nb)


def terminal_profiles(n_terminals: int, rng: np.random.Generator) -> TerminalProfiles:
    return TerminalProfiles(rng.uniform(0, GRID_SIZE, n_terminals), rng.uniform(0, GRID_SIZE, n_terminals))


def available_terminals(
    customers: CustomerProfiles, terminals: TerminalProfiles, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Terminals strictly within ``radius`` of each customer, as CSR (offsets, terminal indices).

    Chunked dense distance blocks keep memory bounded without a KD-tree; customers'
    terminal lists come out in increasing terminal order, as in the handbook.
    """
    n_c = len(customers.x)
    n_t = len(terminals.x)
    chunk = max(1, _CHUNK_CELLS // max(n_t, 1))
    counts = np.zeros(n_c, dtype=np.int64)
    parts: list[np.ndarray] = []
    r2 = radius * radius
    for lo in range(0, n_c, chunk):
        hi = min(n_c, lo + chunk)
        dx = customers.x[lo:hi, None] - terminals.x[None, :]
        dy = customers.y[lo:hi, None] - terminals.y[None, :]
        within = dx * dx + dy * dy < r2
        rows, cols = np.nonzero(within)
        counts[lo:hi] = np.bincount(rows, minlength=hi - lo)
        parts.append(cols.astype(np.int64))
    offsets = np.zeros(n_c + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return offsets, flat


def _segment_positions(keys: np.ndarray, lo_keys: np.ndarray, hi_keys: np.ndarray) -> list[np.ndarray]:
    lo = np.searchsorted(keys, lo_keys, side="left")
    hi = np.searchsorted(keys, hi_keys, side="left")
    return [np.arange(a, b) for a, b in zip(lo, hi, strict=True)]


def simulate(
    n_customers: int,
    n_terminals: int,
    n_days: int,
    start_date: str = "2018-04-01",
    seed: int = 0,
    radius: float = 5.0,
) -> pd.DataFrame:
    """Simulated labelled transactions in our schema, sorted by ``ts``; deterministic per seed."""
    if n_customers <= 0 or n_terminals <= 0 or n_days <= 0:
        raise ValueError("n_customers, n_terminals and n_days must be positive")
    rng = np.random.default_rng(seed)
    cust = customer_profiles(n_customers, rng)
    term = terminal_profiles(n_terminals, rng)
    offsets, flat = available_terminals(cust, term, radius)
    n_avail = np.diff(offsets)

    daily = rng.poisson(np.broadcast_to(cust.mean_nb_tx_per_day[:, None], (n_customers, n_days)))
    flat_counts = daily.ravel()
    cust_idx = np.repeat(np.repeat(np.arange(n_customers), n_days), flat_counts)
    day_idx = np.repeat(np.tile(np.arange(n_days), n_customers), flat_counts)
    total = len(cust_idx)

    # int() of the normal draw truncates toward zero; the handbook drops times outside the day.
    time_of_day = rng.normal(TIME_MEAN_S, TIME_STD_S, total).astype(np.int64)
    mean = cust.mean_amount[cust_idx]
    amount = rng.normal(mean, cust.std_amount[cust_idx])
    redraw = rng.uniform(0.0, 2.0 * mean)
    amount = np.round(np.where(amount < 0, redraw, amount), 2).astype(np.float64)
    pick = rng.random(total)
    keep = (time_of_day > 0) & (time_of_day < DAY_S) & (n_avail[cust_idx] > 0)

    cust_idx, day_idx, time_of_day, amount, pick = (
        cust_idx[keep],
        day_idx[keep],
        time_of_day[keep],
        amount[keep],
        pick[keep],
    )
    choice = np.minimum((pick * n_avail[cust_idx]).astype(np.int64), n_avail[cust_idx] - 1)
    term_idx = flat[offsets[cust_idx] + choice]
    seconds = day_idx * DAY_S + time_of_day

    # Transaction IDs follow time order, as the handbook's sort + reset_index does.
    order = np.argsort(seconds, kind="stable")
    cust_idx, term_idx, day_idx, seconds, amount = (
        cust_idx[order],
        term_idx[order],
        day_idx[order],
        seconds[order],
        amount[order],
    )
    n = len(seconds)

    scenario = np.zeros(n, dtype=np.int64)
    scenario[amount > SCENARIO1_AMOUNT] = 1

    compromised = np.zeros((n_terminals, n_days), dtype=bool)
    for day in range(n_days):
        picked = rng.choice(n_terminals, size=min(SCENARIO2_TERMINALS_PER_DAY, n_terminals), replace=False)
        compromised[picked, day : day + SCENARIO2_DAYS] = True
    scenario[compromised[term_idx, day_idx]] = 2

    # Scenario 3 walks each compromised customer's transactions in a 14-day range.
    by_cust = np.lexsort((np.arange(n), day_idx, cust_idx))
    keys = cust_idx[by_cust] * n_days + day_idx[by_cust]
    for day in range(n_days):
        picked = rng.choice(n_customers, size=min(SCENARIO3_CUSTOMERS_PER_DAY, n_customers), replace=False)
        ranges = _segment_positions(keys, picked * n_days + day, picked * n_days + day + SCENARIO3_DAYS)
        rows = by_cust[np.concatenate(ranges)] if ranges else np.zeros(0, dtype=np.int64)
        k = len(rows) // 3
        if k:
            frauds = rng.choice(rows, size=k, replace=False)
            amount[frauds] = amount[frauds] * SCENARIO3_MULTIPLIER
            scenario[frauds] = 3

    start_ns = pd.Timestamp(start_date, tz="UTC").value
    ts = pd.Series(pd.to_datetime(start_ns + seconds * 1_000_000_000, utc=True)).astype(s.TS_DTYPE)
    return pd.DataFrame(
        {
            s.TXN_ID: s.prefixed_ids(s.TXN_PREFIX, np.arange(n)),
            s.CARD_TOKEN: s.prefixed_ids(s.CARD_PREFIX, cust_idx),
            s.TERMINAL_ID: s.prefixed_ids(s.TERMINAL_PREFIX, term_idx),
            s.TS: ts,
            s.AMOUNT: amount,
            s.CURRENCY: pd.Series([s.DEFAULT_CURRENCY] * n, dtype="str"),
            s.IS_FRAUD: (scenario > 0).astype(np.int64),
            s.FRAUD_SCENARIO: scenario,
        }
    )
