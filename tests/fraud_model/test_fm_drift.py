"""Scheduled concept drift on simulated transactions: only after the shift day, deterministic."""

from __future__ import annotations

import pandas as pd

from fraud_model.drift import CARD_TESTING, with_concept_drift
from fraud_model.simulator import simulate


def test_drift_starts_on_its_day_and_is_deterministic() -> None:
    base = simulate(60, 120, 12, start_date="2026-06-01", seed=4)
    drifted = with_concept_drift(base, from_day=8, testers_per_day=3, probes=4, seed=9)
    shift = pd.Timestamp("2026-06-09", tz="UTC")
    pattern = drifted[drifted["fraud_scenario"] == CARD_TESTING]
    assert len(pattern) == 4 * 3 * 5  # 4 days from day 8, 3 cards a day, 4 probes and 1 large charge
    assert (pattern["ts"] >= shift).all() and (pattern["is_fraud"] == 1).all()
    assert drifted["txn_id"].is_unique and drifted["ts"].is_monotonic_increasing
    merged = base.merge(drifted, on="txn_id", suffixes=("", "_after"))
    before = merged["ts"] < shift
    legit = merged["is_fraud"] == 0
    assert (merged.loc[before, "amount"] == merged.loc[before, "amount_after"]).all()
    ratio = merged.loc[~before & legit, "amount_after"] / merged.loc[~before & legit, "amount"]
    assert ((ratio - 1.6).abs() < 0.01).mean() > 0.9  # rounding to cents aside
    again = with_concept_drift(base, from_day=8, testers_per_day=3, probes=4, seed=9)
    pd.testing.assert_frame_equal(drifted, again)
