"""The online engine: the same features one transaction at a time, from compact per-entity state.

Each entity group (:func:`.plan.build_groups`) keeps, per entity value, only the events inside
its horizon (the longest window, or delay + window for delayed-label risk) and only the columns
its features read: integer value units, the values a distinct count needs, one flag per ``where``
condition, and transaction ids with labels when a delayed-label feature exists. State is
serialised with orjson; the caller reads every entity's state of a transaction in one round trip
(:meth:`OnlineFeatureSet.state_keys`) and writes them back in one.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from fraud_model.feature_sets.document import Feature, FeatureSet
from fraud_model.feature_sets.plan import (
    AMOUNT_SCALE,
    DAY_S,
    HOUR_S,
    OPS,
    UNKNOWN_LABEL,
    EntityGroup,
    build_groups,
    condition_holds,
    flag_name,
    number_value,
    text_value,
    units,
)

NAN = float("nan")


@dataclass(slots=True)
class EntityState:
    """One entity's retained events (time order) and the time of its latest transaction."""

    ts: list[int] = field(default_factory=list)
    units: dict[str, list[int]] = field(default_factory=dict)
    values: dict[str, list[str | None]] = field(default_factory=dict)
    flags: dict[str, list[int]] = field(default_factory=dict)
    txn_ids: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    last_ts: int | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            [self.ts, self.units, self.values, self.flags, self.txn_ids, self.labels, self.last_ts]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EntityState:
        ts, unit_cols, value_cols, flag_cols, ids, labels, last = orjson.loads(data)
        return cls(ts, unit_cols, value_cols, flag_cols, ids, labels, last)


@dataclass
class InputCounts:
    """What a check met that the model never saw, for monitoring: counted, never failed."""

    unknown_category: int = 0
    missing_optional: int = 0
    new_entity: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "unknown_category": self.unknown_category,
            "missing_optional": self.missing_optional,
            "new_entity": self.new_entity,
        }


