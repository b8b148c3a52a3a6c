"""The online per-card state: a card's events within CARD_HORIZON_S, with running window sums."""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass, field

from fraud_model.features import AMOUNT_SCALE, CARD_WINDOWS_S, HIGH_AMOUNT_RATIO, NO_PREVIOUS_S
from fraud_model.online_event import (
    COMPACT_MIN,
    NO_TS,
    TransactionEvent,
    amount_units,
    pack_ints,
    unpack_ints,
)

_CARD_MAGIC = b"FC1"

_H, _D, _D7, _D14, _D30 = range(len(CARD_WINDOWS_S))


@dataclass(slots=True)
class CardState:
    """A card's events within CARD_HORIZON_S of its clock, plus its last transaction time.

    Per event: time, amount in 1/AMOUNT_SCALE units, and whether the amount was above
    HIGH_AMOUNT_RATIO x the card's 30-day mean when it happened.
    """

    ts: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)
    highs: list[int] = field(default_factory=list)
    clock: int = NO_TS
    last_ts: int | None = None
    starts: list[int] = field(default_factory=lambda: [0] * len(CARD_WINDOWS_S))
    sums: list[int] = field(default_factory=lambda: [0] * len(CARD_WINDOWS_S))
    high_counts: list[int] = field(default_factory=lambda: [0] * len(CARD_WINDOWS_S))

    def to_bytes(self) -> bytes:
        """Compact little-endian encoding of the retained events (windows are rebuilt on load)."""
        head = self.starts[-1]
        n = len(self.ts) - head
        last = NO_TS if self.last_ts is None else self.last_ts
        return b"".join(
            (
                struct.pack("<3sqqI", _CARD_MAGIC, self.clock, last, n),
                pack_ints("q", self.ts[head:]),
                pack_ints("q", self.units[head:]),
                pack_ints("b", self.highs[head:]),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CardState:
        magic, clock, last, n = struct.unpack_from("<3sqqI", data)
        if magic != _CARD_MAGIC:
            raise ValueError("not a serialised CardState")
        off = struct.calcsize("<3sqqI")
        if len(data) != off + 17 * n:
            raise ValueError("corrupt CardState: length differs")
        state = cls(
            ts=unpack_ints("q", data, off, n),
            units=unpack_ints("q", data, off + 8 * n, n),
            highs=unpack_ints("b", data, off + 16 * n, n),
            clock=clock,
            last_ts=None if last == NO_TS else last,
        )
        _rebuild_card(state)
        return state


def _rebuild_card(state: CardState) -> None:
    for k, w in enumerate(CARD_WINDOWS_S):
        lo = bisect_right(state.ts, state.clock - w)
        state.starts[k] = lo
        state.sums[k] = sum(state.units[lo:])
        state.high_counts[k] = sum(state.highs[lo:])


def _advance_card(state: CardState, t: int) -> None:
    if t <= state.clock:
        return
    ts, units, highs = state.ts, state.units, state.highs
    starts, sums, high_counts = state.starts, state.sums, state.high_counts
    n = len(ts)
    for k, w in enumerate(CARD_WINDOWS_S):
        lo = starts[k]
        edge = t - w
        while lo < n and ts[lo] <= edge:
            sums[k] -= units[lo]
            high_counts[k] -= highs[lo]
            lo += 1
        starts[k] = lo
    state.clock = t
    head = starts[-1]
    if head > COMPACT_MIN and 2 * head > n:
        del ts[:head], units[:head], highs[:head]
        for k in range(len(starts)):
            starts[k] -= head


def _ratio(amount: float, avg30: float) -> float:
    return amount / avg30 if avg30 > 0 else 1.0


def _windows(state: CardState, t: int) -> tuple[list[int], list[int], list[int], int | None]:
    """(counts, unit sums, high counts, previous time) of earlier events in each window at t."""
    if t >= state.clock:
        _advance_card(state, t)
        n = len(state.ts)
        return [n - lo for lo in state.starts], list(state.sums), list(state.high_counts), state.last_ts
    # A late event: scan the retained history up to t.
    end = bisect_right(state.ts, t)
    counts, sums, highs = [], [], []
    for w in CARD_WINDOWS_S:
        lo = bisect_right(state.ts, t - w)
        counts.append(end - lo)
        sums.append(sum(state.units[lo:end]))
        highs.append(sum(state.highs[lo:end]))
    return counts, sums, highs, state.ts[end - 1] if end else None


def card_features(state: CardState, txn: TransactionEvent) -> list[float]:
    """Card features of ``txn`` given the card's earlier events (the state is only advanced)."""
    t = txn.ts_s
    u = amount_units(txn.amount)
    prior_counts, prior_sums, prior_highs, prev = _windows(state, t)
    counts = [c + 1 for c in prior_counts]
    sums = [x + u for x in prior_sums]
    avg30 = (sums[_D30] / counts[_D30]) / AMOUNT_SCALE
    ratio = _ratio(txn.amount, avg30)
    high = 1 if ratio > HIGH_AMOUNT_RATIO else 0
    gap = NO_PREVIOUS_S if prev is None else min(t - prev, NO_PREVIOUS_S)
    return [
        float(counts[_D]),
        (sums[_D] / counts[_D]) / AMOUNT_SCALE,
        float(counts[_D7]),
        (sums[_D7] / counts[_D7]) / AMOUNT_SCALE,
        float(counts[_D30]),
        avg30,
        float(counts[_H]),
        sums[_H] / AMOUNT_SCALE,
        sums[_D] / AMOUNT_SCALE,
        float(gap),
        ratio,
        float(prior_highs[_D7] + high),
        float(prior_highs[_D14] + high),
    ]


def observe_card(state: CardState, txn: TransactionEvent) -> None:
    """Append ``txn`` to the card's history."""
    t = txn.ts_s
    u = amount_units(txn.amount)
    prior_counts, prior_sums, _, _ = _windows(state, t)
    avg30 = ((prior_sums[_D30] + u) / (prior_counts[_D30] + 1)) / AMOUNT_SCALE
    high = 1 if _ratio(txn.amount, avg30) > HIGH_AMOUNT_RATIO else 0
    if t >= state.clock:
        state.ts.append(t)
        state.units.append(u)
        state.highs.append(high)
        for k in range(len(state.sums)):
            state.sums[k] += u
            state.high_counts[k] += high
    else:
        pos = bisect_right(state.ts, t)
        state.ts.insert(pos, t)
        state.units.insert(pos, u)
        state.highs.insert(pos, high)
        _rebuild_card(state)
    state.last_ts = t if state.last_ts is None else max(state.last_ts, t)
