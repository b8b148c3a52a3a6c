"""The one definition of the model's features, and its vectorised batch path.

The online path (:mod:`fraud_model.online_features`) computes the same numbers one
transaction at a time; a replay test proves the two agree on every row.

Definitions (time in whole UTC seconds, ``t`` the transaction's time):

- the handbook's 15 features (Le Borgne et al., chapter 3.4): amount, weekend, night
  (hour <= 6), per card the count and mean amount over (t - w, t] for w in 1, 7, 30 days, and
  per terminal the count and fraud rate over the delayed window (t - delay - w, t - delay];
- velocity: the card's count and amount sum over 1 h, its amount sum over 24 h, seconds since
  its previous transaction (capped at 30 days, 30 days when none), and amount / its 30-day mean;
- anomaly history: how many of the card's transactions over 7 and 14 days had an amount above
  HIGH_AMOUNT_RATIO x the card's 30-day mean at their own time (a compromised card tends to
  show several).

Card windows include the transaction itself and earlier rows of the same second (in row
order), like the handbook's pandas rolling windows. Window sums are exact integer sums of
amounts quantised to 1/10,000 of the currency unit, so batch and online give identical floats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_model import schema as s

FEATURE_SET_VERSION = "fs-2026.11-1"
DAY_S = 86_400
HOUR_S = 3_600
DEFAULT_DELAY_DAYS = 7
AMOUNT_SCALE = 10_000
NIGHT_LAST_HOUR = 6
NO_PREVIOUS_S = 30 * DAY_S
HIGH_AMOUNT_RATIO = 3.0

# Card windows (seconds) in the order the state keeps them; the last is the longest.
CARD_WINDOWS_S: tuple[int, ...] = (HOUR_S, DAY_S, 7 * DAY_S, 14 * DAY_S, 30 * DAY_S)
TERMINAL_WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
CARD_HORIZON_S = CARD_WINDOWS_S[-1]


def terminal_horizon_s(delay_days: int = DEFAULT_DELAY_DAYS) -> int:
    """History a terminal's online state must keep: the delay plus the longest window."""
    return (delay_days + TERMINAL_WINDOWS_DAYS[-1]) * DAY_S


TERMINAL_HORIZON_S = terminal_horizon_s(DEFAULT_DELAY_DAYS)

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    "during_weekend",
    "during_night",
    "card_nb_tx_1d",
    "card_avg_amount_1d",
    "card_nb_tx_7d",
    "card_avg_amount_7d",
    "card_nb_tx_30d",
    "card_avg_amount_30d",
    "terminal_nb_tx_1d",
    "terminal_risk_1d",
    "terminal_nb_tx_7d",
    "terminal_risk_7d",
    "terminal_nb_tx_30d",
    "terminal_risk_30d",
    "card_nb_tx_1h",
    "card_amount_sum_1h",
    "card_amount_sum_1d",
    "card_secs_since_prev",
    "card_amount_to_avg_30d",
    "card_nb_high_amount_7d",
    "card_nb_high_amount_14d",
)

HANDBOOK_NAMES: dict[str, str] = {
    "amount": "TX_AMOUNT",
    "during_weekend": "TX_DURING_WEEKEND",
    "during_night": "TX_DURING_NIGHT",
    "card_nb_tx_1d": "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "card_avg_amount_1d": "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "card_nb_tx_7d": "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "card_avg_amount_7d": "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "card_nb_tx_30d": "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "card_avg_amount_30d": "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "terminal_nb_tx_1d": "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "terminal_risk_1d": "TERMINAL_ID_RISK_1DAY_WINDOW",
    "terminal_nb_tx_7d": "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "terminal_risk_7d": "TERMINAL_ID_RISK_7DAY_WINDOW",
    "terminal_nb_tx_30d": "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "terminal_risk_30d": "TERMINAL_ID_RISK_30DAY_WINDOW",
}
HANDBOOK_FEATURES: tuple[str, ...] = tuple(HANDBOOK_NAMES)