class OnlineFeatureSet:
    """Features of one transaction (a mapping of attribute values, ``ts`` in epoch seconds)."""

    def __init__(self, fs: FeatureSet, encodings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.fs = fs
        self.encodings = encodings or {}
        for f in fs.features:
            if f.kind == "categorical" and f.name not in self.encodings:
                raise ValueError(f"feature {f.name} needs the encoding learned at training time")
        self.groups: tuple[EntityGroup, ...] = tuple(build_groups(fs).values())
        self._group_index = {g.entity: i for i, g in enumerate(self.groups)}
        self._order = fs.order()
        self._index = {name: i for i, name in enumerate(fs.feature_names)}
        self._zone = None if fs.timezone == "UTC" else ZoneInfo(fs.timezone)
        self.horizon_s = max((g.horizon_s for g in self.groups), default=DAY_S)
        optional = [a.name for a in fs.attributes.values() if not a.required]
        self._optional = tuple(a for a in optional if any(a in f.depends_on() for f in fs.features))

    def state_keys(self, event: Mapping[str, Any]) -> list[str | None]:
        """Each group's state key for this transaction (None where the entity key is missing)."""
        return [g.key(event) for g in self.groups]

    def load(
        self, raws: Sequence[bytes | None], keys: Sequence[str | None], counts: InputCounts
    ) -> list[EntityState | None]:
        out: list[EntityState | None] = []
        for raw, key in zip(raws, keys, strict=True):
            if key is None:
                out.append(None)
            elif raw is None:
                counts.new_entity += 1
                out.append(EntityState())
            else:
                out.append(EntityState.from_bytes(raw))
        return out

    def compute(
        self,
        event: Mapping[str, Any],
        states: Sequence[EntityState | None],
        counts: InputCounts | None = None,
    ) -> list[float]:
        """The feature vector (``fs`` order); the states are read, not changed."""
        counts = counts if counts is not None else InputCounts()
        for name in self._optional:
            if event.get(name) is None:
                counts.missing_optional += 1
        t = int(event["ts"])
        out = [NAN] * len(self._index)
        hour = weekday = -1
        for f in self._order:
            if f.kind == "passthrough":
                v = number_value(event.get(f.attribute or ""))
                value = NAN if v is None else v
            elif f.kind == "categorical":
                value = self._encode(f, event, counts)
            elif f.kind == "calendar":
                if hour < 0:
                    hour, weekday = self._local(t)
                value = _calendar(f, hour, weekday)
            elif f.kind == "compare":
                value = self._compare(f, event, out)
            else:
                state = states[self._group_index[f.entity]]
                if state is None:
                    value = NAN
                elif f.kind == "velocity":
                    value = self._velocity(f, state, event, t, out)
                else:
                    value = _label_risk(f, state, t, self.fs.delay_days * DAY_S)
            out[self._index[f.name]] = value
        return out

    def observe(
        self,
        event: Mapping[str, Any],
        vector: Sequence[float],
        states: Sequence[EntityState | None],
        label: int | None = None,
    ) -> None:
        """Append the transaction to every entity state it belongs to (labels only count after the delay)."""
        t = int(event["ts"])
        for g, state in zip(self.groups, states, strict=True):
            if state is None:
                continue
            pos = bisect_right(state.ts, t)
            state.ts.insert(pos, t)
            for col in g.unit_columns:
                state.units.setdefault(col, [0] * (len(state.ts) - 1)).insert(
                    pos, units(number_value(event.get(col)))
                )
            for col in g.distinct_columns:
                state.values.setdefault(col, [None] * (len(state.ts) - 1)).insert(
                    pos, text_value(event.get(col))
                )
            for flag, f in g.flags:
                assert f.where is not None
                held = condition_holds(f, vector[self._index[f.where.feature]])
                state.flags.setdefault(flag, [0] * (len(state.ts) - 1)).insert(pos, held)
            if g.labels:
                state.txn_ids.insert(pos, str(event.get("txn_id", "")))
                state.labels.insert(pos, UNKNOWN_LABEL if label is None else int(label))
            state.last_ts = t if state.last_ts is None else max(state.last_ts, t)
            _forget(state, state.ts[-1] - g.horizon_s)

    def _local(self, t: int) -> tuple[int, int]:
        if self._zone is None:
            return (t % DAY_S) // HOUR_S, (t // DAY_S + 3) % 7
        local = datetime.fromtimestamp(t, UTC).astimezone(self._zone)
        return local.hour, local.weekday()

    def _encode(self, f: Feature, event: Mapping[str, Any], counts: InputCounts) -> float:
        learned = self.encodings[f.name]
        v = text_value(event.get(f.attribute or ""))
        if v is None:
            return float(learned["default"])
        found = learned["values"].get(v)
        if found is None:
            counts.unknown_category += 1
            return float(learned["default"])
        return float(found)

    def _operand(self, name: str, event: Mapping[str, Any], out: list[float]) -> Any:
        if name in self._index:
            return out[self._index[name]]
        if self.fs.attribute_type(name) in ("numeric", "boolean"):
            v = number_value(event.get(name))
            return NAN if v is None else v
        return text_value(event.get(name))

    def _compare(self, f: Feature, event: Mapping[str, Any], out: list[float]) -> float:
        assert f.left is not None and f.op is not None
        a = self._operand(f.left, event, out)
        b = self._operand(f.right, event, out) if f.right is not None else f.right_value
        if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
            return NAN
        if isinstance(b, float) and math.isnan(b):
            return NAN
        if isinstance(a, float) and not isinstance(b, str):
            b = float(b)
        return 1.0 if OPS[f.op](a, b) else 0.0

    def _velocity(
        self, f: Feature, state: EntityState, event: Mapping[str, Any], t: int, out: list[float]
    ) -> float:
        assert f.window_s is not None
        ts = state.ts
        end = bisect_right(ts, t)
        if f.aggregate == "since_previous":
            prev = state.last_ts if end == len(ts) else (ts[end - 1] if end else None)
            return float(f.window_s if prev is None else min(t - prev, f.window_s))
        lo = bisect_right(ts, t - f.window_s)
        count = end - lo + 1
        if f.aggregate == "count":
            if f.where is None:
                return float(count)
            current = condition_holds(f, out[self._index[f.where.feature]])
            return float(sum(state.flags.get(flag_name(f), ())[lo:end]) + current)
        if f.aggregate == "distinct":
            assert f.of is not None
            seen = {v for v in state.values.get(f.of, ())[lo:end] if v is not None}
            value = text_value(event.get(f.of))
            if value is not None:
                seen.add(value)
            return float(len(seen))
        assert f.of is not None
        raw = number_value(event.get(f.of))
        total = sum(state.units.get(f.of, ())[lo:end]) + units(raw)
        if f.aggregate == "sum":
            return total / AMOUNT_SCALE
        mean = (total / count) / AMOUNT_SCALE
        if f.aggregate == "mean":
            return mean
        if raw is None:
            return NAN
        return raw / mean if mean > 0 else 1.0


def _calendar(f: Feature, hour: int, weekday: int) -> float:
    if f.part == "hour":
        return float(hour)
    if f.part == "weekday":
        return float(weekday)
    if f.part == "weekend":
        return 1.0 if weekday >= 5 else 0.0
    return 1.0 if hour <= f.night_last_hour else 0.0


def _label_risk(f: Feature, state: EntityState, t: int, delay_s: int) -> float:
    assert f.window_s is not None
    hi = bisect_right(state.ts, t - delay_s)
    lo = bisect_right(state.ts, t - delay_s - f.window_s)
    count = hi - lo
    if f.stat == "count":
        return float(count)
    frauds = sum(1 for x in state.labels[lo:hi] if x > 0)
    return frauds / count if count else 0.0


def _forget(state: EntityState, edge: int) -> None:
    """Drop events at or before ``edge`` (outside every window of the group)."""
    cut = bisect_right(state.ts, edge)
    if not cut:
        return
    del state.ts[:cut]
    for cols in (state.units, state.values, state.flags):
        for col in cols.values():
            del col[:cut]
    if state.txn_ids:
        del state.txn_ids[:cut], state.labels[:cut]


def apply_label(state: EntityState, txn_id: str, label: int) -> bool:
    """Record a transaction's known outcome; False when it has left the entity's horizon."""
    for i in range(len(state.txn_ids) - 1, -1, -1):
        if state.txn_ids[i] == txn_id:
            state.labels[i] = int(label)
            return True
    return False
