"""Scheduled concept drift for simulated transactions (the monitoring loop's demos and benchmark).

From ``from_day`` (days after the first transaction's midnight) two things change that the
training weeks never showed:
- legitimate spending shifts: every legitimate amount is multiplied by ``amount_factor``;
- a new fraud pattern, card testing: each day ``testers_per_day`` cards are compromised; each gets
  ``probes`` small charges (0.50-3.00) a few minutes apart at one terminal, then one large charge
  (a few times the card's usual spend) at another terminal within the hour. Every charge of the
  pattern is fraud (``fraud_scenario`` 4).
The result keeps the schema, is sorted by time, and is deterministic per seed; new rows get txn_ids
after the largest one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_model import schema

DAY_S = 86_400
CARD_TESTING = 4


def with_concept_drift(
    frame: pd.DataFrame,
    *,
    from_day: int,
    amount_factor: float = 1.6,
    testers_per_day: int = 6,
    probes: int = 4,
    seed: int = 0,
) -> pd.DataFrame:
    if from_day < 0 or testers_per_day < 0 or probes < 1 or amount_factor <= 0:
        raise ValueError("from_day, testers_per_day >= 0, probes >= 1 and amount_factor > 0 are required")
    rng = np.random.default_rng(seed)
    out = frame.copy()
    ts_s = schema.epoch_seconds(out[schema.TS])
    first_day = int(ts_s.min() // DAY_S)
    shift_s = (first_day + from_day) * DAY_S
    after = ts_s >= shift_s
    legit = out[schema.IS_FRAUD].to_numpy() == 0
    out.loc[after & legit, schema.AMOUNT] = np.round(out.loc[after & legit, schema.AMOUNT] * amount_factor, 2)
    last_day = int(ts_s.max() // DAY_S)
    cards = out[schema.CARD_TOKEN].unique()
    terminals = out[schema.TERMINAL_ID].unique()
    usual = out.groupby(schema.CARD_TOKEN)[schema.AMOUNT].mean()
    rows: list[dict[str, object]] = []
    for day in range(first_day + from_day, last_day + 1):
        for card in rng.choice(cards, size=min(testers_per_day, len(cards)), replace=False):
            start = day * DAY_S + int(rng.integers(0, DAY_S - 2 * 3600))
            probe_terminal, cash_terminal = rng.choice(terminals, size=2, replace=False)
            t = start
            for _ in range(probes):
                rows.append(_row(card, probe_terminal, t, round(float(rng.uniform(0.5, 3.0)), 2)))
                t += int(rng.integers(60, 600))
            big = round(float(usual.get(card, 50.0)) * float(rng.uniform(3.0, 6.0)) + 100.0, 2)
            rows.append(_row(card, cash_terminal, t + int(rng.integers(300, 3000)), big))
    if rows:
        extra = pd.DataFrame(rows)
        next_id = int(out[schema.TXN_ID].str.removeprefix(schema.TXN_PREFIX).astype(np.int64).max()) + 1
        extra[schema.TXN_ID] = schema.prefixed_ids(
            schema.TXN_PREFIX, np.arange(next_id, next_id + len(extra))
        )
        extra[schema.TS] = schema.to_utc(pd.to_datetime(extra.pop("ts_s"), unit="s"))
        extra[schema.CURRENCY] = out[schema.CURRENCY].iloc[0] if len(out) else schema.DEFAULT_CURRENCY
        extra = extra[[c for c in out.columns if c in extra.columns]]
        out = pd.concat([out, extra], ignore_index=True)
    out = out.sort_values([schema.TS, schema.TXN_ID], kind="stable").reset_index(drop=True)
    out[schema.IS_FRAUD] = out[schema.IS_FRAUD].astype(np.int64)
    if schema.FRAUD_SCENARIO in out:
        out[schema.FRAUD_SCENARIO] = out[schema.FRAUD_SCENARIO].astype(np.int64)
    return out


def _row(card: object, terminal: object, ts_s: int, amount: float) -> dict[str, object]:
    return {
        schema.CARD_TOKEN: card,
        schema.TERMINAL_ID: terminal,
        "ts_s": ts_s,
        schema.AMOUNT: amount,
        schema.IS_FRAUD: 1,
        schema.FRAUD_SCENARIO: CARD_TESTING,
    }
