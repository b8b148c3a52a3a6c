"""The online feature path: bounded per-card and per-terminal state, O(1) amortised per event.

Each state keeps its events in time order within a horizon and, per window, the index of the
window's first event and the window's running integer sum, so advancing the clock only moves
pointers forward. Sums are exact integers (amounts in 1/10,000 units, fraud counts), so the
numbers equal :func:`fraud_model.features.batch_features` bit for bit on a replayed stream.

Events are expected per card and per terminal in non-decreasing time. A late event is still
accepted: it is inserted in order and the windows are rebuilt (O(history)); its own features
are then exact only while the history it needs is still inside the horizon.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fraud_model import schema as s
from fraud_model.features import (
    AMOUNT_SCALE,
    CARD_HORIZON_S,
    CARD_WINDOWS_S,
    DAY_S,
    DEFAULT_DELAY_DAYS,
    FEATURE_NAMES,
    HIGH_AMOUNT_RATIO,
    HOUR_S,
    NIGHT_LAST_HOUR,
    NO_PREVIOUS_S,
    TERMINAL_WINDOWS_DAYS,
)

UNKNOWN_LABEL = -1
_COMPACT_MIN = 32
_CARD_MAGIC = b"FC1"
_TERMINAL_MAGIC = b"FT1"
_NO_TS = -(2**62)
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


def _pack(code: str, values: list[int]) -> bytes:
    """Little-endian packing of small int lists (the stdlib array beats numpy at these sizes)."""
    packed = array(code, values)
    if _BIG_ENDIAN and packed.itemsize > 1:
        packed.byteswap()
    return packed.tobytes()


def _unpack(code: str, data: bytes, offset: int, count: int) -> list[int]:
    unpacked = array(code)
    unpacked.frombytes(data[offset : offset + count * unpacked.itemsize])
    if _BIG_ENDIAN and unpacked.itemsize > 1:
        unpacked.byteswap()
    return unpacked.tolist()


def _units(amount: float) -> int:
    return round(amount * AMOUNT_SCALE)


# --------------------------------------------------------------------------------------- cards

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
    clock: int = _NO_TS
    last_ts: int | None = None
    starts: list[int] = field(default_factory=lambda: [0] * len(CARD_WINDOWS_S))
    sums: list[int] = field(default_factory=lambda: [0] * len(CARD_WINDOWS_S))
    high_counts: list[int] = field(default_factory=lambda: [0] * len(CARD_WINDOWS_S))

    def to_bytes(self) -> bytes:
        """Compact little-endian encoding of the retained events (windows are rebuilt on load)."""
        head = self.starts[-1]
        n = len(self.ts) - head
        last = _NO_TS if self.last_ts is None else self.last_ts
        return b"".join(
            (
                struct.pack("<3sqqI", _CARD_MAGIC, self.clock, last, n),
                _pack("q", self.ts[head:]),
                _pack("q", self.units[head:]),
                _pack("b", self.highs[head:]),
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
            ts=_unpack("q", data, off, n),
            units=_unpack("q", data, off + 8 * n, n),
            highs=_unpack("b", data, off + 16 * n, n),
            clock=clock,
            last_ts=None if last == _NO_TS else last,
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
    if head > _COMPACT_MIN and 2 * head > n:
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
    u = _units(txn.amount)
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
    u = _units(txn.amount)
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


# ----------------------------------------------------------------------------------- terminals


@dataclass(slots=True)
class TerminalState:
    """A terminal's events within delay + 30 days of its clock, with their labels (-1 unknown)."""

    delay_s: int = DEFAULT_DELAY_DAYS * DAY_S
    ts: list[int] = field(default_factory=list)
    txn_ids: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    clock: int = _NO_TS
    base: int = 0
    index: dict[str, int] = field(default_factory=dict)
    hi: int = 0
    starts: list[int] = field(default_factory=lambda: [0] * len(TERMINAL_WINDOWS_DAYS))
    frauds: list[int] = field(default_factory=lambda: [0] * len(TERMINAL_WINDOWS_DAYS))

    def to_bytes(self) -> bytes:
        """Little-endian times and labels, then the NUL-separated UTF-8 transaction IDs."""
        head = self.starts[-1]
        ts = self.ts[head:]
        ids = "\x00".join(self.txn_ids[head:]).encode()
        if ids.count(b"\x00") != max(len(ts) - 1, 0):
            raise ValueError("transaction IDs must not contain NUL characters")
        header = struct.pack("<3sqqI", _TERMINAL_MAGIC, self.clock, self.delay_s, len(ts))
        return b"".join(
            (
                header,
                _pack("q", ts),
                _pack("b", self.labels[head:]),
                ids,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TerminalState:
        magic, clock, delay_s, n = struct.unpack_from("<3sqqI", data)
        if magic != _TERMINAL_MAGIC:
            raise ValueError("not a serialised TerminalState")
        off = struct.calcsize("<3sqqI")
        ts = _unpack("q", data, off, n)
        off += 8 * n
        labels = _unpack("b", data, off, n)
        off += n
        ids = data[off:].decode().split("\x00") if n else []
        if len(ids) != n:
            raise ValueError("corrupt TerminalState: transaction ID count differs")
        state = cls(delay_s=delay_s, ts=ts, txn_ids=ids, labels=labels, clock=clock)
        _rebuild_terminal(state)
        return state


def _rebuild_terminal(state: TerminalState) -> None:
    state.base = 0
    state.index = {txn_id: i for i, txn_id in enumerate(state.txn_ids)}
    edge = state.clock - state.delay_s
    state.hi = bisect_right(state.ts, edge)
    for k, w in enumerate(TERMINAL_WINDOWS_DAYS):
        lo = bisect_right(state.ts, edge - w * DAY_S)
        state.starts[k] = lo
        state.frauds[k] = sum(1 for x in state.labels[lo : state.hi] if x > 0)


def _advance_terminal(state: TerminalState, t: int) -> None:
    if t <= state.clock:
        return
    ts, labels, starts, frauds = state.ts, state.labels, state.starts, state.frauds
    n = len(ts)
    edge = t - state.delay_s
    hi = state.hi
    while hi < n and ts[hi] <= edge:
        if labels[hi] > 0:
            for k in range(len(frauds)):
                frauds[k] += 1
        hi += 1
    state.hi = hi
    for k, w in enumerate(TERMINAL_WINDOWS_DAYS):
        lo = starts[k]
        lo_edge = edge - w * DAY_S
        while lo < hi and ts[lo] <= lo_edge:
            if labels[lo] > 0:
                frauds[k] -= 1
            lo += 1
        starts[k] = lo
    state.clock = t
    head = starts[-1]
    if head > _COMPACT_MIN and 2 * head > n:
        for txn_id in state.txn_ids[:head]:
            del state.index[txn_id]
        del ts[:head], labels[:head], state.txn_ids[:head]
        state.base += head
        state.hi -= head
        for k in range(len(starts)):
            starts[k] -= head


def _ensure_delay(state: TerminalState, delay_days: int) -> None:
    if delay_days < 1:
        raise ValueError("delay_days must be at least 1")
    if state.delay_s != delay_days * DAY_S:
        state.delay_s = delay_days * DAY_S
        _rebuild_terminal(state)


def terminal_features(
    state: TerminalState, txn: TransactionEvent, delay_days: int = DEFAULT_DELAY_DAYS
) -> list[float]:
    """(count, risk) for 1, 7 and 30 days over (t - delay - w, t - delay] with known labels."""
    _ensure_delay(state, delay_days)
    t = txn.ts_s
    out: list[float] = []
    if t >= state.clock:
        _advance_terminal(state, t)
        for k in range(len(TERMINAL_WINDOWS_DAYS)):
            count = state.hi - state.starts[k]
            out += [float(count), state.frauds[k] / count if count else 0.0]
        return out
    edge = t - state.delay_s
    hi = bisect_right(state.ts, edge)
    for w in TERMINAL_WINDOWS_DAYS:
        lo = bisect_right(state.ts, edge - w * DAY_S)
        count = hi - lo
        frauds = sum(1 for x in state.labels[lo:hi] if x > 0)
        out += [float(count), frauds / count if count else 0.0]
    return out


def observe_terminal(state: TerminalState, txn: TransactionEvent, label: int | None = None) -> None:
    """Append ``txn`` (its label may be given now; it only counts once older than the delay)."""
    t = txn.ts_s
    code = UNKNOWN_LABEL if label is None else int(label)
    if t >= state.clock:
        _advance_terminal(state, t)
        state.index[txn.txn_id] = state.base + len(state.ts)
        state.ts.append(t)
        state.txn_ids.append(txn.txn_id)
        state.labels.append(code)
        return
    pos = bisect_right(state.ts, t)
    state.ts.insert(pos, t)
    state.txn_ids.insert(pos, txn.txn_id)
    state.labels.insert(pos, code)
    _rebuild_terminal(state)


def apply_label(state: TerminalState, txn_id: str, label: int) -> bool:
    """Record a transaction's outcome; False when it has left the terminal's horizon."""
    seq = state.index.get(txn_id)
    if seq is None:
        return False
    i = seq - state.base
    old = state.labels[i]
    state.labels[i] = int(label)
    delta = (1 if label > 0 else 0) - (1 if old > 0 else 0)
    if delta:
        for k in range(len(state.frauds)):
            if state.starts[k] <= i < state.hi:
                state.frauds[k] += delta
    return True


# ------------------------------------------------------------------------------- the computer


def transaction_features(
    card: CardState, terminal: TerminalState, txn: TransactionEvent, delay_days: int = DEFAULT_DELAY_DAYS
) -> list[float]:
    """All FEATURE_NAMES of ``txn``, in order, from the two states (which are not appended to)."""
    c = card_features(card, txn)
    term = terminal_features(terminal, txn, delay_days)
    days = txn.ts_s // DAY_S
    hour = (txn.ts_s % DAY_S) // HOUR_S
    weekend = 1.0 if (days + 3) % 7 >= 5 else 0.0
    night = 1.0 if hour <= NIGHT_LAST_HOUR else 0.0
    return [txn.amount, weekend, night, *c[:6], *term, *c[6:]]


class FeatureStateStore(Protocol):
    """Where online feature state lives (an in-process dict, or the control plane's cache)."""

    def get_card(self, card_token: str) -> CardState | None: ...
    def put_card(self, card_token: str, state: CardState) -> None: ...
    def get_terminal(self, terminal_id: str) -> TerminalState | None: ...
    def put_terminal(self, terminal_id: str, state: TerminalState) -> None: ...


class InMemoryFeatureStateStore:
    """Keeps live state objects in dicts (one process; no serialisation)."""

    def __init__(self) -> None:
        self.cards: dict[str, CardState] = {}
        self.terminals: dict[str, TerminalState] = {}

    def get_card(self, card_token: str) -> CardState | None:
        return self.cards.get(card_token)

    def put_card(self, card_token: str, state: CardState) -> None:
        self.cards[card_token] = state

    def get_terminal(self, terminal_id: str) -> TerminalState | None:
        return self.terminals.get(terminal_id)

    def put_terminal(self, terminal_id: str, state: TerminalState) -> None:
        self.terminals[terminal_id] = state


class OnlineFeatureComputer:
    """Features for one transaction at a time, reading and writing state through a store."""

    def __init__(self, store: FeatureStateStore, *, delay_days: int = DEFAULT_DELAY_DAYS) -> None:
        if delay_days < 1:
            raise ValueError("delay_days must be at least 1")
        self.store = store
        self.delay_days = delay_days

    def compute(self, txn: TransactionEvent, *, observe: bool = True, label: int | None = None) -> np.ndarray:
        """The feature vector (FEATURE_NAMES order); then, unless ``observe`` is False, record it."""
        card = self.store.get_card(txn.card_token) or CardState()
        terminal = self.store.get_terminal(txn.terminal_id) or TerminalState(delay_s=self.delay_days * DAY_S)
        vector = np.asarray(transaction_features(card, terminal, txn, self.delay_days), dtype=np.float64)
        if observe:
            observe_card(card, txn)
            observe_terminal(terminal, txn, label)
            self.store.put_card(txn.card_token, card)
            self.store.put_terminal(txn.terminal_id, terminal)
        return vector

    def record_label(self, terminal_id: str, txn_id: str, label: int) -> bool:
        """Feed a known outcome (chargeback, analyst verdict) into the terminal's risk windows."""
        state = self.store.get_terminal(terminal_id)
        if state is None or not apply_label(state, txn_id, label):
            return False
        self.store.put_terminal(terminal_id, state)
        return True


def as_feature_dict(vector: np.ndarray | list[float]) -> dict[str, float]:
    return {name: float(v) for name, v in zip(FEATURE_NAMES, vector, strict=True)}


__all__ = [
    "CARD_HORIZON_S",
    "CardState",
    "FeatureStateStore",
    "InMemoryFeatureStateStore",
    "OnlineFeatureComputer",
    "TerminalState",
    "TransactionEvent",
    "apply_label",
    "as_feature_dict",
    "card_features",
    "observe_card",
    "observe_terminal",
    "terminal_features",
    "transaction_features",
]