READABLE_NAMES: dict[str, str] = {
    "amount": "Transaction amount",
    "during_weekend": "Made at the weekend",
    "during_night": "Made at night (00:00-06:59 UTC)",
    "card_nb_tx_1d": "Card's transactions in the last 24 hours",
    "card_avg_amount_1d": "Card's average amount over the last 24 hours",
    "card_nb_tx_7d": "Card's transactions in the last 7 days",
    "card_avg_amount_7d": "Card's average amount over the last 7 days",
    "card_nb_tx_30d": "Card's transactions in the last 30 days",
    "card_avg_amount_30d": "Card's average amount over the last 30 days",
    "terminal_nb_tx_1d": "Terminal's transactions in a recent day with known outcomes",
    "terminal_risk_1d": "Terminal's fraud rate over a recent day with known outcomes",
    "terminal_nb_tx_7d": "Terminal's transactions in a recent week with known outcomes",
    "terminal_risk_7d": "Terminal's fraud rate over a recent week with known outcomes",
    "terminal_nb_tx_30d": "Terminal's transactions in a recent month with known outcomes",
    "terminal_risk_30d": "Terminal's fraud rate over a recent month with known outcomes",
    "card_nb_tx_1h": "Card's transactions in the last hour",
    "card_amount_sum_1h": "Card's total spend in the last hour",
    "card_amount_sum_1d": "Card's total spend in the last 24 hours",
    "card_secs_since_prev": "Time since the card's previous transaction",
    "card_amount_to_avg_30d": "Amount compared with the card's 30-day average",
    "card_nb_high_amount_7d": "Card's unusually large transactions in the last 7 days",
    "card_nb_high_amount_14d": "Card's unusually large transactions in the last 14 days",
}

FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}


def amount_units(amount: np.ndarray) -> np.ndarray:
    """Amounts as int64 multiples of 1/AMOUNT_SCALE (round half to even, like Python's round)."""
    return np.rint(np.asarray(amount, dtype=np.float64) * AMOUNT_SCALE).astype(np.int64)


