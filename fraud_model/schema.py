"""The canonical transaction schema and the mapping from the handbook's raw files."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

TXN_ID = "txn_id"
CARD_TOKEN = "card_token"  # noqa: S105 - a column name, not a secret
TERMINAL_ID = "terminal_id"
TS = "ts"
AMOUNT = "amount"
CURRENCY = "currency"
CHANNEL = "channel"
COUNTRY = "country"
DEVICE = "device"
MCC = "mcc"
IS_FRAUD = "is_fraud"
FRAUD_SCENARIO = "fraud_scenario"

REQUIRED_COLUMNS: tuple[str, ...] = (TXN_ID, CARD_TOKEN, TERMINAL_ID, TS, AMOUNT, CURRENCY)
OPTIONAL_COLUMNS: tuple[str, ...] = (CHANNEL, COUNTRY, DEVICE, MCC)
LABEL_COLUMNS: tuple[str, ...] = (IS_FRAUD, FRAUD_SCENARIO)
STRING_COLUMNS: tuple[str, ...] = (TXN_ID, CARD_TOKEN, TERMINAL_ID, CURRENCY, *OPTIONAL_COLUMNS)

TS_DTYPE: Final = "datetime64[ns, UTC]"
DEFAULT_CURRENCY = "EUR"

TXN_PREFIX = "txn_"
CARD_PREFIX = "card_"
TERMINAL_PREFIX = "term_"

HANDBOOK_RAW_COLUMNS: tuple[str, ...] = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


def prefixed_ids(prefix: str, values: np.ndarray | pd.Series) -> pd.Series:
    """Prefixed string IDs (``card_42``) from integer IDs, vectorised."""
    ints = pd.Series(np.asarray(values, dtype=np.int64))
    return prefix + ints.astype(str)


def to_utc(ts: pd.Series) -> pd.Series:
    """A timestamp column as ``datetime64[ns, UTC]``; naive values are taken to be UTC."""
    out = pd.to_datetime(ts, utc=True)
    return out.astype(TS_DTYPE)


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Whole seconds since the Unix epoch (floored) of a UTC timestamp column, as int64."""
    ns = to_utc(ts).astype("int64").to_numpy(dtype=np.int64)
    return np.floor_divide(ns, 1_000_000_000)


def from_handbook_raw(raw: pd.DataFrame, *, currency: str = DEFAULT_CURRENCY) -> pd.DataFrame:
    """Map the handbook's raw transactions (TRANSACTION_ID, TX_DATETIME, ...) to our schema.

    Rows keep the input order; ``txn_id`` is ``txn_<TRANSACTION_ID>``, ``card_token`` is
    ``card_<CUSTOMER_ID>`` and ``terminal_id`` is ``term_<TERMINAL_ID>``. Naive datetimes are UTC.
    """
    missing = [c for c in HANDBOOK_RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"not a handbook raw frame, missing columns: {missing}")
    out = pd.DataFrame(
        {
            TXN_ID: prefixed_ids(TXN_PREFIX, raw["TRANSACTION_ID"].to_numpy()),
            CARD_TOKEN: prefixed_ids(CARD_PREFIX, raw["CUSTOMER_ID"].to_numpy()),
            TERMINAL_ID: prefixed_ids(TERMINAL_PREFIX, raw["TERMINAL_ID"].to_numpy()),
            TS: to_utc(raw["TX_DATETIME"].reset_index(drop=True)),
            AMOUNT: raw["TX_AMOUNT"].to_numpy(dtype=np.float64),
            CURRENCY: pd.Series([currency] * len(raw), dtype="str"),
            IS_FRAUD: raw["TX_FRAUD"].to_numpy(dtype=np.int64),
            FRAUD_SCENARIO: raw["TX_FRAUD_SCENARIO"].to_numpy(dtype=np.int64),
        }
    )
    return out
