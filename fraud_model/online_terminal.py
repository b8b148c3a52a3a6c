"""The online per-terminal state: a terminal's events within delay + 30 days, with their labels
and running fraud counts per window."""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass, field

from fraud_model.features import DAY_S, DEFAULT_DELAY_DAYS, TERMINAL_WINDOWS_DAYS
from fraud_model.online_event import (
    COMPACT_MIN,
    NO_TS,
    UNKNOWN_LABEL,
    TransactionEvent,
    pack_ints,
    unpack_ints,
)

_TERMINAL_MAGIC = b"FT1"


@dataclass(slots=True)
class TerminalState:
    """A terminal's events within delay + 30 days of its clock, with their labels (-1 unknown)."""

    delay_s: int = DEFAULT_DELAY_DAYS * DAY_S
    ts: list[int] = field(default_factory=list)
    txn_ids: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    clock: int = NO_TS
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
                pack_ints("q", ts),
                pack_ints("b", self.labels[head:]),
                ids,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TerminalState:
        magic, clock, delay_s, n = struct.unpack_from("<3sqqI", data)
        if magic != _TERMINAL_MAGIC:
            raise ValueError("not a serialised TerminalState")
        off = struct.calcsize("<3sqqI")
        ts = unpack_ints("q", data, off, n)
        off += 8 * n
        labels = unpack_ints("b", data, off, n)
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
    if head > COMPACT_MIN and 2 * head > n:
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