def calendar_flags(ts_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(during_weekend, during_night) as 0/1 int64 from epoch seconds (UTC)."""
    days = np.floor_divide(ts_s, DAY_S)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0.
    hour = np.floor_divide(np.mod(ts_s, DAY_S), HOUR_S)
    return (weekday >= 5).astype(np.int64), (hour <= NIGHT_LAST_HOUR).astype(np.int64)


def _group_keys(codes: np.ndarray, ts_s: np.ndarray, lookback_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorted by (group, time, row) and the matching monotone int64 search keys."""
    order = np.lexsort((ts_s, codes))
    t0 = int(ts_s.min()) if len(ts_s) else 0
    span = (int(ts_s.max()) - t0 if len(ts_s) else 0) + lookback_s + 1
    keys = codes[order].astype(np.int64) * span + (ts_s[order] - t0 + lookback_s)
    return order, keys


def _card_block(codes: np.ndarray, ts_s: np.ndarray, amount: np.ndarray) -> dict[str, np.ndarray]:
    n = len(ts_s)
    order, keys = _group_keys(codes, ts_s, CARD_HORIZON_S)
    units = amount_units(amount)[order]
    cs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(units, out=cs[1:])
    pos = np.arange(n)
    starts: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    sums: dict[int, np.ndarray] = {}
    for w in CARD_WINDOWS_S:
        start = np.searchsorted(keys, keys - w, side="right")
        starts[w] = start
        counts[w] = pos - start + 1
        sums[w] = cs[pos + 1] - cs[start]

    sorted_codes = codes[order]
    sorted_ts = ts_s[order]
    gap = np.full(n, NO_PREVIOUS_S, dtype=np.int64)
    if n > 1:
        same = sorted_codes[1:] == sorted_codes[:-1]
        gap[1:] = np.where(same, np.minimum(sorted_ts[1:] - sorted_ts[:-1], NO_PREVIOUS_S), NO_PREVIOUS_S)

    def avg(w: int) -> np.ndarray:
        return np.asarray((sums[w] / counts[w]) / AMOUNT_SCALE, dtype=np.float64)

    avg30 = avg(30 * DAY_S)
    amt = amount[order]
    ratio = np.divide(amt, avg30, out=np.ones(n, dtype=np.float64), where=avg30 > 0)
    high = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(ratio > HIGH_AMOUNT_RATIO, out=high[1:])
    block = {
        "card_nb_tx_1d": counts[DAY_S],
        "card_avg_amount_1d": avg(DAY_S),
        "card_nb_tx_7d": counts[7 * DAY_S],
        "card_avg_amount_7d": avg(7 * DAY_S),
        "card_nb_tx_30d": counts[30 * DAY_S],
        "card_avg_amount_30d": avg30,
        "card_nb_tx_1h": counts[HOUR_S],
        "card_amount_sum_1h": sums[HOUR_S] / AMOUNT_SCALE,
        "card_amount_sum_1d": sums[DAY_S] / AMOUNT_SCALE,
        "card_secs_since_prev": gap,
        "card_amount_to_avg_30d": ratio,
        "card_nb_high_amount_7d": high[pos + 1] - high[starts[7 * DAY_S]],
        "card_nb_high_amount_14d": high[pos + 1] - high[starts[14 * DAY_S]],
    }
    out: dict[str, np.ndarray] = {}
    for name, values in block.items():
        restored = np.empty(n, dtype=np.float64)
        restored[order] = values
        out[name] = restored
    return out


def _terminal_block(
    codes: np.ndarray, ts_s: np.ndarray, fraud: np.ndarray, delay_days: int
) -> dict[str, np.ndarray]:
    n = len(ts_s)
    delay_s = delay_days * DAY_S
    order, keys = _group_keys(codes, ts_s, terminal_horizon_s(delay_days))
    cf = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(fraud[order], out=cf[1:])
    hi = np.searchsorted(keys, keys - delay_s, side="right")
    out: dict[str, np.ndarray] = {}
    for w in TERMINAL_WINDOWS_DAYS:
        lo = np.searchsorted(keys, keys - delay_s - w * DAY_S, side="right")
        count = hi - lo
        frauds = cf[hi] - cf[lo]
        risk = np.divide(frauds, count, out=np.zeros(n, dtype=np.float64), where=count > 0)
        for name, values in ((f"terminal_nb_tx_{w}d", count), (f"terminal_risk_{w}d", risk)):
            restored = np.empty(n, dtype=np.float64)
            restored[order] = values
            out[name] = restored
    return out


def known_fraud_labels(df: pd.DataFrame, labels: pd.Series | None = None) -> np.ndarray:
    """0/1 labels used for terminal risk: ``labels`` (aligned on the index) over ``is_fraud``.

    Missing labels count as not fraudulent, as an unreviewed transaction does online.
    """
    if labels is not None:
        aligned = pd.to_numeric(labels.reindex(df.index), errors="coerce")
        base = aligned.to_numpy(dtype=np.float64, na_value=np.nan)
    elif s.IS_FRAUD in df.columns:
        base = pd.to_numeric(df[s.IS_FRAUD], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        return np.zeros(len(df), dtype=np.int64)
    return np.asarray(np.nan_to_num(base, nan=0.0) > 0, dtype=np.int64)


def batch_features(
    df: pd.DataFrame, *, delay_days: int = DEFAULT_DELAY_DAYS, labels: pd.Series | None = None
) -> pd.DataFrame:
    """All FEATURE_NAMES for every row of a canonical frame (same index, float64 columns).

    ``labels`` (0/1, aligned on the index) overrides ``is_fraud`` for terminal risk, for
    example with analysts' verdicts.
    """
    if delay_days < 1:
        raise ValueError("delay_days must be at least 1")
    ts_s = s.epoch_seconds(df[s.TS])
    amount = df[s.AMOUNT].to_numpy(dtype=np.float64)
    card_codes, _ = pd.factorize(df[s.CARD_TOKEN], sort=False)
    term_codes, _ = pd.factorize(df[s.TERMINAL_ID], sort=False)
    weekend, night = calendar_flags(ts_s)
    cols: dict[str, np.ndarray] = {
        "amount": amount,
        "during_weekend": weekend.astype(np.float64),
        "during_night": night.astype(np.float64),
    }
    cols.update(_card_block(card_codes.astype(np.int64), ts_s, amount))
    fraud = known_fraud_labels(df, labels)
    cols.update(_terminal_block(term_codes.astype(np.int64), ts_s, fraud, delay_days))
    return pd.DataFrame({name: cols[name] for name in FEATURE_NAMES}, index=df.index)


def to_handbook_frame(features: pd.DataFrame) -> pd.DataFrame:
    """The 15 handbook features under the handbook's column names."""
    return features[list(HANDBOOK_FEATURES)].rename(columns=HANDBOOK_NAMES)
