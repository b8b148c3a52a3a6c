"""One transaction as the online features see it, and the helpers the per-card and per-terminal
states share (compact little-endian encoding, integer amount units)."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fraud_model import schema as s
from fraud_model.features import AMOUNT_SCALE

UNKNOWN_LABEL = -1
# A state drops the events that left its horizon once more than this many (and half of them) did.
COMPACT_MIN = 32
NO_TS = -(2**62)
_BIG_ENDIAN = sys.byteorder == "big"


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """The fields the features need from one transaction (``ts_s``: epoch seconds, UTC)."""

    txn_id: str
    card_token: str
    terminal_id: str
    ts_s: int
    amount: float

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> TransactionEvent:
        """From a dict with our schema's names; ``ts`` may be a datetime, ISO string or seconds."""
        ts = row[s.TS]
        if isinstance(ts, int | np.integer):
            ts_s = int(ts)
        else:
            stamp = pd.Timestamp(ts)
            if stamp.tzinfo is None:
                stamp = stamp.tz_localize("UTC")
            ts_s = int(stamp.value // 1_000_000_000)
        return cls(
            str(row[s.TXN_ID]), str(row[s.CARD_TOKEN]), str(row[s.TERMINAL_ID]), ts_s, float(row[s.AMOUNT])
        )


def pack_ints(code: str, values: list[int]) -> bytes:
    """Little-endian packing of small int lists (the stdlib array beats numpy at these sizes)."""
    packed = array(code, values)
    if _BIG_ENDIAN and packed.itemsize > 1:
        packed.byteswap()
    return packed.tobytes()


def unpack_ints(code: str, data: bytes, offset: int, count: int) -> list[int]:
    unpacked = array(code)
    unpacked.frombytes(data[offset : offset + count * unpacked.itemsize])
    if _BIG_ENDIAN and unpacked.itemsize > 1:
        unpacked.byteswap()
    return unpacked.tolist()


def amount_units(amount: float) -> int:
    """An amount in exact integer 1/AMOUNT_SCALE units."""
    return round(amount * AMOUNT_SCALE)
