from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from fraud_model import schema as s
from fraud_model.simulator import (
    available_terminals,
    customer_profiles,
    simulate,
    terminal_profiles,
)
from fraud_model.validation import validate_dataset


def test_same_seed_same_frame_and_other_seed_differs() -> None:
    a = simulate(50, 100, 20, seed=11)
    b = simulate(50, 100, 20, seed=11)
    c = simulate(50, 100, 20, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a[s.AMOUNT].equals(c[s.AMOUNT])


def test_output_is_in_our_schema_and_sorted(sim: Callable[..., pd.DataFrame]) -> None:
    df = sim(200, 400, 30)
    assert list(df.columns) == [*s.REQUIRED_COLUMNS, *s.LABEL_COLUMNS]
    assert str(df[s.TS].dtype) == s.TS_DTYPE
    assert df[s.TS].is_monotonic_increasing
    assert df[s.TXN_ID].is_unique
    assert df[s.CARD_TOKEN].str.startswith("card_").all()
    assert df[s.TERMINAL_ID].str.startswith("term_").all()
    assert validate_dataset(df, require_labels=True, require_sorted=True).ok
    first, last = df[s.TS].iloc[0], df[s.TS].iloc[-1]
    assert first >= pd.Timestamp("2018-04-01", tz="UTC")
    assert last < pd.Timestamp("2018-04-01", tz="UTC") + pd.Timedelta(days=30)


def test_scenario_facts(sim: Callable[..., pd.DataFrame]) -> None:
    df = sim(500, 1000, 60)
    scenario = df[s.FRAUD_SCENARIO]
    assert set(scenario.unique()) == {0, 1, 2, 3}
    assert (df[s.IS_FRAUD] == (scenario > 0).astype(int)).all()
    # Scenario 1: every amount above 220 that no later scenario touched is fraud, and only those.
    assert (df.loc[scenario == 1, s.AMOUNT] > 220).all()
    assert (scenario[(df[s.AMOUNT] > 220)] > 0).all()
    # Scenario 3 multiplied amounts by 5: they sit far above their card's usual spend.
    usual = df[scenario == 0].groupby(s.CARD_TOKEN)[s.AMOUNT].median()
    s3 = df[scenario == 3]
    ratio = s3[s.AMOUNT].to_numpy() / usual.reindex(s3[s.CARD_TOKEN]).to_numpy()
    assert np.nanmedian(ratio) > 3.0
    # Scenario 2: a compromised terminal's transactions are frauds for up to 28 days.
    s2 = df[scenario == 2]
    span = s2.groupby(s.TERMINAL_ID)[s.TS].agg(lambda t: (t.max() - t.min()).days)
    assert span.max() <= 60 and span.min() >= 0
    rate = df[s.IS_FRAUD].mean()
    # 2 of 1,000 terminals a day for 28 days is ~5.6% of terminals; plus scenarios 1 and 3.
    assert 0.01 < rate < 0.15


def test_handbook_sized_fraud_rate_is_near_the_handbooks() -> None:
    df = simulate(1000, 2000, 40, seed=3)
    # The handbook (5,000 cards, 10,000 terminals) has 0.84%; with 5x fewer terminals the
    # compromised share of terminals is 5x larger.
    assert 0.01 < df[s.IS_FRAUD].mean() < 0.08
    per_card_day = df.groupby([s.CARD_TOKEN, df[s.TS].dt.floor("D")]).size()
    assert per_card_day.mean() < 6


def test_amounts_positive_rounded_and_times_inside_the_day(sim: Callable[..., pd.DataFrame]) -> None:
    df = sim(200, 400, 30)
    clean = df[df[s.FRAUD_SCENARIO] != 3][s.AMOUNT].to_numpy()
    assert (df[s.AMOUNT] >= 0).all()
    assert np.allclose(clean, np.round(clean, 2))
    seconds = (df[s.TS] - df[s.TS].dt.floor("D")).dt.total_seconds()
    assert ((seconds > 0) & (seconds < 86_400)).all()


def test_terminals_are_within_radius() -> None:
    rng = np.random.default_rng(5)
    cust = customer_profiles(300, rng)
    term = terminal_profiles(700, rng)
    offsets, flat = available_terminals(cust, term, 5.0)
    for c in (0, 17, 299):
        mine = flat[offsets[c] : offsets[c + 1]]
        d = np.hypot(cust.x[c] - term.x, cust.y[c] - term.y)
        assert sorted(mine.tolist()) == np.flatnonzero(d < 5.0).tolist()


def test_cards_only_use_terminals_in_their_radius(sim: Callable[..., pd.DataFrame]) -> None:
    df = sim(200, 400, 30)
    per_card = df.groupby(s.CARD_TOKEN)[s.TERMINAL_ID].nunique()
    # With radius 5 on a 100x100 grid a card reaches ~0.8% of 400 terminals: a handful.
    assert per_card.max() <= 15


def test_invalid_sizes_are_rejected() -> None:
    with pytest.raises(ValueError):
        simulate(0, 10, 10)
