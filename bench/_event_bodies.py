"""Fraud-check bodies replayed from simulated transactions (bench-features).

``write_events`` records a frame's transactions, in time order, as one JSON line each: the epoch
second and the body without ``txn_id`` and ``timestamp`` (with the tenant's ``attributes`` or
without). ``EventBodies`` sends them in that order with a fresh ``txn_id`` each; past the last one
it starts again with every timestamp moved on by the recording's span, so each card's, device's and
e-mail domain's history stays in time order however long a run lasts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

DAY_S = 86_400


def _plain(value: Any) -> Any:
    """A JSON value the fraud-check schema takes (numpy scalars to Python, NaN to absent)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_events(frame: Any, path: Path, attributes: Sequence[str] = ()) -> int:
    """Write ``frame``'s rows (time order) as bodies to ``path``; ``attributes``: the columns sent
    in ``attributes`` (none: a handbook body). Returns the number of events written."""
    from fraud_model import schema as s

    ordered = frame.sort_values(s.TS, kind="stable")
    ts = s.epoch_seconds(ordered[s.TS])
    cols = [s.CARD_TOKEN, s.TERMINAL_ID, s.AMOUNT, s.CURRENCY, *attributes]
    records = ordered[cols].to_dict("records")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for t, r in zip(ts, records, strict=True):
            body: dict[str, Any] = {
                "card_token": r[s.CARD_TOKEN],
                "terminal_id": r[s.TERMINAL_ID],
                "amount": f"{float(r[s.AMOUNT]):.2f}",
                "currency": r[s.CURRENCY],
            }
            if attributes:
                given = {a: _plain(r[a]) for a in attributes}
                body["attributes"] = {k: v for k, v in given.items() if v is not None}
            out.write(orjson.dumps([int(t), body]) + b"\n")
    return len(records)


class EventBodies:
    """The recorded bodies in order, each with a unique ``txn_id`` (the load generator's interface)."""

    def __init__(self, path: str, prefix: str) -> None:
        self.prefix = prefix
        lines = Path(path).read_bytes().splitlines()
        if not lines:
            raise ValueError(f"{path}: no recorded events")
        self.events = [orjson.loads(line) for line in lines]
        first, last = self.events[0][0], self.events[-1][0]
        self.span_s = last - first + DAY_S  # a day's gap before the replay starts again
        self.seq = itertools.count()

    def next(self) -> bytes:
        k = next(self.seq)
        laps, i = divmod(k, len(self.events))
        ts, body = self.events[i]
        stamp = datetime.fromtimestamp(ts + laps * self.span_s, UTC).isoformat()
        return orjson.dumps({"txn_id": f"{self.prefix}-{k}", "timestamp": stamp, **body})
