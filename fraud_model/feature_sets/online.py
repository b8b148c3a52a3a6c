"""The online engine: the same features one transaction at a time, from compact per-entity state.

Each entity group (:func:`.plan.build_groups`) keeps, per entity value, only the events inside
its horizon (the longest window, or delay + window for delayed-label risk) and only the columns
its features read: integer value units, the values a distinct count needs, one flag per ``where``
condition, and transaction ids with labels when a delayed-label feature exists. State is
serialised compactly (:mod:`.state`); the caller reads every entity's state of a transaction in
one round trip (:meth:`OnlineFeatureSet.state_keys`) and writes them back in one.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

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
from fraud_model.feature_sets.state import (
    EntityState,
    text_drop_first,
    text_insert,
    text_list,
    text_slice,
)

NAN = float("nan")


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
        # Resolved once: (feature, its output slot, its entity group's slot, its where-flag column).
        self._plan = tuple(
            (
                f,
                self._index[f.name],
                self._group_index.get(f.entity, -1),
                flag_name(f) if f.where is not None else "",
            )
            for f in self._order
        )

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
        ends = [-1] * len(self.groups)  # per group: where this transaction's time falls in its state
        for f, slot, group, flag in self._plan:
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
                state = states[group]
                if state is None:
                    value = NAN
                elif f.kind == "velocity":
                    if ends[group] < 0:
                        ends[group] = bisect_right(state.ts, t)
                    value = self._velocity(f, state, event, t, ends[group], flag, out)
                else:
                    value = _label_risk(f, state, t, self.fs.delay_days * DAY_S)
            out[slot] = value
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
            before = len(state.ts)  # a column first written now starts with this many blanks
            state.ts.insert(pos, t)
            for col in g.unit_columns:
                numbers = state.units.get(col)
                if numbers is None:
                    numbers = state.units[col] = [0] * before
                numbers.insert(pos, units(number_value(event.get(col))))
            for col in g.distinct_columns:
                texts = state.values.get(col)
                if texts is None:
                    texts = state.values[col] = [None] * before
                text_insert(texts, pos, text_value(event.get(col)))
            for flag, f in g.flags:
                assert f.where is not None
                held = condition_holds(f, vector[self._index[f.where.feature]])
                marks = state.flags.get(flag)
                if marks is None:
                    marks = state.flags[flag] = [0] * before
                marks.insert(pos, held)
            if g.labels:
                text_insert(state.txn_ids, pos, str(event.get("txn_id", "")))
                state.labels.insert(pos, UNKNOWN_LABEL if label is None else _label(label))
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
        self,
        f: Feature,
        state: EntityState,
        event: Mapping[str, Any],
        t: int,
        end: int,
        flag: str,
        out: list[float],
    ) -> float:
        """``end``: the number of retained events at or before ``t``; ``flag``: the where column."""
        assert f.window_s is not None
        ts = state.ts
        if f.aggregate == "since_previous":
            prev = state.last_ts if end == len(ts) else (ts[end - 1] if end else None)
            return float(f.window_s if prev is None else min(t - prev, f.window_s))
        lo = bisect_right(ts, t - f.window_s)
        count = end - lo + 1
        if f.aggregate == "count":
            if f.where is None:
                return float(count)
            current = condition_holds(f, out[self._index[f.where.feature]])
            return float(sum(state.flags.get(flag, ())[lo:end]) + current)
        if f.aggregate == "distinct":
            assert f.of is not None
            column = state.values.get(f.of)
            # Only the window's tail is split, and the set is built in C: a busy entity's day is long.
            seen = set(text_slice(column, lo, end)) if column is not None else set()
            seen.add(text_value(event.get(f.of)))
            seen.discard(None)
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
    # Labels are stored as UNKNOWN_LABEL, 0 or 1 (``_label``): counting 1s in C is the fraud count.
    frauds = state.labels[lo:hi].count(1) if count else 0
    return frauds / count if count else 0.0


def _forget(state: EntityState, edge: int) -> None:
    """Drop events at or before ``edge`` (outside every window of the group)."""
    cut = bisect_right(state.ts, edge)
    if not cut:
        return
    del state.ts[:cut]
    for cols in (state.units, state.flags):
        for col in cols.values():
            del col[:cut]
    for text in state.values.values():
        text_drop_first(text, cut)
    if len(state.txn_ids):
        text_drop_first(state.txn_ids, cut)
        del state.labels[:cut]


def _label(label: int) -> int:
    """A known outcome as stored: 1 fraud (any positive label), 0 not."""
    return 1 if int(label) > 0 else 0


def apply_label(state: EntityState, txn_id: str, label: int) -> bool:
    """Record a transaction's known outcome; False when it has left the entity's horizon."""
    ids = text_list(state.txn_ids)
    for i in range(len(ids) - 1, -1, -1):
        if ids[i] == txn_id:
            state.labels[i] = _label(label)
            return True
    return False
